import functools
import math

import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.layers import squeeze_and_excite_2d
from keras_evopose.layers import sublayer_graph
from keras_evopose.utils.validation import check_positive_int


def has_residual(input_filters, output_filters, strides):
    """The identity shortcut exists only when the shapes allow it."""
    return strides == 1 and input_filters == output_filters


def mbconv_sublayers(
    layers_module,
    input_filters,
    output_filters,
    kernel_size=3,
    strides=1,
    expand_ratio=6,
    squeeze_excite_ratio=0.25,
    stochastic_depth_rate=0.0,
    activation="swish",
    prefix="",
    dtype=None,
    kernel_regularizer=None,
    batch_norm_momentum=sublayer_graph.BATCH_NORM_MOMENTUM,
):
    """Creates the primitive layers of one MBConv block, keyed by role.

    The role is also the layer name (after `prefix`), which is what weight
    transfer and the tf_keras twin match on.
    """
    expanded_filters = input_filters * expand_ratio
    conv_bn = functools.partial(
        sublayer_graph.conv_bn_sublayers,
        layers_module,
        prefix=prefix,
        dtype=dtype,
        kernel_regularizer=kernel_regularizer,
        batch_norm_momentum=batch_norm_momentum,
    )
    layers = {}
    if expand_ratio != 1:
        layers.update(
            conv_bn(
                "Conv2D",
                "expand_conv",
                "expand",
                activation,
                filters=expanded_filters,
                kernel_size=1,
            )
        )
    layers.update(
        conv_bn(
            "DepthwiseConv2D",
            "dwconv",
            "dwconv",
            activation,
            kernel_size=kernel_size,
            strides=strides,
        )
    )
    if squeeze_excite_ratio > 0:
        # EfficientNet sizes the squeeze from the block *input* channels.
        bottleneck = max(1, int(input_filters * squeeze_excite_ratio))
        se_layers = squeeze_and_excite_2d.squeeze_and_excite_sublayers(
            layers_module,
            expanded_filters,
            bottleneck,
            activation=activation,
            prefix=f"{prefix}se_",
            dtype=dtype,
            kernel_regularizer=kernel_regularizer,
        )
        layers.update(
            {f"se_{role}": layer for role, layer in se_layers.items()}
        )
    layers.update(
        conv_bn(
            "Conv2D",
            "project_conv",
            "project",
            filters=output_filters,
            kernel_size=1,
        )
    )
    if has_residual(input_filters, output_filters, strides):
        if stochastic_depth_rate > 0:
            # Drops the whole residual branch per sample (stochastic depth).
            layers["drop"] = layers_module.Dropout(
                stochastic_depth_rate,
                noise_shape=(None, 1, 1, 1),
                dtype=dtype,
                name=f"{prefix}drop",
            )
        layers["add"] = layers_module.Add(dtype=dtype, name=f"{prefix}add")
    return layers


def mbconv_forward(layers, inputs, apply, training=None):
    conv_bn = functools.partial(
        sublayer_graph.conv_bn_forward, layers, apply=apply, training=training
    )
    x = inputs
    if "expand_conv" in layers:
        x = conv_bn("expand_conv", "expand", x)
    x = conv_bn("dwconv", "dwconv", x)
    if "se_pool" in layers:
        x = squeeze_and_excite_2d.squeeze_and_excite_forward(
            {
                role: layers[f"se_{role}"]
                for role in ("pool", "reduce", "expand", "excite")
            },
            x,
            apply,
        )
    x = conv_bn("project_conv", "project", x)
    if "add" in layers:
        if "drop" in layers:
            x = apply(layers["drop"], x, training=training)
        x = apply(layers["add"], [x, inputs])
    return x


@keras_evopose_export("keras_evopose.layers.MBConvBlock")
class MBConvBlock(sublayer_graph.SublayerGraph, keras.layers.Layer):
    """Inverted residual block with squeeze-and-excite (MBConv).

    1x1 expansion conv (skipped when `expand_ratio == 1`) + BN + activation,
    `kernel_size` depthwise conv with `strides` + BN + activation,
    squeeze-and-excite, 1x1 projection conv + BN (linear), and an identity
    shortcut when `strides == 1` and `input_filters == output_filters`.
    The residual branch is dropped per sample with probability
    `stochastic_depth_rate` during training.

    Every weight lives in a primitive sublayer named by its role
    (`expand_conv`, `expand_bn`, `dwconv`, `dwconv_bn`, `se_reduce`,
    `se_expand`, `project_conv`, `project_bn`), so variable paths read
    `<block name>/<role>/<weight>`: weight transfer matches them by name and
    the tf_keras twin used for quantization-aware training is built from the
    same sublayer definition.

    Reference:
        Tan and Le, EfficientNet, ICML 2019; Huang et al., Deep Networks with
        Stochastic Depth, ECCV 2016.

    Args:
        input_filters: int, channels of the input.
        output_filters: int, channels of the output.
        kernel_size: int, depthwise kernel size. Defaults to 3.
        strides: int, depthwise stride (1 or 2). Defaults to 1.
        expand_ratio: int, expansion of the bottleneck. Defaults to 6.
        squeeze_excite_ratio: float in [0, 1], squeeze channels as a fraction
            of `input_filters`; 0 disables squeeze-and-excite.
            Defaults to 0.25.
        stochastic_depth_rate: float in [0, 1), probability of *dropping* the
            residual branch of a sample in training. Defaults to 0.
        activation: activation name. Defaults to `"swish"`.
        kernel_regularizer: regularizer of the expansion, squeeze-and-excite
            and projection conv kernels, e.g. `keras.regularizers.L2(1e-5)`
            (the paper's weight decay). The depthwise kernel, biases and BN
            are not regularized, as in the reference. Defaults to `None`.
        batch_norm_momentum: float in [0, 1), momentum of the BN moving
            statistics. Defaults to 0.99 (Keras' default); a short run
            such as a 5-epoch search child may want less (e.g. 0.9) so the
            statistics follow its own weights.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`...).

    Call arguments:
        inputs: `(batch, height, width, input_filters)` tensor.
        training: bool, training mode for BN and stochastic depth.

    Output shape:
        `(batch, ceil(height / strides), ceil(width / strides),
        output_filters)`.

    Example:

    >>> block = keras_evopose.layers.MBConvBlock(16, 24, strides=2)
    >>> tuple(block(keras.ops.ones((2, 32, 24, 16))).shape)
    (2, 16, 12, 24)
    """

    def __init__(
        self,
        input_filters,
        output_filters,
        kernel_size=3,
        strides=1,
        expand_ratio=6,
        squeeze_excite_ratio=0.25,
        stochastic_depth_rate=0.0,
        activation="swish",
        kernel_regularizer=None,
        batch_norm_momentum=sublayer_graph.BATCH_NORM_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value in (
            ("input_filters", input_filters),
            ("output_filters", output_filters),
            ("kernel_size", kernel_size),
            ("expand_ratio", expand_ratio),
        ):
            check_positive_int(arg, value, owner="MBConvBlock")
        if strides not in (1, 2):
            raise ValueError(
                "MBConvBlock: `strides` must be 1 or 2. "
                f"Received: strides={strides!r}"
            )
        if not 0.0 <= squeeze_excite_ratio <= 1.0:
            raise ValueError(
                "MBConvBlock: `squeeze_excite_ratio` must be in [0, 1]. "
                f"Received: squeeze_excite_ratio={squeeze_excite_ratio!r}"
            )
        if not 0.0 <= stochastic_depth_rate < 1.0:
            raise ValueError(
                "MBConvBlock: `stochastic_depth_rate` (the probability of "
                "dropping the residual branch) must be in [0, 1). "
                f"Received: stochastic_depth_rate={stochastic_depth_rate!r}"
            )
        self.input_filters = input_filters
        self.output_filters = output_filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.expand_ratio = expand_ratio
        self.squeeze_excite_ratio = squeeze_excite_ratio
        self.stochastic_depth_rate = stochastic_depth_rate
        self.activation = activation
        self.kernel_regularizer = sublayer_graph.get_regularizer(
            "MBConvBlock", kernel_regularizer
        )
        self.batch_norm_momentum = sublayer_graph.check_batch_norm_momentum(
            "MBConvBlock", batch_norm_momentum
        )
        self.sublayers = mbconv_sublayers(
            keras.layers,
            input_filters,
            output_filters,
            kernel_size=kernel_size,
            strides=strides,
            expand_ratio=expand_ratio,
            squeeze_excite_ratio=squeeze_excite_ratio,
            stochastic_depth_rate=stochastic_depth_rate,
            activation=activation,
            dtype=self.dtype_policy,
            kernel_regularizer=self.kernel_regularizer,
            batch_norm_momentum=self.batch_norm_momentum,
        )

    def forward(self, inputs, apply, training=None):
        return mbconv_forward(self.sublayers, inputs, apply, training)

    def build(self, input_shape):
        if input_shape[-1] != self.input_filters:
            raise ValueError(
                f"MBConvBlock '{self.name}' was built for "
                f"input_filters={self.input_filters} but received input "
                f"shape {tuple(input_shape)}. Pass "
                f"input_filters={input_shape[-1]}."
            )
        self.forward(input_shape, sublayer_graph.build_apply)

    def call(self, inputs, training=None):
        return self.forward(inputs, sublayer_graph.call_apply, training)

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else math.ceil(size / self.strides)

        return (
            input_shape[0],
            reduce(input_shape[1]),
            reduce(input_shape[2]),
            self.output_filters,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_filters": self.input_filters,
                "output_filters": self.output_filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "expand_ratio": self.expand_ratio,
                "squeeze_excite_ratio": self.squeeze_excite_ratio,
                "stochastic_depth_rate": self.stochastic_depth_rate,
                "activation": self.activation,
                "kernel_regularizer": sublayer_graph.serialize_regularizer(
                    self.kernel_regularizer
                ),
                "batch_norm_momentum": self.batch_norm_momentum,
            }
        )
        return config
