import keras
import keras_hub

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.hub.evopose2d_hub_backbone import EvoPose2DHubBackbone
from keras_evopose.hub.evopose2d_image_converter import EvoPose2DImageConverter


@keras_evopose_export("keras_evopose.hub.EvoPose2DPoseEstimatorPreprocessor")
class EvoPose2DPoseEstimatorPreprocessor(keras_hub.models.Preprocessor):
    """The `EvoPose2DPoseEstimator`'s preprocessor: images and person
    boxes -> normalized crops, through its `EvoPose2DImageConverter`.

    Args:
        image_converter: an `EvoPose2DImageConverter`.
        **kwargs: base layer arguments.

    Call arguments:
        x: the converter's input dict (`images`, `boxes`).
        y, sample_weight: passed through unchanged.

    Returns:
        `(crops, y, sample_weight)` packed as Keras does
        (`keras.utils.pack_x_y_sample_weight`).
    """

    backbone_cls = EvoPose2DHubBackbone
    image_converter_cls = EvoPose2DImageConverter

    def __init__(self, image_converter, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(image_converter, EvoPose2DImageConverter):
            raise ValueError(
                "EvoPose2DPoseEstimatorPreprocessor: `image_converter` must "
                "be an EvoPose2DImageConverter. Received: "
                f"{type(image_converter).__name__}"
            )
        self.image_converter = image_converter

    def call(self, x, y=None, sample_weight=None):
        crops = self.image_converter(x)["images"]
        return keras.utils.pack_x_y_sample_weight(crops, y, sample_weight)
