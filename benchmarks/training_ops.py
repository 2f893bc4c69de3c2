"""TensorFlow CPU training cost of each operator of an MBConv block.

Forward + backward (gradients of the input and of the op's variables) of
each operator of an EvoPose2D-S block, alone, at two of S's shapes (stage
2: 64x48, 24 -> 144 channels, 3x3; stage 6: 16x12, 128 -> 768 channels,
5x5), batch 8, in one `tf.function` per operator with a sum-of-squares
loss (whose own cost is in every row). Milliseconds per step, mean of 10
steps after one untimed: process CPU time (all TensorFlow threads) and
wall-clock. Shows where S's training step goes on a CPU (see
docs/benchmarks.md, "CPU speed").

    python benchmarks/training_ops.py
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# (height, width, input channels, expanded channels, kernel size).
SHAPES = ((64, 48, 24, 144, 3), (16, 12, 128, 768, 5))
BATCH_SIZE = 8
STEPS = 10


def time_step(function, inputs, variables):
    """CPU and wall milliseconds of one forward + backward of `function`."""
    import tensorflow as tf

    @tf.function
    def step(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = function(inputs)
            loss = tf.reduce_sum(outputs * outputs)
        return tape.gradient(loss, [inputs, *variables])

    step(inputs)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(STEPS):
        step(inputs)
    return (
        (time.process_time() - cpu) / STEPS * 1e3,
        (time.perf_counter() - wall) / STEPS * 1e3,
    )


def block_operators(channels, expanded, kernel_size):
    """name -> (function, input channels, variables) of one MBConv block."""
    import tensorflow as tf

    def variable(*shape):
        return tf.Variable(tf.random.normal(shape) * 0.1)

    expand = variable(1, 1, channels, expanded)
    gamma = tf.Variable(tf.ones(expanded))
    beta = tf.Variable(tf.zeros(expanded))
    depthwise = variable(kernel_size, kernel_size, expanded, 1)
    squeeze = variable(1, 1, expanded, max(1, channels // 4))
    excite = variable(1, 1, max(1, channels // 4), expanded)
    project = variable(1, 1, expanded, channels)

    def batch_norm(x):
        return tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, is_training=True
        )[0]

    def squeeze_excite(x):
        scale = tf.reduce_mean(x, [1, 2], keepdims=True)
        scale = tf.nn.silu(tf.nn.conv2d(scale, squeeze, 1, "SAME"))
        return x * tf.sigmoid(tf.nn.conv2d(scale, excite, 1, "SAME"))

    return {
        # The sum-of-squares loss alone, in every other row too.
        "loss only (identity)": (tf.identity, expanded, []),
        "expand 1x1 conv": (
            lambda x: tf.nn.conv2d(x, expand, 1, "SAME"),
            channels,
            [expand],
        ),
        "batch norm (training)": (batch_norm, expanded, [gamma, beta]),
        "swish": (tf.nn.silu, expanded, []),
        "depthwise conv": (
            lambda x: tf.nn.depthwise_conv2d(
                x, depthwise, [1, 1, 1, 1], "SAME"
            ),
            expanded,
            [depthwise],
        ),
        "squeeze-excite": (squeeze_excite, expanded, [squeeze, excite]),
        "project 1x1 conv": (
            lambda x: tf.nn.conv2d(x, project, 1, "SAME"),
            expanded,
            [project],
        ),
    }


def main():
    import tensorflow as tf

    print(f"load average before: {os.getloadavg()}")
    for height, width, channels, expanded, kernel_size in SHAPES:
        print(
            f"\n{height}x{width}, {channels} -> {expanded} channels, "
            f"{kernel_size}x{kernel_size}, batch {BATCH_SIZE}"
        )
        print("| operator | CPU ms | wall ms |\n|---|---|---|")
        operators = block_operators(channels, expanded, kernel_size)
        for name, (function, depth, variables) in operators.items():
            inputs = tf.random.normal((BATCH_SIZE, height, width, depth))
            cpu, wall = time_step(function, inputs, variables)
            print(f"| {name} | {cpu:.1f} | {wall:.1f} |")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
