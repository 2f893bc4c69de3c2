"""`keras-evopose export`: write a LiteRT `.tflite` file (int8, float16
or float32) or an ONNX file and compare its heatmaps with the Keras
model's."""

import json
import os
import pathlib
import sys
import time

from keras_evopose.cli import UsageError
from keras_evopose.cli import check_file
from keras_evopose.cli import check_output
from keras_evopose.cli import keep_native_logs
from keras_evopose.cli import native_log_filter

# The bundled COCO val2017 subset of a source checkout (calibration default).
BUNDLED_DATA = (
    pathlib.Path(__file__).resolve().parents[2] / "data/coco_kpt_mini"
)
BUNDLED_ANNOTATIONS = (
    BUNDLED_DATA / "annotations" / "person_keypoints_val2017_mini.json"
)
BUNDLED_IMAGES = BUNDLED_DATA / "val2017"
FORMATS = ("litert", "onnx")
SUFFIXES = {"litert": ".tflite", "onnx": ".onnx"}


def add_parser(subparsers):
    from keras_evopose.cli.evaluate import add_model_arguments

    parser = subparsers.add_parser(
        "export",
        description=(
            "Exports a model to LiteRT with a fixed batch-1 input (or, with "
            "--format onnx, to float32 ONNX with a dynamic batch). --int8 "
            "writes a full-integer file (int8 weights, activations, input "
            "and output; int32 biases) calibrated on person crops of a COCO "
            "keypoints JSON + images (the bundled COCO subset by default). "
            "Prints the file's tensor dtypes and the max/mean difference "
            "between its heatmaps and the Keras model's on those crops."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="litert",
        help="litert (.tflite, default) or onnx (float32, needs the onnx "
        "extra)",
    )
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument(
        "--int8", action="store_true", help="full-integer quantization"
    )
    precision.add_argument(
        "--float16", action="store_true", help="float16 weights"
    )
    parser.add_argument(
        "--output",
        default=None,
        help="default: <name>_<precision>.tflite (.onnx with --format onnx)",
    )
    parser.add_argument(
        "--annotations",
        default=None,
        help="COCO JSON of the calibration/comparison crops "
        "(default: the bundled data/coco_kpt_mini)",
    )
    parser.add_argument("--images", default=None, help="image folder")
    parser.add_argument(
        "--num-calibration-samples",
        type=int,
        default=100,
        help="crops that calibrate the int8 ranges (default 100)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object"
    )
    parser.set_defaults(func=run)


def crop_images(model, annotations, images, limit=None):
    """Normalized person crops `(N, H, W, 3)` cropped as the model's data
    contract says (its input size, padding, fill; ground-truth boxes, no
    augmentation), as a NumPy array. Any keypoint set calibrates."""
    import numpy as np

    from keras_evopose.data import coco_keypoints_dataset
    from keras_evopose.inference import model_contract

    options, _ = model_contract(model)
    dataset = coco_keypoints_dataset(
        annotations, images, options=options, batch_size=32
    )
    batches = []
    count = 0
    for batch_images, _, _ in dataset:
        batches.append(np.asarray(batch_images))
        count += len(batches[-1])
        if limit is not None and count >= limit:
            break
    return np.concatenate(batches)[:limit]


def heatmap_difference(model, exported_model, images):
    """Max and mean absolute heatmap difference, and the heatmap range."""
    import numpy as np

    expected = model.predict(images, verbose=0)
    actual = exported_model.predict(images)
    error = np.abs(actual - expected)
    return {
        "max_error": float(error.max()),
        "mean_error": float(error.mean()),
        "heatmap_min": float(expected.min()),
        "heatmap_max": float(expected.max()),
    }


def run(args):
    from keras_evopose.cli.evaluate import check_model_arguments
    from keras_evopose.cli.evaluate import check_onnx_packages
    from keras_evopose.cli.evaluate import load_model
    from keras_evopose.data.coco_instances import read_json
    from keras_evopose.export.litert import CONTRACT_SUFFIX

    onnx = args.format == "onnx"
    if onnx and (args.int8 or args.float16):
        raise UsageError(
            f"--{'int8' if args.int8 else 'float16'} is a LiteRT "
            "quantization; --format onnx writes float32 (drop the flag or "
            "use --format litert)"
        )
    if args.num_calibration_samples < 1:
        raise UsageError(
            "--num-calibration-samples must be >= 1; got "
            f"{args.num_calibration_samples}"
        )
    if (args.annotations is None) != (args.images is None):
        raise UsageError("give both --annotations and --images, or neither")
    if args.model and args.model.endswith((".tflite", ".onnx")):
        raise UsageError(
            f"--model {args.model} is already an exported file; export "
            "takes a .keras model or a --preset"
        )
    check_model_arguments(args)
    suffix = SUFFIXES[args.format]
    if args.output:
        check_output(args.output, "--output")
        if not args.output.endswith(suffix):
            raise UsageError(
                f"--output {args.output}: --format {args.format} writes a "
                f"{suffix} file; end the name with {suffix}"
            )
    if onnx:
        check_onnx_packages("--format onnx")
    annotations, images = args.annotations, args.images
    if annotations is not None:
        check_file(annotations, "--annotations")
        check_file(images, "--images", kind="folder")
        # Not JSON: one line now, not after the model is built.
        read_json(annotations)
    else:
        if not BUNDLED_ANNOTATIONS.exists():
            raise UsageError(
                "the bundled COCO subset is not in this installation; "
                "pass --annotations and --images for calibration"
            )
        annotations, images = BUNDLED_ANNOTATIONS, BUNDLED_IMAGES
    quantization = "int8" if args.int8 else "float16" if args.float16 else None
    name = args.preset or pathlib.Path(args.model).stem
    output = args.output or f"{name}_{quantization or 'float32'}{suffix}"
    # One line as each stage starts (the int8 conversion alone takes
    # tens of seconds); on stderr with --json, whose stdout is one object.
    start = time.monotonic()
    stream = sys.stderr if args.json else sys.stdout

    def stage(text):
        elapsed = time.monotonic() - start
        print(f"export [{elapsed:4.0f} s] {text}", file=stream, flush=True)

    stage(f"loading {args.model or 'preset ' + repr(args.preset)}")
    model = load_model(args)
    stage(f"cropping the people of {annotations}")
    crops = crop_images(model, annotations, images)
    if onnx:
        stage("converting to float32 ONNX")
        exported_model, dtypes = export_onnx_file(model, output, args)
    else:
        stage(
            f"converting to {quantization or 'float32'} LiteRT"
            + (
                " (calibrating on "
                f"{min(len(crops), args.num_calibration_samples)} crops)"
                if quantization == "int8"
                else ""
            )
        )
        exported_model, dtypes = export_litert_file(
            model, output, quantization, crops, args
        )
    stage(f"comparing heatmaps with Keras on {len(crops)} crops")
    report = {
        "output": str(output),
        "format": args.format,
        "bytes": os.path.getsize(output),
        "quantization": quantization or "float32",
        "tensor_dtypes": dtypes,
        "num_compared_crops": len(crops),
        **heatmap_difference(model, exported_model, crops),
    }
    contract = output[: -len(suffix)] + CONTRACT_SUFFIX
    if os.path.exists(contract):
        report["contract"] = contract
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"wrote {report['output']} ({report['bytes']:,} bytes)")
    dtypes = ", ".join(f"{k} x{v}" for k, v in report["tensor_dtypes"].items())
    print(f"  tensors    {dtypes}")
    if "contract" in report:
        print(
            f"  contract   {report['contract']} (crop options and keypoint "
            "layout; keep it beside the file)"
        )
    print(
        f"  heatmaps vs Keras on {report['num_compared_crops']} crops: "
        f"max |diff| {report['max_error']:.4g}, "
        f"mean |diff| {report['mean_error']:.4g} "
        f"(Keras heatmaps in [{report['heatmap_min']:.4g}, "
        f"{report['heatmap_max']:.4g}])"
    )
    return 0


def export_litert_file(model, output, quantization, crops, args):
    """`(LiteRTModel, tensor dtype counts)` of the `.tflite` written."""
    from keras_evopose.export import LiteRTModel
    from keras_evopose.export import export_litert
    from keras_evopose.export import tensor_dtypes

    # The converter and the interpreter log MLIR passes, calibration and
    # delegate lines natively: kept only with --log-level info or debug.
    with native_log_filter(keep=keep_native_logs(args)):
        export_litert(
            model,
            output,
            quantization=quantization,
            representative_data=crops,
            num_calibration_samples=args.num_calibration_samples,
        )
        return LiteRTModel(output), tensor_dtypes(output)


def export_onnx_file(model, output, args):
    """`(ONNXModel, initializer dtype counts)` of the `.onnx` written."""
    import collections

    import onnx

    from keras_evopose.export import ONNXModel
    from keras_evopose.export import export_onnx

    # tf2onnx logs its passes through Python logging and TensorFlow's
    # graph freezing natively: kept only with --log-level info or debug.
    with native_log_filter(keep=keep_native_logs(args)):
        export_onnx(model, output)
        graph = onnx.load(output).graph
    counts = collections.Counter(
        onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).name
        for tensor in graph.initializer
    )
    return ONNXModel(output), dict(sorted(counts.items()))
