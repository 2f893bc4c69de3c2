import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data.keypoint_layout import KeypointLayout
from keras_evopose.data.sample_options import SampleOptions
from keras_evopose.layers import sublayer_graph
from keras_evopose.models import builder
from keras_evopose.models import genotype as genotype_lib
from keras_evopose.models import presets as preset_lib
from keras_evopose.models.evopose2d_backbone import EvoPose2DBackbone
from keras_evopose.utils.validation import check_multiple_of


@keras_evopose_export("keras_evopose.models.EvoPose2D")
class EvoPose2D(keras.Model):
    """EvoPose2D top-down pose estimator: backbone + transposed-conv head.

    The head (`keras_evopose.layers.DeconvHead`, named `head`) has one
    stride-2 transposed conv per entry of `head_filters`, so heatmaps come
    out at `backbone.output_stride / 2 ** len(head_filters)` of the input:
    1/2 for small/medium/large (output stride 16) and 1/4 for extra_small
    (output stride 32). Outputs are linear heatmaps, one per keypoint.
    The input's height and width must be multiples of the backbone's
    `output_stride` (`ValueError` naming `image_shape` otherwise).

    Reference:
        McNally et al., EvoPose2D, IEEE Access 2021.

    Args:
        backbone: an `EvoPose2DBackbone` (or any single-input,
            single-output Keras model producing a 4D feature map).
        num_keypoints: int, number of heatmaps. Defaults to the
            `keypoint_layout`'s, else 17 (COCO).
        head_filters: list of int, channels of each transposed conv.
            Defaults to `[128, 128, 128]`.
        head_kernel_size: int, transposed-conv kernel. Defaults to 3.
        final_kernel_size: int, kernel of the heatmap conv. Defaults to 1.
        spatial_correction: bool, add the EfficientPose depthwise
            correction conv to the head. Defaults to `False`.
        head_activation: activation name of the head. Defaults to `"swish"`.
        head_upsampling: `"transpose"` (stride-2 transposed convs, the
            paper's head) or `"subpixel"` (the same function as phase
            convs + depth-to-space, faster to train on CPUs; see
            `DeconvHead`). Keras 3 only: quantization-aware training needs
            `"transpose"`. Defaults to `"transpose"`.
        kernel_regularizer: regularizer of the head's transposed-conv and
            heatmap conv kernels, e.g. `keras.regularizers.L2(1e-5)`;
            `from_preset` passes it to the backbone too (the reference's
            set: every Conv2D and Conv2DTranspose kernel, no depthwise
            kernel, no bias, no BN). Defaults to `None`.
        batch_norm_momentum: float in [0, 1), momentum of the head's BN
            moving statistics; `from_preset` passes it to the backbone too.
            Defaults to 0.99.
        dtype: a dtype policy (e.g. `"mixed_bfloat16"`) for the head's
            layers; `from_preset` passes it to the backbone too. Defaults to
            the global policy.
        keypoint_layout: the `keras_evopose.data.KeypointLayout` of the
            heatmaps (names, flip pairs, skeleton, upper body, OKS sigmas),
            or its `get_config()` dict. Defaults to COCO person when
            `num_keypoints` is 17, else `None` (then flip test, OKS
            evaluation and drawing need a layout passed to them).
        sample_options: the `keras_evopose.data.SampleOptions` the model
            is trained with (crop padding, fill, heatmap sigma and peak,
            augmentation), or a dict of some of its fields. Its sizes must
            be the model's (missing ones are taken from it). Defaults to
            `SampleOptions` at the model's sizes; `None` when the input
            size is not fixed.
        **kwargs: base `keras.Model` arguments (`name`, `trainable`).

    The layout and the options are the model's data contract: they are
    saved with it, and `evaluate_coco`, `predict_keypoints`, `COCOEvaluation`
    and the `keras-evopose` commands read them, so a model is cropped,
    flipped, decoded and scored as it was trained.

    Example:

    >>> model = keras_evopose.models.EvoPose2D.from_preset("test")
    >>> tuple(model(keras.ops.ones((1, 64, 48, 3))).shape)
    (1, 32, 24, 17)
    >>> model.sample_options.padding, model.keypoint_layout.num_keypoints
    (1.25, 17)
    >>> small = keras_evopose.models.EvoPose2D.from_preset("small")
    >>> small.count_params()
    2531199
    """

    def __init__(
        self,
        backbone,
        num_keypoints=None,
        head_filters=(128, 128, 128),
        head_kernel_size=3,
        final_kernel_size=1,
        spatial_correction=False,
        head_activation="swish",
        head_upsampling="transpose",
        kernel_regularizer=None,
        batch_norm_momentum=sublayer_graph.BATCH_NORM_MOMENTUM,
        dtype=None,
        keypoint_layout=None,
        sample_options=None,
        **kwargs,
    ):
        if not isinstance(backbone, keras.Model):
            raise ValueError(
                "EvoPose2D: `backbone` must be a keras.Model such as "
                "EvoPose2DBackbone. Received: "
                f"backbone={type(backbone).__name__}"
            )
        stride = getattr(backbone, "output_stride", None)
        size = backbone.input_shape[1:3]
        if stride is not None and None not in size:
            # Else the backbone's "same" padding rounds a side up and the
            # heatmaps no longer line up with the input (32x24 at stride
            # 16 gave 16x16 heatmaps, not 16x12).
            try:
                check_multiple_of(size, stride, "image_shape")
            except ValueError as error:
                raise ValueError(f"EvoPose2D: {error}") from None
        keypoint_layout = _resolve_layout(keypoint_layout, num_keypoints)
        if num_keypoints is None:
            num_keypoints = (
                17 if keypoint_layout is None else keypoint_layout.num_keypoints
            )
        head_arguments = dict(
            num_keypoints=num_keypoints,
            filters=list(head_filters),
            kernel_size=head_kernel_size,
            final_kernel_size=final_kernel_size,
            spatial_correction=spatial_correction,
            activation=head_activation,
            upsampling=head_upsampling,
            kernel_regularizer=sublayer_graph.get_regularizer(
                "EvoPose2D", kernel_regularizer
            ),
            batch_norm_momentum=sublayer_graph.check_batch_norm_momentum(
                "EvoPose2D", batch_norm_momentum
            ),
        )

        # === Layers and Functional Model ===
        inputs = keras.Input(shape=backbone.input_shape[1:], name="image")
        features = backbone(inputs)
        heatmaps = builder.head_graph(
            features, head_arguments, keras.layers, dtype=dtype
        )
        super().__init__(inputs=inputs, outputs=heatmaps, **kwargs)
        if dtype is not None:
            # A functional model does not take `dtype` from its constructor.
            self.dtype_policy = keras.dtype_policies.get(dtype)

        # === Config ===
        self.backbone = backbone
        self.num_keypoints = num_keypoints
        self.head_filters = list(head_filters)
        self.head_kernel_size = head_kernel_size
        self.final_kernel_size = final_kernel_size
        self.spatial_correction = spatial_correction
        self.head_activation = head_activation
        self.head_upsampling = head_upsampling
        self.kernel_regularizer = head_arguments["kernel_regularizer"]
        self.batch_norm_momentum = head_arguments["batch_norm_momentum"]
        self.keypoint_layout = keypoint_layout
        self.sample_options = self._resolve_options(sample_options)

    def _resolve_options(self, options):
        """`sample_options` as a `SampleOptions` at the model's sizes."""
        input_size = tuple(self.input_shape[1:3])
        sizes = {}
        if None not in input_size:
            heatmap_size = self.compute_output_shape((1, *input_size, 3))
            sizes = {
                "input_size": input_size,
                "heatmap_size": tuple(heatmap_size[1:3]),
            }
        if options is None:
            return SampleOptions(**sizes) if sizes else None
        if isinstance(options, SampleOptions):
            options = options.get_config()
        if not isinstance(options, dict):
            raise ValueError(
                "EvoPose2D: `sample_options` must be a SampleOptions or a "
                f"dict of its fields. Received: {type(options).__name__}"
            )
        for name, size in sizes.items():
            given = options.get(name)
            if given is not None and tuple(given) != size:
                raise ValueError(
                    f"EvoPose2D: sample_options.{name}={tuple(given)} is "
                    f"not the model's {name} {size}. Build the options "
                    "with SampleOptions.for_model(model) or leave the "
                    "sizes out."
                )
        return SampleOptions.from_config({**sizes, **options})

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`; under TensorFlow the optimizer's slots are
        created first (inside the first traced train step they make
        TensorFlow trace that step twice, ~3-5 s on the `test` preset)."""
        if (
            keras.backend.backend() == "tensorflow"
            and self.optimizer is not None
            and not self.optimizer.built
        ):
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        return super().fit(*args, **kwargs)

    @property
    def heatmap_stride(self):
        """Input pixels per heatmap pixel (e.g. 2 for small, 4 for XS)."""
        stride = getattr(self.backbone, "output_stride", None)
        if stride is None:
            return None
        return stride // 2 ** len(self.head_filters)

    def get_config(self):
        # Not chained to the functional super() (see EvoPose2DBackbone).
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "num_keypoints": self.num_keypoints,
            "head_filters": list(self.head_filters),
            "head_kernel_size": self.head_kernel_size,
            "final_kernel_size": self.final_kernel_size,
            "spatial_correction": self.spatial_correction,
            "head_activation": self.head_activation,
            "head_upsampling": self.head_upsampling,
            "kernel_regularizer": sublayer_graph.serialize_regularizer(
                self.kernel_regularizer
            ),
            "batch_norm_momentum": self.batch_norm_momentum,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "keypoint_layout": None
            if self.keypoint_layout is None
            else self.keypoint_layout.get_config(),
            "sample_options": None
            if self.sample_options is None
            else self.sample_options.get_config(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["backbone"], dict):
            config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)

    @preset_lib.classproperty
    def presets(cls):
        """Names of the built-in presets (`extra_small` ... `large`, `test`)."""
        return preset_lib.list_presets()

    @classmethod
    def from_preset(cls, preset, weights=None, **overrides):
        """Builds a preset network.

        Args:
            preset: a name from `EvoPose2D.presets`.
            weights: `None` (random initialisation) or `"imagenet"`: the
                backbone starts from ImageNet EfficientNet weights as in
                `EvoPose2DBackbone.from_preset` (downloads on first use);
                the head stays randomly initialised, as in the reference.
            **overrides: arguments of `EvoPose2D` or of
                `EvoPose2DBackbone` (`genotype`, `image_shape`, ...) that
                replace the preset's. `dtype`, `kernel_regularizer` and
                `batch_norm_momentum` apply to backbone and head. A
                `genotype` (a `Genotype` or a list of block strings) that
                ends with head steps (`"up_c64"`, from a search with head
                genes) sets `head_filters` too.

        Returns:
            An `EvoPose2D`.

        Raises:
            ValueError: for an unknown preset, argument or `weights`.
            RuntimeError: if the ImageNet weights cannot be downloaded.
        """
        backbone_config = preset_lib.preset_arguments(preset, "backbone")
        head_config = preset_lib.preset_arguments(preset, "head")
        if overrides.get("genotype") is not None:
            genotype = genotype_lib.Genotype.coerce(overrides["genotype"])
            overrides = dict(
                overrides, genotype=genotype.replace(head_filters=None)
            )
            if genotype.head_filters is not None:
                head_filters = list(genotype.head_filters)
                if "head_filters" in overrides:
                    raise ValueError(
                        f"EvoPose2D.from_preset({preset!r}): the genotype's "
                        f"head steps set head_filters={head_filters}, and "
                        "head_filters is given too. Pass only one of them."
                    )
                overrides["head_filters"] = head_filters
        if overrides.get("keypoint_layout") is not None:
            # The layout's keypoints replace the preset's 17.
            head_config.pop("num_keypoints", None)
        backbone_names = set(backbone_config) | {"activation"}
        preset_lib.check_overrides(cls, preset, overrides, extra=backbone_names)
        # Whole-network settings go to the backbone and to the head.
        whole_network = {"dtype", "kernel_regularizer", "batch_norm_momentum"}
        backbone = EvoPose2DBackbone.from_preset(
            preset,
            weights=weights,
            **{
                key: value
                for key, value in overrides.items()
                if key in backbone_names or key in whole_network
            },
        )
        head_config.update(
            {
                key: value
                for key, value in overrides.items()
                if key not in backbone_names
            }
        )
        return cls(backbone=backbone, **head_config)


def _resolve_layout(layout, num_keypoints):
    """`keypoint_layout` as a `KeypointLayout` (or `None`), checked
    against `num_keypoints`."""
    if isinstance(layout, dict):
        layout = KeypointLayout.from_config(layout)
    if layout is None:
        if num_keypoints in (None, 17):
            return KeypointLayout.coco_person()
        return None
    if not isinstance(layout, KeypointLayout):
        raise ValueError(
            "EvoPose2D: `keypoint_layout` must be a KeypointLayout or its "
            f"get_config() dict. Received: {type(layout).__name__}"
        )
    if num_keypoints is not None and num_keypoints != layout.num_keypoints:
        raise ValueError(
            f"EvoPose2D: num_keypoints={num_keypoints} but the "
            f"keypoint_layout has {layout.num_keypoints} keypoints "
            f"({', '.join(layout.names[:4])}, ...). Pass one of them."
        )
    return layout


@keras_evopose_export("keras_evopose.models.build_flat_model")
def build_flat_model(model, keras_module):
    """Builds `model`'s network from primitive layers of `keras_module`.

    The twin has the same architecture (from the same builder) and the same
    weights, but every layer is a plain Conv2D/BN/... named
    `<block>_<role>` (`stage2_block1_expand_conv`), with no nested model.
    With `keras_module=tf_keras` this is what TFMOT quantization-aware
    training needs; with `keras` it gives a flat Keras 3 model.

    Args:
        model: an `EvoPose2D` whose backbone is an `EvoPose2DBackbone`.
        keras_module: the `keras` or `tf_keras` module.

    Returns:
        A functional model of `keras_module` with the weights of `model`.

    Raises:
        ValueError: if `model` is not an EvoPose2D network, has a sub-pixel
            head, or a weight of the twin has no counterpart in `model`.
    """
    backbone = getattr(model, "backbone", None)
    if not isinstance(model, EvoPose2D) or not isinstance(
        backbone, EvoPose2DBackbone
    ):
        raise ValueError(
            "build_flat_model needs an EvoPose2D model with an "
            f"EvoPose2DBackbone. Received: {type(model).__name__}"
        )
    config = model.get_config()
    if config["head_upsampling"] != "transpose":
        raise ValueError(
            "build_flat_model needs head_upsampling='transpose': the flat "
            "and tf_keras twins have no sub-pixel head (export_litert needs "
            "no twin). Received: "
            f"head_upsampling={config['head_upsampling']!r}"
        )
    head_arguments = dict(
        num_keypoints=config["num_keypoints"],
        filters=config["head_filters"],
        kernel_size=config["head_kernel_size"],
        final_kernel_size=config["final_kernel_size"],
        spatial_correction=config["spatial_correction"],
        activation=config["head_activation"],
        # Serialized dicts: what both keras and tf_keras layers accept.
        kernel_regularizer=config["kernel_regularizer"],
        batch_norm_momentum=config["batch_norm_momentum"],
    )
    backbone_config = backbone.get_config()
    layers_module = keras_module.layers
    inputs = layers_module.Input(
        shape=tuple(backbone.image_shape), name="image"
    )
    features, _ = builder.backbone_graph(
        inputs,
        backbone.genotype,
        backbone.stem_filters,
        backbone.stochastic_depth_rate,
        backbone.activation,
        layers_module,
        flat=True,
        kernel_regularizer=backbone_config["kernel_regularizer"],
        batch_norm_momentum=backbone_config["batch_norm_momentum"],
    )
    heatmaps = builder.head_graph(
        features, head_arguments, layers_module, flat=True
    )
    twin = keras_module.Model(inputs, heatmaps, name=f"{model.name}_flat")
    # Same layer name, same weight order (kernel, bias; gamma, beta, mean,
    # variance) in both Keras versions; only weight names differ
    # ("depthwise_kernel" in tf_keras).
    values = {}
    for variable in model.weights:
        layer_name, _ = builder.flat_weight_name(variable.path)
        values.setdefault(layer_name, []).append(
            keras.ops.convert_to_numpy(variable)
        )
    for layer in twin.layers:
        if not layer.weights:
            continue
        arrays = values.pop(layer.name, None)
        shapes = [tuple(w.shape) for w in layer.weights]
        if arrays is None or [a.shape for a in arrays] != shapes:
            raise ValueError(
                f"build_flat_model: layer {layer.name!r} (weights {shapes}) "
                "has no counterpart of the same shapes in the model."
            )
        layer.set_weights(arrays)
    if values:
        raise ValueError(
            "build_flat_model: weights of the model were not placed in the "
            "twin: " + ", ".join(sorted(values))
        )
    return twin
