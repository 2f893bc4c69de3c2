import numpy as np
import pytest

pytest.importorskip("keras_hub")

from keras_evopose.data import SampleOptions  # noqa: E402
from keras_evopose.data import geometry  # noqa: E402
from keras_evopose.hub import EvoPose2DImageConverter  # noqa: E402
from keras_evopose.layers import CropWarp  # noqa: E402

OPTIONS = SampleOptions((64, 48), (32, 24), fill="mean", padding=1.3)


def test_crops_match_the_crop_warp_layer(coco_mini):
    # `CropWarp` (keras.ops) is the pipeline's warp written independently
    # (within one uint8 level of it); the end-to-end match with the
    # pipeline is `EvoPose2DPoseEstimator`'s test against
    # `predict_keypoints`.
    import tensorflow as tf

    path = sorted(coco_mini["images"].glob("*.jpg"))[0]
    pixels = tf.io.decode_jpeg(tf.io.read_file(str(path))).numpy()
    # A box inside the image, and one at its corner: half that crop lies
    # outside the image, filled with the mean colour.
    boxes = np.array([[200, 100, 90, 150], [0, 0, 40, 60]], "float32")
    converter = EvoPose2DImageConverter(OPTIONS)
    crops = converter({"images": pixels, "boxes": boxes})
    # Widened to the crop's 48:64 aspect ratio, padded by 1.3.
    np.testing.assert_allclose(crops["center"], [[245, 175], [20, 30]])
    np.testing.assert_allclose(
        crops["scale"], [1.3 * 150 / 64, 1.3 * 60 / 64], rtol=1e-6
    )
    matrix = geometry.crop_to_image_matrix(
        np.asarray(crops["center"]), np.asarray(crops["scale"]), (64, 48)
    )
    expected = CropWarp((64, 48), fill="mean")(
        {
            "pixels": np.stack([pixels, pixels]),
            "pixel_size": np.array([pixels.shape[:2]] * 2, "int32"),
            "crop_to_pixels": matrix.astype("float32"),
        }
    )
    difference = np.abs(np.asarray(crops["images"]) - np.asarray(expected))
    assert difference.max() <= 1.01 / 255 / min(OPTIONS.image_std)
    mean_colour = np.all(np.abs(np.asarray(crops["images"][1])) < 1e-6, -1)
    assert mean_colour.mean() > 0.2


def test_config_is_the_constructor_arguments():
    converter = EvoPose2DImageConverter(OPTIONS, name="crops")
    config = converter.get_config()
    assert set(config) == {"name", "trainable", "dtype", "sample_options"}
    again = EvoPose2DImageConverter.from_config(config)
    assert again.sample_options == OPTIONS
    assert again.image_size == (64, 48)


def test_bad_inputs_name_the_fix():
    with pytest.raises(ValueError, match="must be a SampleOptions"):
        EvoPose2DImageConverter((64, 48))
    converter = EvoPose2DImageConverter(OPTIONS)
    with pytest.raises(ValueError, match="dict of `images` and `boxes`"):
        converter(np.zeros((1, 64, 48, 3), "uint8"))
    with pytest.raises(ValueError, match="2 images for 1 boxes"):
        converter({"images": np.zeros((2, 9, 9, 3)), "boxes": [[0, 0, 5, 5]]})
    with pytest.raises(ValueError, match="must be RGB"):
        converter({"images": np.zeros((9, 9)), "boxes": [[0, 0, 5, 5]]})
