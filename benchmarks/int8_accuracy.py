"""int8 LiteRT vs float Keras: heatmap error and COCO AP drop.

There are no pretrained weights here, so the preset is first fine-tuned
(from scratch) on the bundled COCO val2017 subset (80 people, ground-truth
boxes, no augmentation): the model overfits those people and reaches a
measurable AP on them. Then the same model is exported with full-integer
post-training quantization (calibrated on the same crops) and both are
scored with the same `keras_evopose.metrics.evaluate_coco` call (flip
test on). The AP is of a model trained on its test images: it only serves
to compare float with int8, not as an accuracy claim.

Run (TensorFlow backend, CPU is fine):

    python benchmarks/int8_accuracy.py --preset small --steps 300
"""

import argparse
import json
import os
import pathlib
import platform
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "coco_kpt_mini"
ANNOTATIONS = DATA / "annotations" / "person_keypoints_val2017_mini.json"
IMAGES = DATA / "val2017"


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument(
        "--input-size",
        default=None,
        metavar="HEIGHTxWIDTH",
        help="input size override, e.g. 128x96 (default: the preset's)",
    )
    # Deprecated spelling (two numbers), kept so old commands still run.
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        default=None,
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output-dir",
        default=str(pathlib.Path(tempfile.gettempdir()) / "int8_accuracy"),
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_arguments(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import tensorflow as tf

    from keras_evopose.cli import check_input_size
    from keras_evopose.cli import parse_size
    from keras_evopose.cli import preset_stride
    from keras_evopose.cli.export import crop_images
    from keras_evopose.cli.export import heatmap_difference
    from keras_evopose.data import coco_keypoints_dataset
    from keras_evopose.export import LiteRTModel
    from keras_evopose.export import export_litert
    from keras_evopose.export import tensor_dtypes
    from keras_evopose.losses import HeatmapMSE
    from keras_evopose.metrics import evaluate_coco
    from keras_evopose.models import EvoPose2D

    keras.utils.set_random_seed(args.seed)
    output_dir = pathlib.Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    overrides = {"stochastic_depth_rate": 0.0}
    if args.image_size and not args.input_size:
        print("note: --image-size H W is deprecated; use --input-size HxW")
        args.input_size = "x".join(map(str, args.image_size))
    if args.input_size:
        size = check_input_size(
            parse_size(args.input_size, "--input-size"),
            preset_stride(args.preset),
        )
        overrides["image_shape"] = (*size, 3)
    model = EvoPose2D.from_preset(args.preset, **overrides)
    input_size = tuple(model.input_shape[1:3])
    heatmap_size = tuple(model.output_shape[1:3])
    train = (
        coco_keypoints_dataset(
            ANNOTATIONS,
            IMAGES,
            input_size=input_size,
            heatmap_size=heatmap_size,
            batch_size=args.batch_size,
            drop_remainder=True,
        )
        .cache()
        .shuffle(8, seed=args.seed)
        .repeat()
    )
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(
                args.learning_rate, decay_steps=args.steps
            )
        ),
        loss=HeatmapMSE(),
    )
    start = time.perf_counter()
    history = model.fit(train, epochs=1, steps_per_epoch=args.steps, verbose=2)
    train_seconds = time.perf_counter() - start

    crops = crop_images(model, ANNOTATIONS, IMAGES)
    path = export_litert(
        model,
        output_dir / f"{args.preset}_int8.tflite",
        quantization="int8",
        representative_data=crops,
    )
    litert_model = LiteRTModel(path)
    difference = heatmap_difference(model, litert_model, crops)
    float_ap = evaluate_coco(model, ANNOTATIONS, IMAGES)
    int8_ap = evaluate_coco(litert_model, ANNOTATIONS, IMAGES)
    result = {
        "preset": args.preset,
        "input_size": list(input_size),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "final_loss": float(history.history["loss"][-1]),
        "train_seconds": round(train_seconds, 1),
        "tflite_bytes": os.path.getsize(path),
        "tensor_dtypes": tensor_dtypes(path),
        "num_crops": len(crops),
        **difference,
        "float_ap": float_ap["ap"],
        "int8_ap": int8_ap["ap"],
        "float_ap50": float_ap["ap50"],
        "int8_ap50": int8_ap["ap50"],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "versions": {
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
        },
    }
    (output_dir / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print()
    print("| model | AP | AP50 |")
    print("|---|---|---|")
    print(f"| float32 Keras | {float_ap['ap']:.3f} | {float_ap['ap50']:.3f} |")
    print(f"| int8 LiteRT | {int8_ap['ap']:.3f} | {int8_ap['ap50']:.3f} |")
    return result


if __name__ == "__main__":
    main()
