import keras
import keras_hub

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data.sample_options import SampleOptions
from keras_evopose.hub.evopose2d_hub_backbone import EvoPose2DHubBackbone


@keras_evopose_export("keras_evopose.hub.EvoPose2DImageConverter")
class EvoPose2DImageConverter(keras_hub.layers.ImageConverter):
    """Images and person boxes -> the model's normalized crops.

    The crop of `keras_evopose.data.coco_keypoints_dataset` without
    augmentation: each box widened to the crop's aspect ratio and padded
    by `sample_options.padding`, warped bilinearly from the uint8 image
    (`warp_crop`), then normalized with the options' mean and std and
    `fill` outside the image (`normalize_crops`). The same functions run
    here, so a crop equals the pipeline's (to the rounding of the
    translation: the pipeline warps from a decoded window of the image).

    Args:
        sample_options: the model's `keras_evopose.data.SampleOptions`
            (its data contract), or its `get_config()` dict.
        **kwargs: base layer arguments (`name`, `dtype`).

    Call arguments:
        inputs: a dict of `images`, RGB values in [0, 255] (rounded to
            uint8 like a decoded file), `(batch, H, W, 3)` with one image
            per box, or one `(H, W, 3)` image for every box; and `boxes`,
            `(batch, 4)` COCO `[x, y, width, height]` person boxes.

    Returns:
        A dict of `images`, the `(batch, height, width, 3)` float32 crops;
        `center` `(batch, 2)` and `scale` `(batch,)`, the crops' place in
        the image (what `keras_evopose.metrics.heatmaps_to_keypoints`
        maps heatmaps back with).
    """

    backbone_cls = EvoPose2DHubBackbone

    def __init__(self, sample_options, **kwargs):
        if isinstance(sample_options, dict):
            sample_options = SampleOptions.from_config(sample_options)
        if not isinstance(sample_options, SampleOptions):
            raise ValueError(
                "EvoPose2DImageConverter: `sample_options` must be a "
                "SampleOptions or its get_config() dict. Received: "
                f"{type(sample_options).__name__}"
            )
        # keras-hub reads `image_size` (summaries); the crop is ours.
        super().__init__(
            image_size=sample_options.input_size,
            crop_to_aspect_ratio=False,
            **kwargs,
        )
        self.sample_options = sample_options

    def call(self, inputs):
        import tensorflow as tf

        from keras_evopose.data import coco_keypoints
        from keras_evopose.data import geometry

        if not isinstance(inputs, dict) or {"images", "boxes"} - set(inputs):
            raise ValueError(
                "EvoPose2DImageConverter takes a dict of `images` and "
                "`boxes` (COCO [x, y, width, height] person boxes). "
                f"Received: {type(inputs).__name__}"
            )
        options = self.sample_options
        boxes = tf.reshape(tf.cast(inputs["boxes"], "float32"), (-1, 4))
        images = tf.convert_to_tensor(inputs["images"])
        if images.dtype != tf.uint8:
            images = tf.clip_by_value(tf.round(images), 0, 255)
            images = tf.cast(images, "uint8")
        if images.shape.rank == 3:
            images = tf.repeat(images[None], tf.shape(boxes)[0], axis=0)
        elif images.shape.rank != 4 or images.shape[-1] != 3:
            raise ValueError(
                "EvoPose2DImageConverter: `images` must be RGB, (H, W, 3) "
                f"or (batch, H, W, 3). Received shape: {images.shape}"
            )
        elif images.shape[0] != boxes.shape[0]:
            raise ValueError(
                f"EvoPose2DImageConverter: {images.shape[0]} images for "
                f"{boxes.shape[0]} boxes; pass one image per box, or one "
                "(H, W, 3) image for all of them."
            )
        center, scale = geometry.box_to_center_scale(
            boxes, options.input_size, options.padding, xp=tf
        )
        count = tf.shape(boxes)[0]
        crop_to_image = geometry.crop_to_image_matrix(
            center,
            scale,
            options.input_size,
            tf.zeros([count]),
            tf.zeros([count], "bool"),
            xp=tf,
        )
        origin = tf.zeros([2], "int32")
        crops = tf.map_fn(
            lambda sample: coco_keypoints.warp_crop(
                sample[0], origin, sample[1], options.input_size
            ),
            (images, crop_to_image),
            fn_output_signature=tf.uint8,
        )
        image_size = tf.tile(tf.shape(images)[None, 1:3], [count, 1])
        crops = coco_keypoints.normalize_crops(
            crops, crop_to_image, image_size, options
        )
        return {"images": crops, "center": center, "scale": scale}

    def get_config(self):
        # Not chained to ImageConverter's: its resizing arguments are not
        # this constructor's.
        config = keras.layers.Layer.get_config(self)
        config["sample_options"] = self.sample_options.get_config()
        return config
