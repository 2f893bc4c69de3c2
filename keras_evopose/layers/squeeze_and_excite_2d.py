import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.layers import sublayer_graph
from keras_evopose.utils.validation import check_positive_int


def squeeze_and_excite_sublayers(
    layers_module,
    filters,
    bottleneck_filters,
    activation="swish",
    gate_activation="sigmoid",
    prefix="",
    dtype=None,
    kernel_regularizer=None,
):
    """Creates the primitive layers of a squeeze-and-excite gate, by role."""
    return {
        "pool": layers_module.GlobalAveragePooling2D(
            keepdims=True, dtype=dtype, name=f"{prefix}pool"
        ),
        "reduce": layers_module.Conv2D(
            bottleneck_filters,
            1,
            padding="same",
            activation=activation,
            kernel_initializer=sublayer_graph.conv_initializer(),
            kernel_regularizer=kernel_regularizer,
            dtype=dtype,
            name=f"{prefix}reduce",
        ),
        "expand": layers_module.Conv2D(
            filters,
            1,
            padding="same",
            activation=gate_activation,
            kernel_initializer=sublayer_graph.conv_initializer(),
            kernel_regularizer=kernel_regularizer,
            dtype=dtype,
            name=f"{prefix}expand",
        ),
        "excite": layers_module.Multiply(dtype=dtype, name=f"{prefix}excite"),
    }


def squeeze_and_excite_forward(sublayers, inputs, apply):
    # gate: (batch, 1, 1, filters), broadcast over the spatial dims.
    gate = apply(sublayers["pool"], inputs)
    gate = apply(sublayers["reduce"], gate)
    gate = apply(sublayers["expand"], gate)
    return apply(sublayers["excite"], [inputs, gate])


@keras_evopose_export("keras_evopose.layers.SqueezeAndExcite2D")
class SqueezeAndExcite2D(sublayer_graph.SublayerGraph, keras.layers.Layer):
    """Squeeze-and-excite channel gate for 2D feature maps.

    Global average pooling squeezes each channel to one number; a 1x1 conv to
    `bottleneck_filters` (with `activation`) and a 1x1 conv back to `filters`
    (with `gate_activation`) produce per-channel weights that multiply the
    input. Built from primitive Keras layers so it quantizes and transfers
    weights layer by layer.

    Reference:
        Hu et al., Squeeze-and-Excitation Networks, CVPR 2018.

    Args:
        filters: int, channels of the input (and output).
        bottleneck_filters: int, channels of the squeeze step.
        activation: activation of the squeeze conv. Defaults to `"swish"`.
        gate_activation: activation of the gate. Defaults to `"sigmoid"`.
        kernel_regularizer: regularizer of both conv kernels (not the
            biases), e.g. `keras.regularizers.L2(1e-5)`. Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`...).

    Input shape:
        `(batch, height, width, filters)`.

    Output shape:
        Same as the input.

    Example:

    >>> layer = keras_evopose.layers.SqueezeAndExcite2D(32, 8)
    >>> tuple(layer(keras.ops.ones((2, 16, 12, 32))).shape)
    (2, 16, 12, 32)
    """

    def __init__(
        self,
        filters,
        bottleneck_filters,
        activation="swish",
        gate_activation="sigmoid",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value in (
            ("filters", filters),
            ("bottleneck_filters", bottleneck_filters),
        ):
            check_positive_int(arg, value, "SqueezeAndExcite2D")
        self.filters = filters
        self.bottleneck_filters = bottleneck_filters
        self.activation = activation
        self.gate_activation = gate_activation
        self.kernel_regularizer = sublayer_graph.get_regularizer(
            "SqueezeAndExcite2D", kernel_regularizer
        )
        self.sublayers = squeeze_and_excite_sublayers(
            keras.layers,
            filters,
            bottleneck_filters,
            activation=activation,
            gate_activation=gate_activation,
            dtype=self.dtype_policy,
            kernel_regularizer=self.kernel_regularizer,
        )

    def forward(self, inputs, apply):
        return squeeze_and_excite_forward(self.sublayers, inputs, apply)

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(
                f"SqueezeAndExcite2D '{self.name}' was built for "
                f"filters={self.filters} channels but received input shape "
                f"{tuple(input_shape)}. Pass filters={input_shape[-1]}."
            )
        self.forward(input_shape, sublayer_graph.build_apply)

    def call(self, inputs):
        return self.forward(inputs, sublayer_graph.call_apply)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "bottleneck_filters": self.bottleneck_filters,
                "activation": self.activation,
                "gate_activation": self.gate_activation,
                "kernel_regularizer": sublayer_graph.serialize_regularizer(
                    self.kernel_regularizer
                ),
            }
        )
        return config
