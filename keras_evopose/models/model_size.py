"""Multiply-accumulate counts, analytical and backend-agnostic.

Parameters need no function of ours: `model.count_params()` counts every
weight, BN moving statistics included, which is the paper's convention
(EvoPose2D-S has 2,531,199 parameters, 34,960 of them BN statistics).
"""

import math

import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.layers.sublayer_graph import SublayerGraph

# Layers with weights but no multiply-accumulates worth counting (the TF
# profiler's extra ~1% over conv MACs comes from these and activations).
_UNCOUNTED_WEIGHTED = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
)


class _Shape:
    """A static shape travelling through a graph (a leaf for keras.tree)."""

    def __init__(self, shape):
        self.shape = tuple(shape)


def _unwrap(inputs):
    if isinstance(inputs, (list, tuple)):
        return [_unwrap(x) for x in inputs]
    return inputs.shape


def _is_single_shape(shape):
    return all(size is None or isinstance(size, int) for size in shape)


def _wrap(shape):
    if not _is_single_shape(shape):
        return [_wrap(s) for s in shape]
    return _Shape(shape)


def _layer_macs(layer, input_shape, output_shape):
    if isinstance(layer, keras.layers.Conv2DTranspose):
        kernel_h, kernel_w = layer.kernel_size
        return (
            math.prod(input_shape[1:3])
            * kernel_h
            * kernel_w
            * input_shape[-1]
            * layer.filters
        )
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel_h, kernel_w = layer.kernel_size
        return math.prod(output_shape[1:]) * kernel_h * kernel_w
    if isinstance(layer, keras.layers.Conv2D):
        kernel_h, kernel_w = layer.kernel_size
        return (
            math.prod(output_shape[1:])
            * kernel_h
            * kernel_w
            * input_shape[-1]
            // layer.groups
        )
    if isinstance(layer, keras.layers.Dense):
        return math.prod(input_shape[1:]) * layer.units
    if layer.weights and not isinstance(layer, _UNCOUNTED_WEIGHTED):
        raise ValueError(
            f"count_flops does not know the multiply-accumulates of layer "
            f"{layer.name!r} ({type(layer).__name__}). Supported: Conv2D, "
            "DepthwiseConv2D, Conv2DTranspose, Dense, normalization layers, "
            "functional models and keras_evopose.layers.sublayer_graph."
            "SublayerGraph layers (MBConvBlock, DeconvHead, "
            "SqueezeAndExcite2D)."
        )
    return 0


@keras_evopose_export("keras_evopose.models.count_flops")
def count_flops(model, input_shape):
    """Counts multiply-accumulates of one forward pass (the paper's "FLOPs").

    EvoPose2D reports the TensorFlow profiler's float-op count divided by
    two, i.e. multiply-accumulates (MACs). This function counts the MACs of
    every Conv2D, DepthwiseConv2D, Conv2DTranspose and Dense layer
    analytically from layer configs and propagated shapes, for batch size 1,
    on any backend. Batch norm, activations, pooling and the
    squeeze-excite multiply are not counted; they add about 1% in the
    profiler's count (EvoPose2D-S: 1.064 G here, 1.07 G in the paper).

    Args:
        model: a Keras functional model (sub-models and this package's
            composite layers are traversed) or a single layer.
        input_shape: the input shape without the batch dimension, e.g.
            `(256, 192, 3)`.

    Returns:
        int, multiply-accumulates for one image.

    Raises:
        ValueError: if `input_shape` has unknown sizes, or a weighted layer
            has no known MAC formula.
    """
    input_shape = tuple(input_shape)
    if any(not isinstance(s, int) or s <= 0 for s in input_shape):
        raise ValueError(
            "count_flops needs a fully known input shape without the batch "
            f"dimension, e.g. (256, 192, 3). Received: {input_shape!r}"
        )
    total = 0

    def apply(layer, inputs, **kwargs):
        nonlocal total
        del kwargs
        if isinstance(layer, SublayerGraph):
            # This package's composite layers describe their sublayer graph
            # once; running it with this `apply` visits every primitive.
            return layer.forward(inputs, apply)
        if isinstance(layer, keras.Model) and hasattr(
            layer, "_run_through_graph"
        ):
            # Keras' functional graph walker (no public equivalent): each
            # node gets its inputs' shapes instead of tensors.
            outputs = layer._run_through_graph(
                _wrap(inputs),
                operation_fn=lambda op: (
                    lambda *a, **k: _wrap(apply(op, _unwrap(a[0]), **k))
                ),
            )
            return _unwrap(outputs)
        output_shape = layer.compute_output_shape(inputs)
        total += _layer_macs(layer, inputs, output_shape)
        return output_shape

    apply(model, (1,) + input_shape)
    return int(total)


def count_params(model):
    """Deprecated `keras_evopose.utils.count_params`: `model.count_params()`."""
    return int(sum(math.prod(w.shape) for w in model.weights))
