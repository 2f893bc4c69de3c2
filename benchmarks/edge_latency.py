"""CPU speed of EvoPose2D vs SimpleBaseline-R50: LiteRT latency, TF training.

Everything is built and measured in one process run, so the ratios hold on
a machine shared with other jobs:

- LiteRT latency: each model is exported with
  `keras_evopose.export.export_litert` (float32 and full-integer int8, one
  256x192 image, random weights, calibrated on random normal images) and
  run under the LiteRT interpreter (XNNPACK) with 1 and 2 threads. A round
  times `--invokes` calls of every interpreter in turn; the per-call median
  of each round is kept and the table shows the median over `--rounds`
  rounds. The int8 file size is reported too. EvoPose2D is exported twice:
  with the default head rewrite (`rewrite_head=True`) and without it (the
  "transposed head" rows, the graph exported before the rewrite existed).
- TensorFlow CPU training: images/s of `train_on_batch` (Adam, MSE to
  random heatmaps) at the same batch size for every model, with
  `jit_compile` off and on; the first (compiling) step is not timed and
  the rounds alternate between models.
- `--profile PRESET`: where the time goes in one EvoPose2D network, per part
  (stem, each stage, each head step). Prefix networks (input up to the end
  of each part, from `build_flat_model`) are exported and trained like the
  models above; a part's time is the difference between consecutive
  prefixes. The rewritten head is timed as the whole network minus the
  backbone.

SimpleBaseline-R50 is `benchmarks/gpu_throughput.py`'s builder
(`keras.applications.ResNet50(weights=None)` + three 4x4 transposed convs
of 256 channels + BN + ReLU + a 1x1 conv).

    KERAS_BACKEND=tensorflow python benchmarks/edge_latency.py
    KERAS_BACKEND=tensorflow python benchmarks/edge_latency.py --profile small
    python benchmarks/edge_latency.py --quick   # CI smoke run, seconds

`--quick` runs the same code on the tiny `test` preset (64x48) with its
transposed-head export as the reference instead of SimpleBaseline-R50; its
numbers mean nothing.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

HERE = pathlib.Path(__file__).resolve().parent
BASELINE = "simple_baseline_r50"
TRANSPOSED_SUFFIX = " (transposed head)"
SUBPIXEL_SUFFIX = " (subpixel head)"


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(
        description="LiteRT latency and TF CPU training throughput of "
        "EvoPose2D vs SimpleBaseline-R50."
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["extra_small", "small", BASELINE],
        help=f"EvoPose2D presets and/or {BASELINE}",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["float32", "int8"],
        choices=["float32", "int8"],
    )
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--invokes", type=int, default=5, help="timed calls per round"
    )
    parser.add_argument(
        "--calibration-samples",
        type=int,
        default=8,
        help="random images calibrating int8 (latency does not depend on "
        "their values)",
    )
    parser.add_argument(
        "--no-transposed",
        action="store_true",
        help="skip the EvoPose2D exports without the head rewrite",
    )
    parser.add_argument(
        "--training-batch-size",
        type=int,
        default=8,
        help="0 skips the training measurement",
    )
    parser.add_argument("--training-steps", type=int, default=2)
    parser.add_argument("--training-rounds", type=int, default=3)
    parser.add_argument(
        "--jit", nargs="+", default=["off", "on"], choices=["off", "on"]
    )
    parser.add_argument(
        "--profile",
        default=None,
        metavar="PRESET",
        help="time the parts of this EvoPose2D preset instead",
    )
    parser.add_argument(
        "--reference",
        default=BASELINE,
        help="model the ratios divide (default: SimpleBaseline-R50)",
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke run")
    parser.add_argument("--json", default=None, help="also write JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.models = ["test"]
        args.reference = "test" + TRANSPOSED_SUFFIX
        args.no_transposed = False
        args.threads = [1]
        args.rounds = 2
        args.invokes = 2
        args.calibration_samples = 2
        args.training_batch_size = 2
        args.training_steps = 1
        args.training_rounds = 1
        if args.profile:
            args.profile = "test"
    return args


def build_model(name, **overrides):
    """An EvoPose2D preset (with `from_preset` overrides, e.g.
    `head_upsampling="subpixel"`) or SimpleBaseline-R50 at 256x192,
    random init."""
    if name == BASELINE:
        sys.path.insert(0, str(HERE))
        from gpu_throughput import simple_baseline_r50

        return simple_baseline_r50((256, 192, 3))
    from keras_evopose.models import EvoPose2D

    return EvoPose2D.from_preset(name, **overrides)


def calibration_images(model, count):
    import numpy as np

    shape = (count, *model.input_shape[1:])
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def export(model, path, precision, args, rewrite_head=True):
    from keras_evopose.export import export_litert

    export_litert(
        model,
        path,
        quantization="int8" if precision == "int8" else None,
        representative_data=calibration_images(model, args.calibration_samples),
        num_calibration_samples=args.calibration_samples,
        rewrite_head=rewrite_head,
    )
    return path


def export_all(models, args, directory):
    """`{(label, precision): path}` for every model and precision."""
    paths = {}
    for label, (model, rewrite_head) in models.items():
        for precision in args.precisions:
            name = f"{label}_{precision}".replace(" ", "_")
            name = name.replace("(", "").replace(")", "")
            paths[label, precision] = export(
                model,
                os.path.join(directory, f"{name}.tflite"),
                precision,
                args,
                rewrite_head=rewrite_head,
            )
            print(f"exported {label} {precision}", file=sys.stderr)
    return paths


def timings(args):
    """`[(precision, threads, clock)]` measured: CPU clock for 1 thread."""
    columns = []
    for precision in args.precisions:
        for count in args.threads:
            columns.append((precision, count, "wall"))
            if count == 1:
                columns.append((precision, count, "cpu"))
    return columns


def column_title(column):
    precision, count, clock = column
    return f"{precision} {count}T" + (" cpu" if clock == "cpu" else "")


def median_latencies(paths, args):
    """`{(label, precision, threads, clock): median ms per call}`.

    All files of one precision are timed in the same interleaved rounds.
    """
    from keras_evopose.export import measure_litert_latency

    latencies = {}
    for precision, count, clock in timings(args):
        labels = [label for label, p in paths if p == precision]
        values = measure_litert_latency(
            [paths[label, precision] for label in labels],
            num_threads=count,
            num_rounds=args.rounds,
            num_invokes=args.invokes,
            clock=clock,
        )
        for label, value in zip(labels, values):
            latencies[label, precision, count, clock] = value
    return latencies


def training_rates(models, args):
    """`{(label, jit, clock): median images/s}` of `train_on_batch`.

    `clock` "wall" is images per elapsed second; "cpu" images per second
    of process CPU time (all TensorFlow threads), which other jobs on the
    machine do not inflate.
    """
    import keras
    import numpy as np

    batch = args.training_batch_size
    rng = np.random.default_rng(0)
    steps = {}
    for label, model in models.items():
        images = rng.normal(size=(batch, *model.input_shape[1:]))
        heatmaps = rng.normal(size=(batch, *model.output_shape[1:]))
        for jit in args.jit:
            # One copy per jit setting: compile() binds one train function.
            copy = keras.models.clone_model(model)
            copy.compile(
                optimizer="adam", loss="mse", jit_compile=(jit == "on")
            )
            data = (images.astype("float32"), heatmaps.astype("float32"))
            copy.train_on_batch(*data)  # compiles
            steps[label, jit] = (copy, data)
            print(f"compiled {label} jit={jit}", file=sys.stderr)
    rates = {}
    for _ in range(args.training_rounds):
        for (label, jit), (model, data) in steps.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.training_steps):
                model.train_on_batch(*data)
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            images = batch * args.training_steps
            rates.setdefault((label, jit, "wall"), []).append(images / wall)
            rates.setdefault((label, jit, "cpu"), []).append(images / cpu)
    return {key: statistics.median(values) for key, values in rates.items()}


def load_average():
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def machine_lines():
    import keras
    import tensorflow as tf

    return [
        f"machine: {platform.machine()} {platform.processor() or ''}, "
        f"{os.cpu_count()} cores; python {platform.python_version()}, "
        f"keras {keras.__version__}, tensorflow {tf.__version__}",
    ]


def ratio_text(reference, value, higher_is_better):
    if not reference or not value:
        return "-"
    ratio = value / reference if higher_is_better else reference / value
    return f"{ratio:.2f}x"


def run_comparison(args):
    labels = {}
    for name in args.models:
        model = build_model(name)
        labels[name] = (model, True)
        if name != BASELINE and not args.no_transposed:
            labels[name + TRANSPOSED_SUFFIX] = (model, False)
    with tempfile.TemporaryDirectory() as directory:
        paths = export_all(labels, args, directory)
        sizes = {key: os.path.getsize(path) for key, path in paths.items()}
        load_before = load_average()
        latencies = median_latencies(paths, args)
    results = {"latency_ms": {}, "int8_bytes": {}, "train_images_per_s": {}}
    columns = timings(args)
    print(
        f"\nLiteRT latency, ms per image (median of {args.rounds} rounds of "
        f"{args.invokes} calls; load average {load_before} before, "
        f"{load_average()} after):\n"
    )
    print(
        "| model | " + " | ".join(map(column_title, columns)) + " | int8 file |"
    )
    print("|---" * (2 + len(columns)) + "|")
    for label in labels:
        cells = []
        for column in columns:
            value = latencies[(label, *column)]
            results["latency_ms"][f"{label} {column_title(column)}"] = value
            cells.append(f"{value:.2f}" if value < 10 else f"{value:.1f}")
        size = sizes.get((label, "int8"))
        if size:
            results["int8_bytes"][label] = size
        size_text = f"{size / 2**20:.2f} MiB" if size else "-"
        print(f"| {label} | " + " | ".join(cells) + f" | {size_text} |")
    reference = args.reference
    if reference in labels:
        print(f"\nlatency ratio {reference} / model (higher = faster):\n")
        print("| model | " + " | ".join(map(column_title, columns)) + " |")
        print("|---" * (1 + len(columns)) + "|")
        for label in labels:
            if label == reference:
                continue
            cells = [
                ratio_text(
                    latencies[(reference, *column)],
                    latencies[(label, *column)],
                    higher_is_better=False,
                )
                for column in columns
            ]
            print(f"| {label} | " + " | ".join(cells) + " |")
    if args.training_batch_size:
        models = {}
        for name, (model, rewrite) in labels.items():
            if rewrite:  # training does not depend on the export rewrite
                models[name] = model
                if name != BASELINE:
                    models[name + SUBPIXEL_SUFFIX] = build_model(
                        name, head_upsampling="subpixel"
                    )
        load_before = load_average()
        rates = training_rates(models, args)
        clocks = ("wall", "cpu")
        print(
            f"\nTensorFlow CPU training, images/s (wall) and images per CPU "
            f"second, batch {args.training_batch_size} (median of "
            f"{args.training_rounds} rounds of {args.training_steps} steps; "
            f"load average {load_before} before, {load_average()} after):\n"
        )
        titles = [f"jit {jit} {clock}" for jit in args.jit for clock in clocks]
        print("| model | " + " | ".join(titles) + " |")
        print("|---" * (1 + len(titles)) + "|")
        for name in models:
            cells = []
            for jit in args.jit:
                for clock in clocks:
                    rate = rates[name, jit, clock]
                    key = f"{name} jit {jit} {clock}"
                    results["train_images_per_s"][key] = rate
                    cells.append(f"{rate:.2f}")
            print(f"| {name} | " + " | ".join(cells) + " |")
        if reference in models:
            for name in models:
                if name == reference:
                    continue
                cells = [
                    f"jit {jit} {clock} "
                    + ratio_text(
                        rates[reference, jit, clock],
                        rates[name, jit, clock],
                        higher_is_better=True,
                    )
                    for jit in args.jit
                    for clock in clocks
                ]
                print(
                    f"training ratio {name} / {reference}: " + ", ".join(cells)
                )
    return results


def part_ends(flat_model, head_steps):
    """`[(part, last layer name)]` of a flat EvoPose2D network, in order."""
    names = [layer.name for layer in flat_model.layers]
    ends = [("stem", "stem_activation")]
    stage = 1
    while any(name.startswith(f"stage{stage}_") for name in names):
        last = [n for n in names if n.startswith(f"stage{stage}_")][-1]
        ends.append((f"stage{stage}", last))
        stage += 1
    for index in range(1, head_steps + 1):
        ends.append((f"head deconv{index}", f"head_deconv{index}_activation"))
    ends.append(("head final conv", "head_final_conv"))
    return ends


def run_profile(args):
    import keras

    from keras_evopose.models import build_flat_model

    model = build_model(args.profile)
    flat = build_flat_model(model, keras)
    ends = part_ends(flat, len(model.head_filters))
    prefixes = {
        part: keras.Model(flat.input, flat.get_layer(last).output)
        for part, last in ends
    }
    exported = {part: (prefix, False) for part, prefix in prefixes.items()}
    exported["whole, rewritten head"] = (model, True)
    with tempfile.TemporaryDirectory() as directory:
        paths = export_all(exported, args, directory)
        load_before = load_average()
        latencies = median_latencies(paths, args)
    results = {"latency_ms": {}, "train_ms": {}}
    columns = timings(args)
    print(
        f"\nLiteRT ms per part of {args.profile} (median of {args.rounds} "
        f"rounds; load average {load_before} before, {load_average()} "
        "after):\n"
    )
    print("| part | " + " | ".join(map(column_title, columns)) + " |")
    print("|---" * (1 + len(columns)) + "|")
    previous = {column: 0.0 for column in columns}
    backbone_end = ends[-len(model.head_filters) - 2][0]
    for part, _ in ends:
        cells = []
        for column in columns:
            total = latencies[(part, *column)]
            part_ms = total - previous[column]
            results["latency_ms"][f"{part} {column_title(column)}"] = part_ms
            cells.append(f"{part_ms:.1f}")
            previous[column] = total
        print(f"| {part} | " + " | ".join(cells) + " |")
    cells = []
    for column in columns:
        head = (
            latencies[("whole, rewritten head", *column)]
            - latencies[(backbone_end, *column)]
        )
        key = f"rewritten head {column_title(column)}"
        results["latency_ms"][key] = head
        cells.append(f"{head:.1f}")
    print("| rewritten head (whole - backbone) | " + " | ".join(cells) + " |")
    totals = [
        f"{latencies[(ends[-1][0], *column)]:.1f} / "
        f"{latencies[('whole, rewritten head', *column)]:.1f}"
        for column in columns
    ]
    print("| whole: transposed / rewritten head | " + " | ".join(totals) + " |")
    if args.training_batch_size:
        rates = training_rates(dict(prefixes), args)
        batch = args.training_batch_size
        clocks = ("wall", "cpu")
        titles = [f"jit {jit} {clock}" for jit in args.jit for clock in clocks]
        print(
            f"\nTensorFlow CPU training step, ms per batch of {batch} "
            "(forward + backward + Adam, per part; wall and CPU time):\n"
        )
        print("| part | " + " | ".join(titles) + " |")
        print("|---" * (1 + len(titles)) + "|")
        previous = {}
        for part, _ in ends:
            cells = []
            for jit in args.jit:
                for clock in clocks:
                    step_ms = batch / rates[part, jit, clock] * 1e3
                    part_ms = step_ms - previous.get((jit, clock), 0.0)
                    results["train_ms"][f"{part} jit {jit} {clock}"] = part_ms
                    cells.append(f"{part_ms:.0f}")
                    previous[jit, clock] = step_ms
            print(f"| {part} | " + " | ".join(cells) + " |")
    return results


def main(argv=None):
    args = parse_arguments(argv)
    for line in machine_lines():
        print(line)
    started = time.perf_counter()
    results = run_profile(args) if args.profile else run_comparison(args)
    print(f"\nwall time: {time.perf_counter() - started:.0f} s")
    if args.json:
        results["arguments"] = vars(args)
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
