"""`keras-evopose export`: write a LiteRT `.tflite` file (int8, float16
or float32) and compare its heatmaps with the Keras model's."""

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


def add_parser(subparsers):
    from keras_evopose.cli.evaluate import add_model_arguments

    parser = subparsers.add_parser(
        "export",
        description=(
            "Exports a model to LiteRT with a fixed batch-1 input. --int8 "
            "writes a full-integer file (int8 weights, activations, input "
            "and output; int32 biases) calibrated on person crops of a COCO "
            "keypoints JSON + images (the bundled COCO subset by default). "
            "Prints the file's tensor dtypes and the max/mean difference "
            "between its heatmaps and the Keras model's on those crops."
        ),
    )
    add_model_arguments(parser)
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument(
        "--int8", action="store_true", help="full-integer quantization"
    )
    precision.add_argument(
        "--float16", action="store_true", help="float16 weights"
    )
    parser.add_argument(
        "--output", default=None, help="default: <name>_<precision>.tflite"
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


def heatmap_difference(model, litert_model, images):
    """Max and mean absolute heatmap difference, and the heatmap range."""
    import numpy as np

    expected = model.predict(images, verbose=0)
    actual = litert_model.predict(images)
    error = np.abs(actual - expected)
    return {
        "max_error": float(error.max()),
        "mean_error": float(error.mean()),
        "heatmap_min": float(expected.min()),
        "heatmap_max": float(expected.max()),
    }


def run(args):
    from keras_evopose.cli.evaluate import check_model_arguments
    from keras_evopose.cli.evaluate import load_model
    from keras_evopose.data.coco_instances import read_json
    from keras_evopose.export import LiteRTModel
    from keras_evopose.export import export_litert
    from keras_evopose.export import tensor_dtypes
    from keras_evopose.export.litert import CONTRACT_SUFFIX

    if args.num_calibration_samples < 1:
        raise UsageError(
            "--num-calibration-samples must be >= 1; got "
            f"{args.num_calibration_samples}"
        )
    if (args.annotations is None) != (args.images is None):
        raise UsageError("give both --annotations and --images, or neither")
    if args.model and args.model.endswith(".tflite"):
        raise UsageError(
            f"--model {args.model} is already a .tflite file; export takes "
            "a .keras model or a --preset"
        )
    check_model_arguments(args)
    if args.output:
        check_output(args.output, "--output")
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
    output = args.output or f"{name}_{quantization or 'float32'}.tflite"
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
    stage(
        f"converting to {quantization or 'float32'} LiteRT"
        + (
            f" (calibrating on {min(len(crops), args.num_calibration_samples)}"
            " crops)"
            if quantization == "int8"
            else ""
        )
    )
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
        litert_model = LiteRTModel(output)
    stage(f"comparing heatmaps with Keras on {len(crops)} crops")
    report = {
        "output": str(output),
        "bytes": os.path.getsize(output),
        "quantization": quantization or "float32",
        "tensor_dtypes": tensor_dtypes(output),
        "num_compared_crops": len(crops),
        **heatmap_difference(model, litert_model, crops),
    }
    contract = output[: -len(".tflite")] + CONTRACT_SUFFIX
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
