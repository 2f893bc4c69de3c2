"""Runs a block's sublayer graph three ways from one definition.

Each composite layer of this package describes its computation once, as a
`forward(sublayers, inputs, apply)` function over a dict of primitive
sublayers. `apply(layer, inputs, **kwargs)` decides what "running a layer"
means:

- `call_apply`: calls the layer (eager, traced, or on symbolic tensors). Used
  by `Layer.call`, and by the tf_keras twin builder to lay the same
  primitives out as a flat functional graph that TFMOT can quantize.
- `build_apply`: builds the layer from a shape and returns its output shape.
  Used by `Layer.build`, so variables exist before the first call and their
  paths nest under the block name (`stage2_block1/expand_conv/kernel`).
- `keras_evopose.models.count_flops` uses its own `apply` to add up
  multiply-accumulates.
"""

import keras


class SublayerGraph:
    """Marks a layer whose computation is `forward(inputs, apply)`.

    The protocol is explicit (a base class, not any `forward` attribute):
    on the torch backend every Keras layer is a `torch.nn.Module` with a
    `forward` method of its own. Subclasses list this class first:
    `class MBConvBlock(sublayer_graph.SublayerGraph, keras.layers.Layer)`.
    """

    def forward(self, inputs, apply, **kwargs):
        raise NotImplementedError


def call_apply(layer, inputs, **kwargs):
    return layer(inputs, **kwargs)


def build_apply(layer, input_shape, **kwargs):
    del kwargs  # `training` and friends do not change shapes.
    if not layer.built:
        layer.build(input_shape)
    return layer.compute_output_shape(input_shape)


def conv_initializer():
    """EfficientNet's conv initializer (He-style, fan-out, truncated normal).

    A config dict rather than an object so the same value works for Keras 3
    and tf_keras layers.
    """
    return {
        "class_name": "VarianceScaling",
        "config": {
            "scale": 2.0,
            "mode": "fan_out",
            "distribution": "truncated_normal",
        },
    }


def heatmap_initializer():
    """Small uniform fan-out init of the final heatmap conv (as EvoPose2D)."""
    return {
        "class_name": "VarianceScaling",
        "config": {
            "scale": 1.0 / 3.0,
            "mode": "fan_out",
            "distribution": "uniform",
        },
    }


BATCH_NORM_MOMENTUM = 0.99


def batch_normalization(
    layers_module, name, dtype=None, momentum=BATCH_NORM_MOMENTUM
):
    # Keras defaults, stated so the tf_keras twin cannot drift.
    return layers_module.BatchNormalization(
        axis=-1, momentum=momentum, epsilon=1e-3, dtype=dtype, name=name
    )


def check_batch_norm_momentum(owner, value):
    """Raises a ValueError naming `owner` unless 0 <= value < 1."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(
            f"{owner}: `batch_norm_momentum` must be a float in [0, 1) "
            "(the weight of the old moving statistics; Keras' default is "
            f"0.99). Received: batch_norm_momentum={value!r}"
        )
    return float(value)


def get_regularizer(owner, value):
    """`keras.regularizers.get` with an error that names `owner`."""
    try:
        return keras.regularizers.get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{owner}: `kernel_regularizer` must be None, a "
            "keras.regularizers.Regularizer, its name or its serialized "
            f"config. Received: kernel_regularizer={value!r} ({error})"
        ) from None


def serialize_regularizer(regularizer):
    """The config-dict form of a regularizer (`None` stays `None`)."""
    if regularizer is None:
        return None
    return keras.regularizers.serialize(regularizer)


def conv_bn_sublayers(
    layers_module,
    conv_class_name,
    conv_role,
    group,
    activation=None,
    prefix="",
    dtype=None,
    kernel_regularizer=None,
    batch_norm_momentum=BATCH_NORM_MOMENTUM,
    **conv_arguments,
):
    """A bias-free conv + BN (+ activation), keyed by role.

    Keys (and layer names after `prefix`): `conv_role`, `{group}_bn` and,
    when `activation` is given, `{group}_activation`. `kernel_regularizer`
    applies to Conv2D and Conv2DTranspose kernels only, never to a
    depthwise kernel: the reference regularizes exactly that set.
    """
    conv_class = getattr(layers_module, conv_class_name)
    if conv_class_name == "DepthwiseConv2D":
        kernel_arguments = {"depthwise_initializer": conv_initializer()}
    else:
        kernel_arguments = {
            "kernel_initializer": conv_initializer(),
            "kernel_regularizer": kernel_regularizer,
        }
    layers = {
        conv_role: conv_class(
            padding="same",
            use_bias=False,
            dtype=dtype,
            name=f"{prefix}{conv_role}",
            **kernel_arguments,
            **conv_arguments,
        ),
        f"{group}_bn": batch_normalization(
            layers_module,
            f"{prefix}{group}_bn",
            dtype,
            momentum=batch_norm_momentum,
        ),
    }
    if activation is not None:
        layers[f"{group}_activation"] = layers_module.Activation(
            activation, dtype=dtype, name=f"{prefix}{group}_activation"
        )
    return layers


def conv_bn_forward(layers, conv_role, group, inputs, apply, training=None):
    """Runs the layers made by `conv_bn_sublayers`."""
    x = apply(layers[conv_role], inputs)
    x = apply(layers[f"{group}_bn"], x, training=training)
    if f"{group}_activation" in layers:
        x = apply(layers[f"{group}_activation"], x)
    return x
