"""Every setting of the crop -> augment -> heatmap pipeline, in one value."""

import dataclasses

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.utils.validation import check_size

FILLS = ("black", "mean")
OUT_OF_CROP_TARGETS = ("border", "ignore")
# Input normalization, stated once: RGB in [0, 1] -> ImageNet statistics
# (`keras_evopose.data.normalize_image`).
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


@keras_evopose_export("keras_evopose.data.SampleOptions")
@dataclasses.dataclass(frozen=True)
class SampleOptions:
    """How person boxes become training samples (crops and heatmaps).

    One frozen value passed down the pipeline instead of long argument
    lists. `heatmap_size` has no default: it is the model's output size,
    so build the options from the model (`SampleOptions.for_model`) or
    pass `model.output_shape[1:3]`.

    Args:
        input_size: `(height, width)` of the crops (the model input).
        heatmap_size: `(height, width)` of the targets (the model output).
        sigma: Gaussian standard deviation in heatmap pixels. Defaults to
            the reference's `2 * heatmap_height / 64` (2 at 64x48, 4 at
            128x96).
        padding: float, the box is widened to the crop aspect ratio and
            padded by this factor (1.25 in the reference).
        scale_factor: float, scale augmentation
            `clip(1 + scale_factor * N(0, 1), 1 -+ scale_factor)`.
        rotation_factor: float, rotation augmentation in degrees
            `clip(rotation_factor * N(0, 1), +-2 rotation_factor)`.
        rotation_probability: float, chance that a sample is rotated.
        flip_probability: float, chance of a horizontal flip.
        half_body_probability: float, chance of cropping only the upper or
            lower body (a uniform draw). The reference's config says 0,
            but its normal draw applies it to about half of the people
            with more than 8 visible joints; set 0.5 to approximate that.
        half_body_min_keypoints: int, half-body needs more visible joints.
        heatmap_peak: float, the Gaussians' peak (255 in the reference).
        fill: `"black"` (default): the area outside the image is black
            RGB 0 before normalization; `"mean"`: it is the ImageNet mean
            colour (0 after normalization), as in the reference, which
            normalizes before its warp.
        out_of_crop: what a labelled joint outside the crop becomes.
            `"border"` (default): the Gaussian centred on the joint
            (at most 3 sigma beyond the map), weight 1: on the map it
            peaks at the nearest border pixel, lower the farther away
            the joint is, so it decodes to the border with a low score,
            as the reference's targets do (the reference gives them
            weight 0); `"ignore"`: an all-zero heatmap with weight 0,
            which decodes to the heatmap origin.
        image_mean: per-channel RGB mean in [0, 1] units subtracted by
            the input normalization (`normalize_image`). Defaults to
            ImageNet's `IMAGE_MEAN`.
        image_std: per-channel RGB standard deviation it divides by.
            Defaults to ImageNet's `IMAGE_STD`.

    Example:

    >>> options = keras_evopose.data.SampleOptions((256, 192), (64, 48))
    >>> options.sigma, options.fill, options.out_of_crop
    (2.0, 'black', 'border')
    >>> options.replace(fill="mean").fill
    'mean'
    """

    input_size: tuple
    heatmap_size: tuple
    sigma: float = None
    padding: float = 1.25
    scale_factor: float = 0.3
    rotation_factor: float = 40.0
    rotation_probability: float = 0.6
    flip_probability: float = 0.5
    half_body_probability: float = 0.0
    half_body_min_keypoints: int = 8
    heatmap_peak: float = 255.0
    fill: str = "black"
    out_of_crop: str = "border"
    image_mean: tuple = IMAGE_MEAN
    image_std: tuple = IMAGE_STD

    def __post_init__(self):
        # Frozen: normalize through object.__setattr__, once, here.
        def set_field(name, value):
            object.__setattr__(self, name, value)

        set_field("input_size", check_size("input_size", self.input_size))
        if self.heatmap_size is None:
            raise ValueError(
                "`heatmap_size` is required: it is the model's output size. "
                "Pass `heatmap_size=model.output_shape[1:3]` or use "
                "`SampleOptions.for_model(model)`."
            )
        set_field("heatmap_size", check_size("heatmap_size", self.heatmap_size))
        if self.sigma is None:
            set_field("sigma", 2.0 * self.heatmap_size[0] / 64.0)
        for name in ("sigma", "padding", "heatmap_peak"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(
                    f"`{name}` must be > 0. Received: {name}={value!r}"
                )
            set_field(name, float(value))
        for name in (
            "rotation_probability",
            "flip_probability",
            "half_body_probability",
        ):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(
                    f"`{name}` must be in [0, 1]. Received: {name}={value!r}"
                )
            set_field(name, float(value))
        if not 0 <= self.scale_factor < 1:
            raise ValueError(
                "`scale_factor` must be in [0, 1). "
                f"Received: scale_factor={self.scale_factor!r}"
            )
        if not self.rotation_factor >= 0:
            raise ValueError(
                "`rotation_factor` must be >= 0. "
                f"Received: rotation_factor={self.rotation_factor!r}"
            )
        set_field("scale_factor", float(self.scale_factor))
        set_field("rotation_factor", float(self.rotation_factor))
        set_field("half_body_min_keypoints", int(self.half_body_min_keypoints))
        if self.fill not in FILLS:
            raise ValueError(
                f"`fill` must be one of {FILLS}. Received: fill={self.fill!r}"
            )
        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            try:
                value = tuple(float(channel) for channel in value)
            except (TypeError, ValueError):
                value = ()
            if len(value) != 3 or (name == "image_std" and min(value) <= 0):
                raise ValueError(
                    f"`{name}` must be 3 numbers (R, G, B in [0, 1] units"
                    f"{', > 0' if name == 'image_std' else ''}). Received: "
                    f"{name}={getattr(self, name)!r}"
                )
            set_field(name, value)
        if self.out_of_crop not in OUT_OF_CROP_TARGETS:
            raise ValueError(
                f"`out_of_crop` must be one of {OUT_OF_CROP_TARGETS}. "
                f"Received: out_of_crop={self.out_of_crop!r}"
            )

    @classmethod
    def for_model(cls, model, **overrides):
        """Options whose input and heatmap sizes are `model`'s.

        Args:
            model: a Keras model from `(batch, H, W, 3)` crops to
                `(batch, h, w, K)` heatmaps.
            **overrides: any other field.
        """
        input_size = tuple(model.input_shape[1:3])
        if None in input_size:
            raise ValueError(
                "SampleOptions.for_model: the model has no fixed input "
                "size; pass `input_size` and `heatmap_size` explicitly."
            )
        heatmap_size = tuple(
            model.compute_output_shape((1, *input_size, 3))[1:3]
        )
        return cls(input_size, heatmap_size, **overrides)

    def get_config(self):
        """Every field, JSON-ready (`SampleOptions(**config)` rebuilds
        it); what `EvoPose2D(sample_options=...)` saves."""
        config = dataclasses.asdict(self)
        config["input_size"] = list(self.input_size)
        config["heatmap_size"] = list(self.heatmap_size)
        config["image_mean"] = list(self.image_mean)
        config["image_std"] = list(self.image_std)
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuilds options from `get_config()`; fields missing from an
        older config take today's defaults."""
        unknown = set(config) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"SampleOptions.from_config: unknown fields {sorted(unknown)}"
                f"; expected some of {sorted(cls.__dataclass_fields__)}."
            )
        return cls(**config)

    def replace(self, **changes):
        """A copy with `changes` applied (validated again). `sigma` keeps
        its value unless changed, even when `heatmap_size` changes."""
        return dataclasses.replace(self, **changes)
