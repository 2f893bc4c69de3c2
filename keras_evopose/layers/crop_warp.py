"""The crop warp inside the model: decoded pixels -> normalized crops.

`coco_keypoints_dataset(..., warp="model")` leaves the bilinear warp, the
step that costs about one JPEG decode per sample on a CPU, to this layer,
so it runs in the compiled train step on the accelerator.
"""

import keras
import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data.coco_keypoints import IMAGE_MEAN
from keras_evopose.data.coco_keypoints import IMAGE_STD
from keras_evopose.data.sample_options import FILLS
from keras_evopose.data.sample_options import _check_size

INPUT_NAMES = ("pixels", "pixel_size", "crop_to_pixels")


@keras_evopose_export("keras_evopose.layers.CropWarp")
class CropWarp(keras.layers.Layer):
    """Warps decoded pixels to normalized crops (the model's input).

    Gives what `coco_keypoints_dataset(warp="data")` yields as images
    (bilinear warp, then `normalize_image`; within one uint8 level, which
    the data pipeline rounds to) from what `warp="model"` yields.

    Args:
        input_size: `(height, width)` of the crops.
        fill: `"black"` or `"mean"`, as `SampleOptions.fill`: the value
            outside the image (the pixels' zero padding counts as outside).
        **kwargs: base `keras.layers.Layer` arguments.

    Input: a dict of
        `pixels`: `(batch, H, W, 3)` uint8, each sample's decoded pixels
            at the top left, zero-padded; `H, W` at least `input_size`.
        `pixel_size`: `(batch, 2)` int32, each sample's `(height, width)`
            of real pixels.
        `crop_to_pixels`: `(batch, 2, 3)` float32, crop `(x, y)` ->
            pixel coordinates.

    Output shape:
        `(batch, height, width, 3)` float32.
    """

    def __init__(self, input_size, fill="black", **kwargs):
        super().__init__(**kwargs)
        self.input_size = _check_size("input_size", input_size)
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
        pixels = ops.cast(inputs["pixels"], "float32")
        matrix = ops.reshape(
            ops.cast(inputs["crop_to_pixels"], "float32"), (-1, 6)
        )
        # Projective row (0, 0): the affine part is the whole transform.
        transform = ops.concatenate([matrix, ops.zeros_like(matrix[:, :2])], 1)
        mean = np.asarray(IMAGE_MEAN, "float32") * 255.0
        std = np.asarray(IMAGE_STD, "float32") * 255.0
        if self.fill == "mean":
            # As the reference: normalize, then warp with fill 0 (the mean
            # colour); the padding is outside the image, so it is 0 too.
            size = ops.cast(inputs["pixel_size"], "int32")
            rows = ops.arange(ops.shape(pixels)[1], dtype="int32")
            columns = ops.arange(ops.shape(pixels)[2], dtype="int32")
            inside = ops.logical_and(
                rows[None, :, None] < size[:, 0, None, None],
                columns[None, None, :] < size[:, 1, None, None],
            )
            pixels = ops.where(inside[..., None], (pixels - mean) / std, 0.0)
            crops = ops.image.affine_transform(pixels, transform)
        else:
            crops = (ops.image.affine_transform(pixels, transform) - mean) / std
        # The transform's output has the pixels' size: keep the crop.
        height, width = self.input_size
        return crops[:, :height, :width, :]

    def compute_output_shape(self, input_shape):
        batch = input_shape["pixels"][0]
        return (batch, *self.input_size, 3)

    def get_config(self):
        config = super().get_config()
        config.update(input_size=self.input_size, fill=self.fill)
        return config


@keras_evopose_export("keras_evopose.layers.crop_warp_model")
def crop_warp_model(model, fill="black"):
    """`model` behind a `CropWarp`, to train on `warp="model"` datasets.

    The warp runs in the train step (on the accelerator); the weights are
    `model`'s own (shared, not copied), so save or export `model` itself,
    which still takes normalized crops.

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
    crops = CropWarp(input_size, fill=fill, name="crop_warp")(inputs)
    return keras.Model(inputs, model(crops), name=f"{model.name}_crop_warp")
