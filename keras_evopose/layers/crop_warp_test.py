import json

import keras
import numpy as np
import pytest

from keras_evopose.data import IMAGE_STD
from keras_evopose.data import coco_keypoints_dataset
from keras_evopose.layers import CropWarp
from keras_evopose.layers import crop_warp_model
from keras_evopose.losses import HeatmapMSE

INPUT_SIZE = (64, 48)
# One uint8 level of a crop, in normalized units.
LEVELS = np.asarray(IMAGE_STD, "float32") * 255.0


def first_batches(coco_mini, **options):
    """The data-warped and the model-warped first batch, same draws."""
    settings = dict(
        input_size=INPUT_SIZE,
        heatmap_size=(16, 12),
        batch_size=40,
        training=True,
        seed=0,
        half_body_probability=0.3,
        **options,
    )
    data = (coco_mini["annotations"], coco_mini["images"])
    on_data = next(iter(coco_keypoints_dataset(*data, **settings)))
    on_model = next(
        iter(coco_keypoints_dataset(*data, warp="model", **settings))
    )
    return on_data, on_model


def test_model_warp_gives_the_data_pipeline_crops(coco_mini):
    # fill="mean": test_mean_fill_reaches_beyond_the_image.
    on_data, on_model = first_batches(coco_mini)
    inputs = on_model[0]
    pixels = inputs["pixels"].numpy()
    assert pixels.dtype == np.uint8
    # Padded to a multiple of 128 (few shapes for a compiled step).
    assert pixels.shape[1] % 128 == 0 and pixels.shape[2] % 128 == 0
    crops = CropWarp(INPUT_SIZE)(inputs)
    assert tuple(crops.shape) == tuple(on_data[0].shape)
    # The data pipeline rounds its warp to uint8: within one level.
    difference = np.abs(np.asarray(crops) - on_data[0].numpy()) * LEVELS
    assert difference.max() <= 1.01, difference.max()
    # Targets do not depend on where the warp runs.
    np.testing.assert_array_equal(on_model[1].numpy(), on_data[1].numpy())
    np.testing.assert_array_equal(on_model[2].numpy(), on_data[2].numpy())


def test_mean_fill_reaches_beyond_the_image(tmp_path, coco_mini):
    # A box at an image corner: half the crop lies outside the image.
    data = json.loads(coco_mini["annotations"].read_text())
    data["annotations"] = [
        dict(a, bbox=[0, 0, 60, 80])
        for a in data["annotations"]
        if a["num_keypoints"] > 0 and not a["iscrowd"]
    ][:4]
    annotations = tmp_path / "corner.json"
    annotations.write_text(json.dumps(data))
    settings = dict(
        input_size=INPUT_SIZE, heatmap_size=(16, 12), batch_size=4,
        fill="mean",
    )  # fmt: skip
    on_data = next(iter(coco_keypoints_dataset(
        annotations, coco_mini["images"], **settings
    )))  # fmt: skip
    on_model = next(iter(coco_keypoints_dataset(
        annotations, coco_mini["images"], warp="model", **settings
    )))  # fmt: skip
    crops = np.asarray(CropWarp(INPUT_SIZE, fill="mean")(on_model[0]))
    outside = np.all(crops == 0, axis=-1)
    assert outside.mean() > 0.1
    difference = np.abs(crops - on_data[0].numpy()) * LEVELS
    assert difference.max() <= 1.01, difference.max()


def test_crop_warp_model_trains_the_pose_model(coco_mini):
    _, on_model = first_batches(coco_mini)
    pose = keras.Sequential(
        [
            keras.Input((*INPUT_SIZE, 3)),
            keras.layers.Conv2D(17, 3, strides=4, padding="same"),
        ]
    )
    trainable = crop_warp_model(pose)
    trainable.compile(optimizer="sgd", loss=HeatmapMSE())
    before = [w.numpy().copy() for w in pose.weights]
    trainable.fit(
        on_model[0], on_model[1], sample_weight=on_model[2], verbose=0
    )
    after = [w.numpy() for w in pose.weights]
    assert any(not np.allclose(a, b) for a, b in zip(before, after))
    # The pose model itself still takes crops.
    assert tuple(pose.input_shape) == (None, *INPUT_SIZE, 3)


def test_config_round_trip_and_bad_inputs():
    layer = CropWarp((32, 24), fill="mean", name="warp")
    config = layer.get_config()
    assert config["input_size"] == (32, 24) and config["fill"] == "mean"
    assert CropWarp.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="fill"):
        CropWarp((32, 24), fill="white")
    with pytest.raises(ValueError, match="pixel_size"):
        layer({"pixels": np.zeros((1, 32, 24, 3), "uint8")})


def test_own_normalization_in_the_data_and_the_model_warp(coco_mini):
    # [0, 1] inputs instead of ImageNet statistics, in both warps; the
    # model warp takes it from the pose model's sample_options.
    from keras_evopose.models import EvoPose2D

    unit = dict(image_mean=(0, 0, 0), image_std=(1, 1, 1), fill="mean")
    on_data, on_model = first_batches(coco_mini, **unit)
    images = on_data[0].numpy()
    assert images.min() >= 0 and images.max() <= 1 and images.max() > 0.9
    model = EvoPose2D.from_preset("test", sample_options=unit)
    warp = crop_warp_model(model, fill="mean").get_layer("crop_warp")
    assert warp.image_std == (1.0, 1.0, 1.0)
    difference = np.abs(np.asarray(warp(on_model[0])) - images) * 255.0
    assert difference.max() <= 1.01, difference.max()
