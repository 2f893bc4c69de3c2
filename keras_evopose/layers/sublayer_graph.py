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
- `keras_evopose.utils.count_flops` uses its own `apply` to add up
  multiply-accumulates.
"""


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


def batch_normalization(layers_module, name, dtype=None):
    # Keras defaults, stated so the tf_keras twin cannot drift.
    return layers_module.BatchNormalization(
        axis=-1, momentum=0.99, epsilon=1e-3, dtype=dtype, name=name
    )


def conv_bn_sublayers(
    layers_module,
    conv_class_name,
    conv_role,
    group,
    activation=None,
    prefix="",
    dtype=None,
    **conv_arguments,
):
    """A bias-free conv + BN (+ activation), keyed by role.

    Keys (and layer names after `prefix`): `conv_role`, `{group}_bn` and,
    when `activation` is given, `{group}_activation`.
    """
    conv_class = getattr(layers_module, conv_class_name)
    initializer_argument = (
        "depthwise_initializer"
        if conv_class_name == "DepthwiseConv2D"
        else "kernel_initializer"
    )
    layers = {
        conv_role: conv_class(
            padding="same",
            use_bias=False,
            dtype=dtype,
            name=f"{prefix}{conv_role}",
            **{initializer_argument: conv_initializer()},
            **conv_arguments,
        ),
        f"{group}_bn": batch_normalization(
            layers_module, f"{prefix}{group}_bn", dtype
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
