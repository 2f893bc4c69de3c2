import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.layers import sublayer_graph
from keras_evopose.models import builder
from keras_evopose.models import genotype as genotype_lib
from keras_evopose.models import presets as preset_lib
from keras_evopose.utils.validation import check_positive_int


@keras_evopose_export("keras_evopose.models.EvoPose2DBackbone")
class EvoPose2DBackbone(keras.Model):
    """EvoPose2D backbone: an MBConv network built from a genotype.

    A 3x3 stride-2 stem conv (`stem_filters` channels) + BN + activation,
    then one stage per block string of `genotype`, each a run of
    `keras_evopose.layers.MBConvBlock`s named `stage{i}_block{j}` (1-based).
    The first block of a stage applies its stride; the stochastic-depth rate
    grows linearly from 0 to `stochastic_depth_rate` over the blocks.
    Variable paths are stable (`stage3_block2/dwconv/kernel`), which is what
    weight transfer between parent and child networks relies on.

    Reference:
        McNally et al., EvoPose2D: Pushing the Boundaries of 2D Human Pose
        Estimation Using Accelerated Neuroevolution With Weight Transfer,
        IEEE Access 2021.

    Args:
        genotype: a `keras_evopose.models.Genotype` without head steps,
            or a list of block strings, one per stage, e.g.
            `["ir_r1_k3_s1_e1_c16_se0.25", "ir_r3_k3_s2_e6_c24_se0.25"]`
            (see `keras_evopose.models.BlockSpec`). The output stride (stem
            times stage strides) may be at most 32. The config holds the
            canonical block strings.
        stem_filters: int, channels of the stem conv. Defaults to 32.
        image_shape: `(height, width, 3)`; `None` sizes are allowed.
            Defaults to `(None, None, 3)`.
        stochastic_depth_rate: float in [0, 1), rate of the last block.
            Defaults to 0.2.
        activation: activation name. Defaults to `"swish"`.
        kernel_regularizer: regularizer of every Conv2D kernel (stem,
            expansion, squeeze-and-excite and projection convs), e.g.
            `keras.regularizers.L2(1e-5)` (the paper's weight decay). As
            in the reference, depthwise kernels, biases and BN are not
            regularized. Defaults to `None`.
        batch_norm_momentum: float in [0, 1), momentum of every BN's
            moving statistics. Defaults to 0.99 (Keras' default).
        dtype: a dtype policy (e.g. `"mixed_bfloat16"`) for every layer.
            Defaults to the global policy.
        **kwargs: base `keras.Model` arguments (`name`, `trainable`).

    Example:

    >>> backbone = keras_evopose.models.EvoPose2DBackbone.from_preset("test")
    >>> tuple(backbone(keras.ops.ones((1, 64, 48, 3))).shape)
    (1, 4, 3, 24)
    """

    def __init__(
        self,
        genotype,
        stem_filters=32,
        image_shape=(None, None, 3),
        stochastic_depth_rate=0.2,
        activation="swish",
        kernel_regularizer=None,
        batch_norm_momentum=sublayer_graph.BATCH_NORM_MOMENTUM,
        dtype=None,
        **kwargs,
    ):
        genotype = genotype_lib.Genotype.coerce(genotype)
        if genotype.head_filters is not None:
            raise ValueError(
                "EvoPose2DBackbone: the genotype ends with head steps "
                f"{genotype.head_steps}, which are not backbone blocks. "
                "Build the whole network with EvoPose2D.from_preset(preset, "
                "genotype=...), or pass genotype.replace(head_filters=None)."
            )
        kernel_regularizer = sublayer_graph.get_regularizer(
            "EvoPose2DBackbone", kernel_regularizer
        )
        batch_norm_momentum = sublayer_graph.check_batch_norm_momentum(
            "EvoPose2DBackbone", batch_norm_momentum
        )
        check_positive_int(
            "stem_filters", stem_filters, owner="EvoPose2DBackbone"
        )
        image_shape = tuple(image_shape)
        if len(image_shape) != 3 or any(
            size is not None and (not isinstance(size, int) or size <= 0)
            for size in image_shape
        ):
            raise ValueError(
                "EvoPose2DBackbone: `image_shape` must be (height, width, "
                "channels) with positive ints or None. "
                f"Received: image_shape={image_shape!r}"
            )
        if not 0.0 <= stochastic_depth_rate < 1.0:
            raise ValueError(
                "EvoPose2DBackbone: `stochastic_depth_rate` must be in "
                f"[0, 1). Received: stochastic_depth_rate="
                f"{stochastic_depth_rate!r}"
            )

        # === Layers and Functional Model ===
        inputs = keras.Input(shape=image_shape, name="image")
        features, pyramid = builder.backbone_graph(
            inputs,
            genotype,
            stem_filters,
            stochastic_depth_rate,
            activation,
            keras.layers,
            dtype=dtype,
            kernel_regularizer=kernel_regularizer,
            batch_norm_momentum=batch_norm_momentum,
        )
        super().__init__(inputs=inputs, outputs=features, **kwargs)
        if dtype is not None:
            # A functional model does not take `dtype` from its constructor.
            self.dtype_policy = keras.dtype_policies.get(dtype)

        # === Config ===
        self.genotype = genotype.block_strings
        self.stem_filters = stem_filters
        self.image_shape = image_shape
        self.stochastic_depth_rate = stochastic_depth_rate
        self.activation = activation
        self.kernel_regularizer = kernel_regularizer
        self.batch_norm_momentum = batch_norm_momentum
        self.pyramid_outputs = pyramid
        self.output_stride = genotype.output_stride

    def get_config(self):
        # Not chained to the functional super(): its nested graph config
        # cannot be passed back to this constructor.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "genotype": list(self.genotype),
            "stem_filters": self.stem_filters,
            "image_shape": list(self.image_shape),
            "stochastic_depth_rate": self.stochastic_depth_rate,
            "activation": self.activation,
            "kernel_regularizer": sublayer_graph.serialize_regularizer(
                self.kernel_regularizer
            ),
            "batch_norm_momentum": self.batch_norm_momentum,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @preset_lib.classproperty
    def presets(cls):
        """Names of the built-in presets (`extra_small` ... `large`, `test`)."""
        return preset_lib.list_presets()

    @classmethod
    def from_preset(cls, preset, weights=None, **overrides):
        """Builds the backbone of a preset.

        Args:
            preset: a name from `EvoPose2DBackbone.presets`.
            weights: `None` (random initialisation) or `"imagenet"`: the
                reference's ImageNet start (its `LOAD_WEIGHTS`), i.e.
                `keras.applications.EfficientNetB0` (B4 / B5 for input
                heights 384 / 512) copied onto the backbone by
                `keras_evopose.search.load_efficientnet_weights` (stages
                that differ from EfficientNet are centred / sliced). It
                downloads the EfficientNet weights on first use (network
                access needed; cached in `KERAS_HOME/models`).
            **overrides: constructor arguments that replace the preset's.

        Returns:
            An `EvoPose2DBackbone`.

        Raises:
            ValueError: for an unknown preset, argument or `weights`.
            RuntimeError: if the ImageNet weights cannot be downloaded.
        """
        config = preset_lib.preset_arguments(preset, "backbone")
        preset_lib.check_overrides(cls, preset, overrides)
        config.update(overrides)
        backbone = cls(**config)
        preset_lib.load_preset_weights(
            backbone, weights, backbone.image_shape[0]
        )
        return backbone
