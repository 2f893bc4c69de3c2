import numpy as np
import pytest

pytest.importorskip("keras_hub")

from keras_evopose.data import SampleOptions  # noqa: E402
from keras_evopose.hub import EvoPose2DImageConverter  # noqa: E402
from keras_evopose.hub import EvoPose2DPoseEstimatorPreprocessor  # noqa: E402


def test_crops_with_its_converter_and_passes_labels_through():
    converter = EvoPose2DImageConverter(SampleOptions((64, 48), (32, 24)))
    preprocessor = EvoPose2DPoseEstimatorPreprocessor(converter)
    images = np.random.default_rng(0).integers(0, 256, (2, 80, 60, 3))
    inputs = {"images": images, "boxes": [[5, 5, 30, 50], [10, 0, 40, 70]]}
    labels = np.ones((2, 32, 24, 17), "float32")
    crops, y = preprocessor(inputs, y=labels)
    np.testing.assert_array_equal(crops, converter(inputs)["images"])
    assert y is labels
    again = EvoPose2DPoseEstimatorPreprocessor.from_config(
        preprocessor.get_config()
    )
    assert again.image_converter.sample_options == converter.sample_options
    assert again.get_config() == preprocessor.get_config()


def test_refuses_another_converter():
    with pytest.raises(ValueError, match="must be an EvoPose2DImageConverter"):
        EvoPose2DPoseEstimatorPreprocessor(None)
