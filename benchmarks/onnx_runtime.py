"""ONNX Runtime vs LiteRT vs Keras: heatmap fidelity, COCO AP and latency.

One process run: a preset is trained from scratch on the bundled COCO
val2017 subset (80 people, ground-truth boxes, no augmentation; it
overfits them, so the AP only compares the runtimes on one set of
weights, it says nothing about accuracy on COCO), exported with
`export_onnx` and with `export_litert(quantization=None)` (both from the
same `inference_model` graph), and then:

- fidelity: max/mean absolute difference of each file's heatmaps from the
  Keras model's on the 80 crops, and the Keras heatmap range;
- AP: the same `keras_evopose.metrics.evaluate_coco` call (flip test on)
  for the Keras model, the `.onnx` file (`ONNXModel`) and the `.tflite`
  file (`LiteRTModel`);
- latency: one image (zeros) per call, `--threads` threads in each
  runtime (LiteRT: XNNPACK, ONNX Runtime: CPU provider with all graph
  optimizations), one untimed call each, then `--rounds` rounds that time
  `--invokes` calls of each runtime in turn; the median over rounds of
  the per-round medians, as `measure_litert_latency` does. The load
  average is printed before and after (the runtimes alternate within each
  round, so their ratio holds on a shared machine).

    python benchmarks/onnx_runtime.py --preset test --steps 600 \
        --learning-rate 1e-2
    python benchmarks/onnx_runtime.py --preset small --steps 0   # latency only
    python benchmarks/onnx_runtime.py --quick   # CI smoke run, seconds
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "coco_kpt_mini"
ANNOTATIONS = DATA / "annotations" / "person_keypoints_val2017_mini.json"
IMAGES = DATA / "val2017"


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="test")
    parser.add_argument(
        "--input-size",
        default=None,
        metavar="HEIGHTxWIDTH",
        help="input size override, e.g. 128x96 (default: the preset's)",
    )
    parser.add_argument(
        "--steps", type=int, default=600, help="0: random weights, no AP"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--invokes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="CI smoke run")
    parser.add_argument("--json", default=None, help="also write JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.preset, args.steps, args.threads = "test", 2, [1]
        args.rounds, args.invokes = 2, 2
    return args


def train(model, args):
    """Fits `model` on the bundled val people for `args.steps` steps."""
    import keras

    from keras_evopose.data import coco_keypoints_dataset
    from keras_evopose.losses import HeatmapMSE

    dataset = (
        coco_keypoints_dataset(
            ANNOTATIONS,
            IMAGES,
            input_size=model.input_shape[1:3],
            heatmap_size=model.output_shape[1:3],
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
    model.fit(dataset, steps_per_epoch=args.steps, shuffle=False, verbose=2)


def runtime_calls(onnx_path, litert_path, threads):
    """`{runtime: call}`: one batch-1 inference of zeros per call."""
    import numpy as np
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(litert_path), num_threads=threads)
    interpreter.allocate_tensors()
    (detail,) = interpreter.get_input_details()
    interpreter.set_tensor(
        detail["index"], np.zeros(detail["shape"], detail["dtype"])
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(onnx_path), options, providers=["CPUExecutionProvider"]
    )
    (onnx_input,) = session.get_inputs()
    feed = {onnx_input.name: np.zeros(detail["shape"], "float32")}
    return {
        "LiteRT": interpreter.invoke,
        "ONNX Runtime": lambda: session.run(None, feed),
    }


def median_latencies(calls, rounds, invokes):
    """`{runtime: median ms}`, runtimes interleaved within each round."""
    for call in calls.values():
        call()  # untimed: XNNPACK packs weights, ORT allocates
    medians = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            times = []
            for _ in range(invokes):
                start = time.perf_counter()
                call()
                times.append((time.perf_counter() - start) * 1e3)
            medians[name].append(statistics.median(times))
    return {name: statistics.median(values) for name, values in medians.items()}


def load_average():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv=None):
    args = parse_arguments(argv)
    import keras
    import onnxruntime
    import tensorflow as tf

    from keras_evopose.cli import check_input_size
    from keras_evopose.cli import parse_size
    from keras_evopose.cli import preset_stride
    from keras_evopose.cli.export import crop_images
    from keras_evopose.cli.export import heatmap_difference
    from keras_evopose.export import LiteRTModel
    from keras_evopose.export import ONNXModel
    from keras_evopose.export import export_litert
    from keras_evopose.export import export_onnx
    from keras_evopose.metrics import evaluate_coco
    from keras_evopose.models import EvoPose2D

    keras.utils.set_random_seed(args.seed)
    overrides = {"stochastic_depth_rate": 0.0}
    if args.input_size:
        size = check_input_size(
            parse_size(args.input_size, "--input-size"),
            preset_stride(args.preset),
        )
        overrides["image_shape"] = (*size, 3)
    model = EvoPose2D.from_preset(args.preset, **overrides)
    if args.steps:
        train(model, args)
    result = {
        "preset": args.preset,
        "input_size": list(model.input_shape[1:3]),
        "steps": args.steps,
        "learning_rate": args.learning_rate,
    }
    with tempfile.TemporaryDirectory() as directory:
        onnx_path = os.path.join(directory, "model.onnx")
        litert_path = os.path.join(directory, "model.tflite")
        start = time.perf_counter()
        export_onnx(model, onnx_path)
        result["onnx_export_seconds"] = round(time.perf_counter() - start, 1)
        export_litert(model, litert_path, quantization=None)
        runtimes = {
            "ONNX Runtime": ONNXModel(onnx_path),
            "LiteRT": LiteRTModel(litert_path),
        }
        crops = crop_images(model, ANNOTATIONS, IMAGES)
        result["fidelity"] = {
            name: heatmap_difference(model, runtime, crops)
            for name, runtime in runtimes.items()
        }
        if args.steps:
            result["ap"] = {
                name: evaluate_coco(runtime, ANNOTATIONS, IMAGES)["ap"]
                for name, runtime in {"Keras": model, **runtimes}.items()
            }
        result["load_average_before"] = load_average()
        result["latency_ms"] = {
            threads: median_latencies(
                runtime_calls(onnx_path, litert_path, threads),
                args.rounds,
                args.invokes,
            )
            for threads in args.threads
        }
        result["load_average_after"] = load_average()
    result["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} CPUs; keras "
        f"{keras.__version__}, tensorflow {tf.__version__}, onnxruntime "
        f"{onnxruntime.__version__}"
    )
    print(json.dumps(result, indent=1))
    for name, difference in result["fidelity"].items():
        print(
            f"{name} vs Keras on {len(crops)} crops: max |diff| "
            f"{difference['max_error']:.3g}, "
            f"mean {difference['mean_error']:.3g}"
            f" (heatmaps in [{difference['heatmap_min']:.4g}, "
            f"{difference['heatmap_max']:.4g}])"
        )
    if "ap" in result:
        print(
            "AP (flip test): "
            + ", ".join(f"{k} {v:.4f}" for k, v in result["ap"].items())
        )
    print(
        f"\nlatency, ms per image ({args.rounds} rounds of {args.invokes} "
        f"calls; load average {result['load_average_before']} before, "
        f"{result['load_average_after']} after):\n"
    )
    print("| threads | LiteRT (XNNPACK) | ONNX Runtime (CPU) |")
    print("|---|---|---|")
    for threads, values in result["latency_ms"].items():
        print(
            f"| {threads} | {values['LiteRT']:.2f} | "
            f"{values['ONNX Runtime']:.2f} |"
        )
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
