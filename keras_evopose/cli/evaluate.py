"""`keras-evopose evaluate`: COCO keypoint AP of a model (pycocotools)."""

import json
import sys

from keras_evopose.cli import UsageError
from keras_evopose.cli import add_keypoint_layout_argument
from keras_evopose.cli import check_file
from keras_evopose.cli import check_output
from keras_evopose.cli import check_preset
from keras_evopose.cli import keep_native_logs
from keras_evopose.cli import native_log_filter
from keras_evopose.cli import read_keypoint_layout


def add_model_arguments(parser):
    """`--model PATH` (.keras, .tflite or .onnx) or `--preset NAME
    [--weights]`."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--model",
        help="a saved .keras model, or a .tflite or .onnx file written by "
        "`keras-evopose export`",
    )
    group.add_argument(
        "--preset", help="build a preset (random weights unless --weights)"
    )
    parser.add_argument(
        "--weights", default=None, help=".weights.h5 file for --preset"
    )


def check_model_arguments(args):
    """Checks `--model` / `--preset` / `--weights` before any work: a
    missing file or an unknown preset is one line, nothing built."""
    if args.model:
        path = check_file(args.model, "--model")
        if args.weights:
            raise UsageError(
                "--weights goes with --preset; a --model file holds its "
                "own weights"
            )
        if not path.endswith((".keras", ".tflite", ".onnx")):
            raise UsageError(
                f"--model {path}: expected a .keras file (model.save) or a "
                ".tflite or .onnx file (keras-evopose export)"
            )
        if path.endswith(".onnx"):
            check_onnx_packages(f"--model {path}")
        return
    check_preset(args.preset)
    if args.weights:
        check_file(args.weights, "--weights")


def check_onnx_packages(what):
    """UsageError naming `what` and the `onnx` extra unless onnx,
    onnxruntime and tf2onnx import."""
    from keras_evopose.export.onnx import ONNX_INSTALL_HINT
    from keras_evopose.export.onnx import missing_onnx_packages

    missing = missing_onnx_packages()
    if missing:
        raise UsageError(
            f"{what} needs {', '.join(missing)}: {ONNX_INSTALL_HINT}"
        )


def load_model(args):
    """The model named by `add_model_arguments`' flags: a Keras model, a
    `LiteRTModel` for a `.tflite` file or an `ONNXModel` for an `.onnx`
    file (same `predict_on_batch`, `input_shape` and `output_shape`)."""
    import keras

    check_model_arguments(args)
    if args.model:
        path = args.model
        if path.endswith(".tflite"):
            from keras_evopose.export import LiteRTModel

            with native_log_filter(keep=keep_native_logs(args)):
                return LiteRTModel(path)
        if path.endswith(".onnx"):
            from keras_evopose.export import ONNXModel

            try:
                return ONNXModel(path)
            except Exception as error:  # onnxruntime's protobuf/graph errors
                cause = str(error).splitlines()[0][:200] if str(error) else ""
                raise UsageError(
                    f"--model {path} cannot be loaded by ONNX Runtime "
                    f"({type(error).__name__}: {cause}); pass a file "
                    "written by keras-evopose export --format onnx"
                ) from None
        try:
            return keras.saving.load_model(path, compile=False)
        except Exception as error:  # zipfile, JSON and Keras errors
            cause = str(error).splitlines()[0][:200] if str(error) else ""
            raise UsageError(
                f"--model {path} cannot be loaded as a Keras model "
                f"({type(error).__name__}: {cause}); pass a file written "
                "by model.save or keras-evopose train/search"
            ) from None
    from keras_evopose.models import EvoPose2D

    model = EvoPose2D.from_preset(args.preset)
    if args.weights:
        try:
            model.load_weights(args.weights)
        except Exception as error:  # h5py and shape-mismatch errors
            cause = str(error).splitlines()[0][:200] if str(error) else ""
            raise UsageError(
                f"--weights {args.weights} does not fit preset "
                f"{args.preset!r} ({type(error).__name__}: {cause}); pass "
                "weights saved from that preset"
            ) from None
    else:
        print(
            f"note: preset {args.preset!r} has random weights "
            "(pass --weights or --model for a trained one)",
            file=sys.stderr,
        )
    return model


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        description=(
            "Crops every person box (ground truth, or --detections), "
            "predicts heatmaps (with the flip test unless --no-flip), "
            "decodes them and prints pycocotools' keypoint AP/AR table. "
            "The model is a .keras file, a .tflite or .onnx file from "
            "`export` "
            "(scored through the LiteRT interpreter) or a preset."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("--annotations", required=True, help="COCO JSON")
    parser.add_argument("--images", required=True, help="image folder")
    parser.add_argument(
        "--detections", default=None, help="COCO results JSON of person boxes"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--no-flip", action="store_true", help="disable the flip test"
    )
    parser.add_argument(
        "--refinement",
        default="quarter_offset",
        choices=["quarter_offset", "dark", "none"],
    )
    parser.add_argument(
        "--oks-nms",
        type=float,
        default=None,
        metavar="THRESHOLD",
        help="OKS non-maximum suppression of the results (HRNet: 0.9)",
    )
    parser.add_argument(
        "--results", default=None, help="write the results JSON here"
    )
    add_keypoint_layout_argument(
        parser,
        "replaces the model's (flip pairs of the flip test, OKS sigmas; "
        "default: the model's, else the annotations')",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object"
    )
    parser.set_defaults(func=run)


def run(args):
    from keras_evopose.cli.check_data import format_ap_table
    from keras_evopose.data.coco_instances import read_json
    from keras_evopose.metrics import evaluate_coco

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1; got {args.batch_size}")
    if args.oks_nms is not None and not 0 < args.oks_nms <= 1:
        raise UsageError(
            f"--oks-nms is an OKS threshold in (0, 1] (HRNet: 0.9); got "
            f"{args.oks_nms}"
        )
    check_model_arguments(args)
    check_file(args.annotations, "--annotations")
    check_file(args.images, "--images", kind="folder")
    if args.detections:
        check_file(args.detections, "--detections")
    if args.results:
        check_output(args.results, "--results")
    layout = read_keypoint_layout(args)
    # A file that is not JSON fails here, in one line, before the model
    # is built (and its random-weights note printed).
    read_json(args.annotations)
    if args.detections:
        read_json(args.detections)
    model = load_model(args)
    stats = evaluate_coco(
        model,
        args.annotations,
        args.images,
        detections=args.detections,
        batch_size=args.batch_size,
        flip_test=not args.no_flip,
        refinement=args.refinement,
        results_path=args.results,
        oks_nms_threshold=args.oks_nms,
        keypoint_layout=layout,
    )
    if args.json:
        print(json.dumps(stats))
        return 0
    boxes = "detection boxes" if args.detections else "ground-truth boxes"
    print(format_ap_table({boxes: stats}))
    print(
        "  ar_medium {ar_medium:.4f}  ar_large {ar_large:.4f}".format(**stats)
    )
    return 0
