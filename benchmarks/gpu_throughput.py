"""GPU throughput of EvoPose2D presets vs SimpleBaseline-R50 (JAX backend).

Times the compiled functions only: each model's `stateless_call` (inference)
and a full training step (forward, heatmap MSE, gradients, Adam update,
BatchNormalization statistics) are jitted, the data is placed on the device
once, the first calls (compilation) are not timed, and every timed run ends
with `block_until_ready`. All models run in one process, one after the
other, at each precision (`float32`, `mixed_bfloat16`), so their ratios hold
on a noisy machine.

SimpleBaseline-R50 (Xiao et al. 2018) is built the same way here:
`keras.applications.ResNet50(weights=None, include_top=False)` + three
stride-2 4x4 transposed convs of 256 channels, each with BN + ReLU, + a 1x1
conv to the heatmaps, at 256x192 like EvoPose2D-S.

Written for an H100-class GPU with `KERAS_BACKEND=jax` (no TensorFlow
needed). `--quick` runs the same code on CPU in seconds (the `test` preset,
a 64x48 input, batch 2): that is what CI runs; its numbers mean nothing.

    KERAS_BACKEND=jax python benchmarks/gpu_throughput.py
    KERAS_BACKEND=jax python benchmarks/gpu_throughput.py --quick
"""

import argparse
import contextlib
import json
import os
import platform
import sys
import time

PRECISIONS = ("float32", "mixed_bfloat16")


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(
        description="EvoPose2D vs SimpleBaseline-R50 throughput (JAX)."
    )
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["small", "extra_small"],
        help="EvoPose2D presets (default: small extra_small)",
    )
    parser.add_argument("--inference-batch-size", type=int, default=128)
    parser.add_argument("--training-batch-size", type=int, default=64)
    parser.add_argument(
        "--iterations", type=int, default=50, help="timed calls per run"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs per measurement; the best is kept",
    )
    parser.add_argument(
        "--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip SimpleBaseline-R50",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CPU smoke run: test preset, 64x48 baseline, batch 2, "
        "2 iterations",
    )
    parser.add_argument("--json", default=None, help="also write JSON here")
    parser.add_argument(
        "--profile",
        default=None,
        help="write a jax.profiler trace of the timed runs to this folder",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.presets = ["test"]
        args.inference_batch_size = 2
        args.training_batch_size = 2
        args.iterations = 2
        args.repeats = 1
    return args


def simple_baseline_r50(image_shape, num_keypoints=17):
    """SimpleBaseline-R50: ResNet50 (random weights) + 3 deconvs + 1x1."""
    import keras

    inputs = keras.Input(shape=image_shape, name="image")
    backbone = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=image_shape
    )
    x = backbone(inputs)
    for index in range(1, 4):
        x = keras.layers.Conv2DTranspose(
            256,
            4,
            strides=2,
            padding="same",
            use_bias=False,
            name=f"deconv{index}",
        )(x)
        x = keras.layers.BatchNormalization(name=f"deconv{index}_bn")(x)
        x = keras.layers.ReLU(name=f"deconv{index}_relu")(x)
    outputs = keras.layers.Conv2D(num_keypoints, 1, name="final_conv")(x)
    return keras.Model(inputs, outputs, name="simple_baseline_r50")


def best_rate(step, state, batch_size, iterations, repeats):
    """Images per second of `state = step(*state)` (best of `repeats`).

    Each call takes what the previous one returned (a training step
    returns the new weights), so the timed calls form one dependent chain
    and the final `block_until_ready` waits for all of them.
    """
    import jax

    rates = []
    for _ in range(repeats):
        jax.block_until_ready(state)
        start = time.perf_counter()
        for _ in range(iterations):
            state = step(*state)
        jax.block_until_ready(state)
        rates.append(batch_size * iterations / (time.perf_counter() - start))
    return max(rates), state


def measure(model, args):
    """Inference and training-step images/s of one built model."""
    import jax
    import keras
    import numpy as np

    image_shape = tuple(model.input_shape[1:])
    heatmap_shape = tuple(model.output_shape[1:])
    rng = np.random.default_rng(0)

    def device_array(shape):
        return jax.device_put(rng.normal(size=shape).astype("float32"))

    trainable = [variable.value for variable in model.trainable_variables]
    non_trainable = [
        variable.value for variable in model.non_trainable_variables
    ]

    # Inference: the jitted stateless call. The heatmaps go back in as a
    # dummy argument so the calls chain (same shapes every call).
    @jax.jit
    def infer(trainable, non_trainable, images, previous_heatmaps):
        heatmaps, _ = model.stateless_call(
            trainable, non_trainable, images, training=False
        )
        return trainable, non_trainable, images, heatmaps

    images = device_array((args.inference_batch_size, *image_shape))
    heatmaps = jax.numpy.zeros(
        (args.inference_batch_size, *heatmap_shape), model.compute_dtype
    )
    state = infer(trainable, non_trainable, images, heatmaps)  # compile
    inference_rate, _ = best_rate(
        infer,
        state,
        args.inference_batch_size,
        args.iterations,
        args.repeats,
    )

    # Training step: heatmap MSE, gradients, Adam, BN statistics.
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    optimizer_variables = [variable.value for variable in optimizer.variables]

    def loss_function(trainable, non_trainable, images, targets):
        heatmaps, non_trainable = model.stateless_call(
            trainable, non_trainable, images, training=True
        )
        error = keras.ops.cast(heatmaps, "float32") - targets
        return keras.ops.mean(keras.ops.square(error)), non_trainable

    gradient_function = jax.value_and_grad(loss_function, has_aux=True)

    @jax.jit
    def train_step(
        trainable, non_trainable, optimizer_variables, images, targets
    ):
        (_, non_trainable), gradients = gradient_function(
            trainable, non_trainable, images, targets
        )
        trainable, optimizer_variables = optimizer.stateless_apply(
            optimizer_variables, gradients, trainable
        )
        return trainable, non_trainable, optimizer_variables, images, targets

    train_arguments = (
        trainable,
        non_trainable,
        optimizer_variables,
        device_array((args.training_batch_size, *image_shape)),
        device_array((args.training_batch_size, *heatmap_shape)),
    )
    train_arguments = train_step(*train_arguments)  # compile
    training_rate, _ = best_rate(
        train_step,
        train_arguments,
        args.training_batch_size,
        args.iterations,
        args.repeats,
    )
    return inference_rate, training_rate


def build_models(args):
    """`(name, builder)` pairs; builders run under the current policy."""
    from keras_evopose.models import EvoPose2D

    models = [
        (
            f"EvoPose2D-{preset}",
            lambda preset=preset: EvoPose2D.from_preset(preset),
        )
        for preset in args.presets
    ]
    if not args.no_baseline:
        image_shape = (64, 48, 3) if args.quick else (256, 192, 3)
        models.append(
            ("SimpleBaseline-R50", lambda: simple_baseline_r50(image_shape))
        )
    return models


def machine_description():
    import jax
    import keras

    device = jax.devices()[0]
    return {
        "device": f"{device.platform}: {getattr(device, 'device_kind', '')}",
        "num_devices": jax.device_count(),
        "jax": jax.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def markdown_table(rows, args):
    precisions = " / ".join(args.precisions)
    lines = [
        f"| model | input | params "
        f"| infer img/s b{args.inference_batch_size} {precisions} "
        f"| train img/s b{args.training_batch_size} {precisions} |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        inference = " / ".join(
            f"{row[p]['inference']:,.0f}" for p in args.precisions
        )
        training = " / ".join(
            f"{row[p]['training']:,.0f}" for p in args.precisions
        )
        lines.append(
            f"| {name} | {row['input']} | {row['params']:,} | {inference} "
            f"| {training} |"
        )
    return "\n".join(lines)


def ratio_lines(rows, args):
    baseline = rows.get("SimpleBaseline-R50")
    if baseline is None:
        return []
    lines = []
    for name, row in rows.items():
        if name == "SimpleBaseline-R50":
            continue
        for precision in args.precisions:
            inference = (
                row[precision]["inference"] / baseline[precision]["inference"]
            )
            training = (
                row[precision]["training"] / baseline[precision]["training"]
            )
            lines.append(
                f"{name} / SimpleBaseline-R50 ({precision}): inference "
                f"{inference:.2f}x, training {training:.2f}x"
            )
    return lines


def run(args):
    import keras

    if keras.backend.backend() != "jax":
        raise SystemExit(
            "gpu_throughput.py times jitted JAX functions: run it with "
            f"KERAS_BACKEND=jax (got {keras.backend.backend()!r})."
        )
    import jax

    rows = {}
    profile = (
        jax.profiler.trace(args.profile)
        if args.profile
        else contextlib.nullcontext()
    )
    with profile:
        for precision in args.precisions:
            keras.config.set_dtype_policy(precision)
            try:
                for name, builder in build_models(args):
                    model = builder()
                    inference, training = measure(model, args)
                    row = rows.setdefault(
                        name,
                        {
                            "input": "x".join(
                                str(v) for v in model.input_shape[1:3]
                            ),
                            "params": model.count_params(),
                        },
                    )
                    row[precision] = {
                        "inference": inference,
                        "training": training,
                    }
                    print(
                        f"{name} {precision}: inference {inference:,.0f} "
                        f"img/s, training {training:,.0f} img/s",
                        file=sys.stderr,
                    )
                    del model
            finally:
                keras.config.set_dtype_policy("float32")
    machine = machine_description()
    print(markdown_table(rows, args))
    print()
    for line in ratio_lines(rows, args):
        print(line)
    print()
    for key, value in machine.items():
        print(f"{key}: {value}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine, "results": rows}, handle, indent=2)
    return rows


def main(argv=None):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return run(parse_arguments(argv))


if __name__ == "__main__":
    main()
