import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.layers import sublayer_graph
from keras_evopose.layers.subpixel_conv2d_transpose import (
    SubPixelConv2DTranspose,
)
from keras_evopose.utils.validation import check_positive_int

UPSAMPLING_MODES = ("transpose", "subpixel")


def deconv_head_sublayers(
    layers_module,
    num_keypoints,
    filters=(128, 128, 128),
    kernel_size=3,
    final_kernel_size=1,
    spatial_correction=False,
    activation="swish",
    prefix="",
    dtype=None,
    kernel_regularizer=None,
    batch_norm_momentum=sublayer_graph.BATCH_NORM_MOMENTUM,
    upsampling="transpose",
):
    """Creates the primitive layers of the heatmap head, keyed by role."""
    if upsampling == "subpixel" and layers_module is not keras.layers:
        raise ValueError(
            "DeconvHead: `upsampling='subpixel'` exists only as a Keras 3 "
            "layer (no tf_keras twin for quantization-aware training). Use "
            "upsampling='transpose'; export_litert rewrites it to sub-pixel "
            "convolutions anyway."
        )
    layers = {}
    for index, width in enumerate(filters, start=1):
        step = sublayer_graph.conv_bn_sublayers(
            layers_module,
            "Conv2DTranspose",
            f"deconv{index}",
            f"deconv{index}",
            activation,
            prefix=prefix,
            dtype=dtype,
            kernel_regularizer=kernel_regularizer,
            batch_norm_momentum=batch_norm_momentum,
            filters=width,
            kernel_size=kernel_size,
            strides=2,
        )
        if upsampling == "subpixel":
            # Same function, same BN and activation; only the conv differs.
            step[f"deconv{index}"] = SubPixelConv2DTranspose(
                width,
                kernel_size,
                kernel_initializer=sublayer_graph.conv_initializer(),
                kernel_regularizer=kernel_regularizer,
                dtype=dtype,
                name=f"{prefix}deconv{index}",
            )
        layers.update(step)
    if spatial_correction:
        layers.update(
            sublayer_graph.conv_bn_sublayers(
                layers_module,
                "DepthwiseConv2D",
                "correction_dwconv",
                "correction",
                activation,
                prefix=prefix,
                dtype=dtype,
                batch_norm_momentum=batch_norm_momentum,
                kernel_size=3,
            )
        )
    layers["final_conv"] = layers_module.Conv2D(
        num_keypoints,
        final_kernel_size,
        padding="same",
        kernel_initializer=sublayer_graph.heatmap_initializer(),
        kernel_regularizer=kernel_regularizer,
        dtype=dtype,
        name=f"{prefix}final_conv",
    )
    return layers


def deconv_head_forward(layers, inputs, apply, num_deconvs, training=None):
    x = inputs
    for index in range(1, num_deconvs + 1):
        x = sublayer_graph.conv_bn_forward(
            layers, f"deconv{index}", f"deconv{index}", x, apply, training
        )
    if "correction_dwconv" in layers:
        x = sublayer_graph.conv_bn_forward(
            layers, "correction_dwconv", "correction", x, apply, training
        )
    return apply(layers["final_conv"], x)


@keras_evopose_export("keras_evopose.layers.DeconvHead")
class DeconvHead(sublayer_graph.SublayerGraph, keras.layers.Layer):
    """Slim transposed-conv heatmap head (SimpleBaseline / EvoPose2D style).

    `len(filters)` stride-2 transposed convs, each followed by BN and the
    activation, upsample the features by `2 ** len(filters)`; an optional
    spatial-information-correction depthwise 3x3 conv + BN + activation (as
    in EfficientPose) smooths the upsampling artefacts; a final conv with
    bias maps to one heatmap per keypoint (linear output).

    Reference:
        Xiao et al., Simple Baselines for Human Pose Estimation, ECCV 2018;
        McNally et al., EvoPose2D, IEEE Access 2021; Groos et al.,
        EfficientPose, 2020.

    Args:
        num_keypoints: int, heatmaps to predict (17 for COCO).
        filters: list of int, channels of each transposed conv.
            Defaults to `[128, 128, 128]`. May be empty.
        kernel_size: int, transposed-conv kernel size. Defaults to 3.
        final_kernel_size: int, kernel of the heatmap conv. Defaults to 1.
        spatial_correction: bool, add the depthwise correction conv.
            Defaults to `False`.
        activation: activation name. Defaults to `"swish"`.
        kernel_regularizer: regularizer of the transposed-conv and heatmap
            conv kernels (not the depthwise correction kernel, not biases),
            e.g. `keras.regularizers.L2(1e-5)`. Defaults to `None`.
        batch_norm_momentum: float in [0, 1), momentum of the BN moving
            statistics. Defaults to 0.99.
        upsampling: `"transpose"` (each step a stride-2
            `Conv2DTranspose`, as the paper) or `"subpixel"` (each step a
            `SubPixelConv2DTranspose`: the same function and parameter
            count as four dense phase convs + depth-to-space; weights
            convert exactly both ways). Defaults to `"transpose"`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`...).

    Call arguments:
        inputs: `(batch, height, width, channels)` features.
        training: bool, training mode for BN.

    Output shape:
        `(batch, height * 2**len(filters), width * 2**len(filters),
        num_keypoints)`.

    Example:

    >>> head = keras_evopose.layers.DeconvHead(17, filters=[32, 32])
    >>> tuple(head(keras.ops.ones((2, 8, 6, 64))).shape)
    (2, 32, 24, 17)
    """

    def __init__(
        self,
        num_keypoints,
        filters=(128, 128, 128),
        kernel_size=3,
        final_kernel_size=1,
        spatial_correction=False,
        activation="swish",
        kernel_regularizer=None,
        batch_norm_momentum=sublayer_graph.BATCH_NORM_MOMENTUM,
        upsampling="transpose",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if upsampling not in UPSAMPLING_MODES:
            raise ValueError(
                f"DeconvHead: `upsampling` must be one of {UPSAMPLING_MODES}. "
                f"Received: upsampling={upsampling!r}"
            )
        for arg, value in (
            ("num_keypoints", num_keypoints),
            ("kernel_size", kernel_size),
            ("final_kernel_size", final_kernel_size),
        ):
            check_positive_int(arg, value, owner="DeconvHead")
        filters = list(filters)
        for width in filters:
            check_positive_int("filters", width, owner="DeconvHead")
        self.num_keypoints = num_keypoints
        self.filters = filters
        self.kernel_size = kernel_size
        self.final_kernel_size = final_kernel_size
        self.spatial_correction = bool(spatial_correction)
        self.activation = activation
        self.kernel_regularizer = sublayer_graph.get_regularizer(
            "DeconvHead", kernel_regularizer
        )
        self.batch_norm_momentum = sublayer_graph.check_batch_norm_momentum(
            "DeconvHead", batch_norm_momentum
        )
        self.upsampling = upsampling
        self.sublayers = deconv_head_sublayers(
            keras.layers,
            num_keypoints,
            filters=filters,
            kernel_size=kernel_size,
            final_kernel_size=final_kernel_size,
            spatial_correction=spatial_correction,
            activation=activation,
            dtype=self.dtype_policy,
            kernel_regularizer=self.kernel_regularizer,
            batch_norm_momentum=self.batch_norm_momentum,
            upsampling=upsampling,
        )

    def forward(self, inputs, apply, training=None):
        return deconv_head_forward(
            self.sublayers, inputs, apply, len(self.filters), training
        )

    def build(self, input_shape):
        self.forward(input_shape, sublayer_graph.build_apply)

    def call(self, inputs, training=None):
        return self.forward(inputs, sublayer_graph.call_apply, training)

    def compute_output_shape(self, input_shape):
        factor = 2 ** len(self.filters)

        def grow(size):
            return None if size is None else size * factor

        return (
            input_shape[0],
            grow(input_shape[1]),
            grow(input_shape[2]),
            self.num_keypoints,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_keypoints": self.num_keypoints,
                "filters": list(self.filters),
                "kernel_size": self.kernel_size,
                "final_kernel_size": self.final_kernel_size,
                "spatial_correction": self.spatial_correction,
                "activation": self.activation,
                "kernel_regularizer": sublayer_graph.serialize_regularizer(
                    self.kernel_regularizer
                ),
                "batch_norm_momentum": self.batch_norm_momentum,
                "upsampling": self.upsampling,
            }
        )
        return config
