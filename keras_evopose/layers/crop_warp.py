"""The crop warp inside the model: decoded pixels -> normalized crops.

`coco_keypoints_dataset(..., warp="model")` leaves the bilinear warp, the
step that costs about one JPEG decode per sample on a CPU, to this layer,
so it runs in the compiled train step on the accelerator.
"""

import keras
import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data.sample_options import FILLS
from keras_evopose.data.sample_options import IMAGE_MEAN
from keras_evopose.data.sample_options import IMAGE_STD
from keras_evopose.utils.validation import check_size

INPUT_NAMES = ("pixels", "pixel_size", "crop_to_pixels")


@keras_evopose_export("keras_evopose.layers.CropWarp")
class CropWarp(keras.layers.Layer):
    """Warps decoded pixels to normalized crops (the model's input).

    Gives what `coco_keypoints_dataset(warp="data")` yields as images
    (bilinear warp, then `normalize_image`; within one uint8 level, which
    the data pipeline rounds to) from what `warp="model"` yields.

    Args:
        input_size: `(height, width)` of the crops.
        fill: `"black"` or `"mean"`, as `SampleOptions.fill`: the colour
            outside the image (beyond `pixel_size`).
        image_mean, image_std: the input normalization, as
            `SampleOptions.image_mean` / `image_std` (ImageNet's by
            default).
        **kwargs: base `keras.layers.Layer` arguments.

    Input: a dict of
        `pixels`: `(batch, H, W, 3)` uint8, each sample's decoded pixels
            at the top left, zero-padded.
        `pixel_size`: `(batch, 2)` int32, each sample's `(height, width)`
            of real pixels.
        `crop_to_pixels`: `(batch, 2, 3)` float32, crop `(x, y)` ->
            pixel coordinates.

    Output shape:
        `(batch, height, width, 3)` float32.
    """

    def __init__(
        self,
        input_size,
        fill="black",
        image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_size = check_size("input_size", input_size)
        self.image_mean = tuple(float(v) for v in image_mean)
        self.image_std = tuple(float(v) for v in image_std)
        if fill not in FILLS:
            raise ValueError(
                f"`fill` must be one of {FILLS}. Received: fill={fill!r}"
            )
        self.fill = fill

    def call(self, inputs):
        ops = keras.ops
        missing = set(INPUT_NAMES) - set(inputs)
        if missing:
            raise ValueError(
                f"CropWarp needs the inputs {INPUT_NAMES}; missing "
                f"{sorted(missing)}. Use a dataset built with warp='model'."
            )
        pixels = inputs["pixels"]
        size = ops.cast(inputs["pixel_size"], "float32")
        matrix = ops.cast(inputs["crop_to_pixels"], "float32")
        height, width = self.input_size
        # Each crop pixel's source point (bilinear, pixel centres at
        # integers, as `ImageProjectiveTransformV3`). Gathering the four
        # taps of only the crop's pixels costs far less than a transform
        # whose output is as large as the padded pixels.
        grid_y, grid_x = ops.meshgrid(
            ops.arange(height, dtype="float32"),
            ops.arange(width, dtype="float32"),
            indexing="ij",
        )
        grid_x = ops.reshape(grid_x, (1, -1))
        grid_y = ops.reshape(grid_y, (1, -1))
        source_x = (
            matrix[:, 0, 0:1] * grid_x
            + matrix[:, 0, 1:2] * grid_y
            + matrix[:, 0, 2:3]
        )
        source_y = (
            matrix[:, 1, 0:1] * grid_x
            + matrix[:, 1, 1:2] * grid_y
            + matrix[:, 1, 2:3]
        )
        x0 = ops.floor(source_x)
        y0 = ops.floor(source_y)
        weight_x = source_x - x0
        weight_y = source_y - y0
        shape = ops.shape(pixels)
        flat = ops.reshape(pixels, (-1, 3))
        batch = ops.arange(shape[0], dtype="int32")[:, None]
        # A tap outside the sample's real pixels reads the fill colour:
        # black (0) or the mean (0 once normalized).
        fill = 0.0
        if self.fill == "mean":
            fill = np.asarray(self.image_mean, "float32") * 255.0
        crops = 0.0
        for dy, weight_row in ((0.0, 1.0 - weight_y), (1.0, weight_y)):
            for dx, weight in ((0.0, 1.0 - weight_x), (1.0, weight_x)):
                x = x0 + dx
                y = y0 + dy
                inside = (x >= 0) & (x < size[:, 1:2]) & (y >= 0)
                inside = inside & (y < size[:, 0:1])
                index = (batch * shape[1] + ops.cast(y, "int32")) * shape[2]
                index = index + ops.cast(x, "int32")
                index = ops.where(inside, index, 0)
                tap = ops.cast(ops.take(flat, index, axis=0), "float32")
                tap = ops.where(inside[..., None], tap, fill)
                crops = crops + (weight_row * weight)[..., None] * tap
        mean = np.asarray(self.image_mean, "float32") * 255.0
        std = np.asarray(self.image_std, "float32") * 255.0
        crops = (crops - mean) / std
        return ops.reshape(crops, (-1, height, width, 3))

    def compute_output_shape(self, input_shape):
        batch = input_shape["pixels"][0]
        return (batch, *self.input_size, 3)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_size=self.input_size,
            fill=self.fill,
            image_mean=list(self.image_mean),
            image_std=list(self.image_std),
        )
        return config


@keras_evopose_export("keras_evopose.layers.crop_warp_model")
def crop_warp_model(model, fill="black"):
    """`model` behind a `CropWarp`, to train on `warp="model"` datasets.

    The warp runs in the train step (on the accelerator); the weights are
    `model`'s own (shared, not copied), so save or export `model` itself,
    which still takes normalized crops. The normalization is the model's
    own (`model.sample_options`), ImageNet's for models without one.

    Args:
        model: a pose model from `(batch, H, W, 3)` crops.
        fill: the dataset's `SampleOptions.fill`.

    Returns:
        A `keras.Model` from the dict `{pixels, pixel_size,
        crop_to_pixels}` to `model`'s outputs.
    """
    input_size = tuple(model.input_shape[1:3])
    inputs = {
        "pixels": keras.Input((None, None, 3), dtype="uint8", name="pixels"),
        "pixel_size": keras.Input((2,), dtype="int32", name="pixel_size"),
        "crop_to_pixels": keras.Input((2, 3), name="crop_to_pixels"),
    }
    # The normalization is the model's own (its `sample_options`).
    options = getattr(model, "sample_options", None)
    normalization = {}
    if options is not None:
        normalization = dict(
            image_mean=options.image_mean, image_std=options.image_std
        )
    crops = CropWarp(input_size, fill=fill, name="crop_warp", **normalization)(
        inputs
    )
    return keras.Model(inputs, model(crops), name=f"{model.name}_crop_warp")
