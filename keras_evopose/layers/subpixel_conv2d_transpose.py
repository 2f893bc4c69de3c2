"""A stride-2 transposed convolution computed as four small convolutions.

A stride-2 `Conv2DTranspose` with `padding="same"` writes output pixel
`(2 * row + a, 2 * col + b)` from only some of its kernel taps: with a 3x3
kernel, phase `(0, 0)` uses 2x2 taps, phases `(0, 1)` and `(1, 0)` 2x1 and
1x2, phase `(1, 1)` one tap; 9 in all, each input pixel times each tap once.
Running each phase as a regular stride-1 convolution of the (zero-padded)
input and interleaving the four results (depth-to-space) computes the very
same function with the same multiply-accumulates, but as dense convolutions,
which CPU kernels (XNNPACK in LiteRT, oneDNN in TensorFlow) run much faster
than a transposed convolution. `transpose_kernel_to_phase_kernels` and its
inverse convert the weights exactly.
"""

import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.layers import sublayer_graph
from keras_evopose.utils.validation import check_positive_int

# (row phase, column phase) of each phase conv, in depth-to-space order.
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def phase_offsets(kernel_size, phase):
    """Input offsets (ascending) that output phase `phase` reads.

    For `Conv2DTranspose(kernel_size, strides=2, padding="same")` along one
    axis: output `2 * m + phase` sums `inputs[m + offset] * kernel[tap]`
    over the taps `tap = phase + pad - 2 * offset` inside the kernel, where
    `pad = (kernel_size - 2) // 2` is TensorFlow's SAME padding before.
    """
    pad = max(kernel_size - 2, 0) // 2
    return [
        offset
        for offset in range(-kernel_size, kernel_size + 1)
        if 0 <= phase + pad - 2 * offset < kernel_size
    ]


def _taps(kernel_size, phase):
    """Kernel taps of `phase`, in the order of `phase_offsets`."""
    pad = max(kernel_size - 2, 0) // 2
    return [
        phase + pad - 2 * offset for offset in phase_offsets(kernel_size, phase)
    ]


def transpose_kernel_to_phase_kernels(kernel):
    """Splits a stride-2 SAME `Conv2DTranspose` kernel into phase kernels.

    Args:
        kernel: array `(kernel_h, kernel_w, filters, input_channels)`, a
            `Conv2DTranspose` kernel (NumPy or any backend tensor).

    Returns:
        A list of four `Conv2D` kernels `(rows, cols, input_channels,
        filters)`, for the phases in `PHASES` order.
    """
    kernel = keras.ops.convert_to_numpy(kernel)
    kernel_h, kernel_w = kernel.shape[:2]
    phase_kernels = []
    for row_phase, col_phase in PHASES:
        rows = _taps(kernel_h, row_phase)
        cols = _taps(kernel_w, col_phase)
        # Conv2D kernels are (rows, cols, in, out); transposed are
        # (rows, cols, out, in).
        phase_kernels.append(kernel[rows][:, cols].transpose(0, 1, 3, 2).copy())
    return phase_kernels


def phase_kernels_to_transpose_kernel(phase_kernels, kernel_size):
    """Inverse of `transpose_kernel_to_phase_kernels`.

    Args:
        phase_kernels: the four phase kernels, in `PHASES` order.
        kernel_size: `(kernel_h, kernel_w)` of the transposed conv.

    Returns:
        The `Conv2DTranspose` kernel `(kernel_h, kernel_w, filters,
        input_channels)`.
    """
    import numpy as np

    kernel_h, kernel_w = kernel_size
    phase_kernels = [keras.ops.convert_to_numpy(k) for k in phase_kernels]
    input_channels, filters = phase_kernels[0].shape[2:]
    kernel = np.zeros(
        (kernel_h, kernel_w, filters, input_channels), phase_kernels[0].dtype
    )
    for (row_phase, col_phase), phase_kernel in zip(PHASES, phase_kernels):
        rows = _taps(kernel_h, row_phase)
        cols = _taps(kernel_w, col_phase)
        for i, row in enumerate(rows):
            for j, col in enumerate(cols):
                kernel[row, col] = phase_kernel[i, j].T
    return kernel


class DepthToSpace(keras.layers.Layer):
    """`(b, h, w, 4 c)` -> `(b, 2 h, 2 w, c)`, TensorFlow's channel order."""

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        height, width, channels = inputs.shape[1:]
        height = shape[1] if height is None else height
        width = shape[2] if width is None else width
        channels //= 4
        x = keras.ops.reshape(inputs, (-1, height, width, 2, 2, channels))
        x = keras.ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return keras.ops.reshape(x, (-1, 2 * height, 2 * width, channels))

    def compute_output_shape(self, input_shape):
        def double(size):
            return None if size is None else 2 * size

        return (
            input_shape[0],
            double(input_shape[1]),
            double(input_shape[2]),
            input_shape[3] // 4,
        )


@keras_evopose_export("keras_evopose.layers.SubPixelConv2DTranspose")
class SubPixelConv2DTranspose(sublayer_graph.SublayerGraph, keras.layers.Layer):
    """`Conv2DTranspose(strides=2, padding="same")` as four phase convs.

    Computes the same function as
    `keras.layers.Conv2DTranspose(filters, kernel_size, strides=2,
    padding="same")` (channels last) with the same multiply-accumulates:
    each of the four output phases is a stride-1 `Conv2D` of the
    zero-padded input with the taps that phase reads (2x2, 2x1, 1x2 and 1x1
    for a 3x3 kernel), and depth-to-space interleaves them. Dense
    convolutions run faster than transposed ones on CPUs: see
    `docs/benchmarks.md`. `load_transpose_weights` converts a
    `Conv2DTranspose`'s weights exactly.

    The kernel is initialized as a `Conv2DTranspose` kernel of the same
    shape (same initializer, same fans) and then split, so the layer starts
    from the same distribution of functions.

    Args:
        filters: int, output channels.
        kernel_size: int >= 2 or a pair of them, the transposed-conv kernel
            size. Defaults to 3.
        use_bias: bool. With a bias each phase conv has its own (all four
            start at zero), a superset of `Conv2DTranspose`'s single bias.
            Defaults to `False`.
        kernel_initializer: initializer of the equivalent transposed-conv
            kernel. Defaults to `"glorot_uniform"`.
        kernel_regularizer: regularizer of the phase kernels. Defaults to
            `None`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`...).

    Example:

    >>> layer = keras_evopose.layers.SubPixelConv2DTranspose(8)
    >>> tuple(layer(keras.ops.ones((1, 4, 3, 5))).shape)
    (1, 8, 6, 8)
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        use_bias=False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size, kernel_size)
        kernel_size = tuple(kernel_size)
        check_positive_int("filters", filters, "SubPixelConv2DTranspose")
        if len(kernel_size) != 2 or any(
            isinstance(size, bool) or not isinstance(size, int) or size < 2
            for size in kernel_size
        ):
            raise ValueError(
                "SubPixelConv2DTranspose: `kernel_size` must be an int >= 2 "
                "or a pair of them (with a kernel of 1 a stride-2 transposed "
                "conv leaves every other pixel empty). "
                f"Received: kernel_size={kernel_size!r}"
            )
        self.filters = filters
        self.kernel_size = kernel_size
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.sublayers = {}
        for row_phase, col_phase in PHASES:
            rows = phase_offsets(kernel_size[0], row_phase)
            cols = phase_offsets(kernel_size[1], col_phase)
            role = f"phase{row_phase}{col_phase}"
            # Pad so that a "valid" conv reads offsets rows[0]..rows[-1].
            self.sublayers[f"{role}_pad"] = keras.layers.ZeroPadding2D(
                ((-rows[0], rows[-1]), (-cols[0], cols[-1])),
                dtype=self.dtype_policy,
                name=f"{role}_pad",
            )
            self.sublayers[f"{role}_conv"] = keras.layers.Conv2D(
                filters,
                (len(rows), len(cols)),
                padding="valid",
                use_bias=use_bias,
                kernel_regularizer=self.kernel_regularizer,
                dtype=self.dtype_policy,
                name=f"{role}_conv",
            )
        self.sublayers["concatenate"] = keras.layers.Concatenate(
            dtype=self.dtype_policy, name="concatenate"
        )
        self.sublayers["depth_to_space"] = DepthToSpace(
            dtype=self.dtype_policy, name="depth_to_space"
        )

    def forward(self, inputs, apply):
        phases = []
        for row_phase, col_phase in PHASES:
            role = f"phase{row_phase}{col_phase}"
            x = apply(self.sublayers[f"{role}_pad"], inputs)
            phases.append(apply(self.sublayers[f"{role}_conv"], x))
        x = apply(self.sublayers["concatenate"], phases)
        return apply(self.sublayers["depth_to_space"], x)

    def build(self, input_shape):
        self.forward(input_shape, sublayer_graph.build_apply)
        # Draw the kernel as the equivalent Conv2DTranspose would.
        transpose_kernel = self.kernel_initializer(
            (*self.kernel_size, self.filters, input_shape[-1]),
            dtype=self.variable_dtype,
        )
        self.load_transpose_weights(transpose_kernel)

    def call(self, inputs):
        return self.forward(inputs, sublayer_graph.call_apply)

    def load_transpose_weights(self, kernel, bias=None):
        """Sets the weights from a `Conv2DTranspose` kernel (and bias).

        Args:
            kernel: `(kernel_h, kernel_w, filters, input_channels)`.
            bias: `(filters,)` or `None`; needs `use_bias=True`.

        Raises:
            ValueError: for a kernel of another shape, or a bias given to
                a layer without one.
        """
        expected = (*self.kernel_size, self.filters)
        if tuple(kernel.shape[:3]) != expected:
            raise ValueError(
                f"SubPixelConv2DTranspose {self.name!r}: expected a "
                f"Conv2DTranspose kernel of shape {expected} + "
                f"(input_channels,). Received: {tuple(kernel.shape)}"
            )
        if bias is not None and not self.use_bias:
            raise ValueError(
                f"SubPixelConv2DTranspose {self.name!r}: a bias was given "
                "but the layer has `use_bias=False`."
            )
        phase_kernels = transpose_kernel_to_phase_kernels(kernel)
        for (row_phase, col_phase), phase_kernel in zip(PHASES, phase_kernels):
            conv = self.sublayers[f"phase{row_phase}{col_phase}_conv"]
            conv.kernel.assign(phase_kernel)
            if self.use_bias:
                conv.bias.assign(
                    keras.ops.zeros((self.filters,)) if bias is None else bias
                )

    def transpose_kernel(self):
        """The equivalent `Conv2DTranspose` kernel (exact inverse)."""
        return phase_kernels_to_transpose_kernel(
            [self.sublayers[f"phase{a}{b}_conv"].kernel for a, b in PHASES],
            self.kernel_size,
        )

    def compute_output_shape(self, input_shape):
        def double(size):
            return None if size is None else 2 * size

        return (
            input_shape[0],
            double(input_shape[1]),
            double(input_shape[2]),
            self.filters,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": list(self.kernel_size),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
            }
        )
        return config
