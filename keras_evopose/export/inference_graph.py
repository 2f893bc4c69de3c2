"""Rewrites a model's heatmap head into a faster graph with the same function.

Used by `export_litert` (on by default). Measured on LiteRT with XNNPACK
(docs/benchmarks.md), a stride-2 transposed conv is slower than the same
function computed as four dense phase convolutions + depth-to-space
(`SubPixelConv2DTranspose`). The converter folds a BatchNormalization into
the conv before it, but not across the depth-to-space, so the rewrite folds
each head BN into its phase convs itself (kernel scaled per output channel,
BN shift as the bias). And since the activation and a 1x1 heatmap conv act
on each pixel alone, they commute with depth-to-space: the last step
applies them to each phase before interleaving, so the interleave moves
K heatmap channels instead of the head's width (`PhaseWiseHeatmaps`). The
result equals the model in inference mode to float rounding.
"""

import keras
import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.layers.deconv_head import DeconvHead
from keras_evopose.layers.subpixel_conv2d_transpose import PHASES
from keras_evopose.layers.subpixel_conv2d_transpose import (
    SubPixelConv2DTranspose,
)


def folded_batch_normalization(batch_normalization):
    """`(scale, shift)` with `bn(x) == x * scale + shift` in inference."""
    variance = keras.ops.convert_to_numpy(batch_normalization.moving_variance)
    mean = keras.ops.convert_to_numpy(batch_normalization.moving_mean)
    scale = 1.0 / np.sqrt(variance + batch_normalization.epsilon)
    if batch_normalization.scale:
        scale = scale * keras.ops.convert_to_numpy(batch_normalization.gamma)
    shift = -mean * scale
    if batch_normalization.center:
        shift = shift + keras.ops.convert_to_numpy(batch_normalization.beta)
    return scale.astype("float32"), shift.astype("float32")


def transpose_kernel(layer):
    """A `Conv2DTranspose` or `SubPixelConv2DTranspose` kernel as NumPy."""
    if isinstance(layer, SubPixelConv2DTranspose):
        return layer.transpose_kernel()
    return keras.ops.convert_to_numpy(layer.kernel)


class PhaseWiseHeatmaps(keras.layers.Layer):
    """The last upsampling step, its activation and a 1x1 heatmap conv,
    with the two per-pixel ops applied to each phase before depth-to-space.

    Equals `final_conv(activation(upsampling(x)))`: depth-to-space only
    moves pixels, so any per-pixel op gives the same result before or after
    it. Export-only (built from trained layers, shared, not copied).

    Args:
        upsampling: a built `SubPixelConv2DTranspose`.
        activation: the step's activation layer.
        final_conv: the head's 1x1 heatmap `Conv2D`.
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(self, upsampling, activation, final_conv, **kwargs):
        super().__init__(**kwargs)
        self.upsampling = upsampling
        self.activation = activation
        self.final_conv = final_conv

    def call(self, inputs):
        sublayers = self.upsampling.sublayers
        phases = []
        for row_phase, col_phase in PHASES:
            role = f"phase{row_phase}{col_phase}"
            x = sublayers[f"{role}_conv"](sublayers[f"{role}_pad"](inputs))
            phases.append(self.final_conv(self.activation(x)))
        return sublayers["depth_to_space"](sublayers["concatenate"](phases))

    def compute_output_shape(self, input_shape):
        upsampled = self.upsampling.compute_output_shape(input_shape)
        return self.final_conv.compute_output_shape(upsampled)


def inference_head(head):
    """A `keras.Sequential` computing `head(x, training=False)` faster.

    Each transposed conv + BN of the `DeconvHead` becomes one
    `SubPixelConv2DTranspose` with the BN folded in; activations, the
    optional correction conv and the heatmap conv are the head's own
    layers (shared, not copied). Without the correction conv and with a
    1x1 heatmap conv, the last step is a `PhaseWiseHeatmaps`.

    Args:
        head: a built `DeconvHead`.

    Returns:
        A `keras.Sequential` named like the head.
    """
    sublayers = head.sublayers
    steps = []
    for index, width in enumerate(head.filters, start=1):
        conv = sublayers[f"deconv{index}"]
        scale, shift = folded_batch_normalization(
            sublayers[f"deconv{index}_bn"]
        )
        # Transposed kernels are (rows, cols, filters, input_channels).
        kernel = transpose_kernel(conv) * scale[None, None, :, None]
        folded = SubPixelConv2DTranspose(
            width,
            head.kernel_size,
            use_bias=True,
            dtype=head.dtype_policy,
            name=f"deconv{index}_folded",
        )
        folded.build((None, None, None, kernel.shape[-1]))
        folded.load_transpose_weights(kernel, shift)
        steps += [folded, sublayers[f"deconv{index}_activation"]]
    final_conv = sublayers["final_conv"]
    if not head.spatial_correction and final_conv.kernel_size == (1, 1):
        folded, activation = steps[-2:]
        return keras.Sequential(
            steps[:-2]
            + [
                PhaseWiseHeatmaps(
                    folded,
                    activation,
                    final_conv,
                    dtype=head.dtype_policy,
                    name="phase_wise_heatmaps",
                )
            ],
            name=head.name,
        )
    if head.spatial_correction:
        # The converter folds this BN into the depthwise conv itself.
        steps += [
            sublayers["correction_dwconv"],
            sublayers["correction_bn"],
            sublayers["correction_activation"],
        ]
    steps.append(final_conv)
    return keras.Sequential(steps, name=head.name)


@keras_evopose_export("keras_evopose.export.inference_model")
def inference_model(model):
    """`model` with every top-level `DeconvHead` replaced by `inference_head`.

    The returned functional model shares all other layers (and their
    weights) with `model`, and equals `model(x, training=False)` to float
    rounding. It is for inference and export only: the head's BN is folded
    away, so it cannot be trained like the original.

    Args:
        model: a functional Keras model, e.g. an `EvoPose2D`.

    Returns:
        A new functional model, or `model` itself when it has no
        `DeconvHead` at its top level.
    """
    heads = [layer for layer in model.layers if isinstance(layer, DeconvHead)]
    if not heads:
        return model

    def replace(layer):
        return inference_head(layer) if isinstance(layer, DeconvHead) else layer

    return keras.models.clone_model(model, clone_function=replace)
