import json
import os

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from keras_evopose.export.litert import data_contract  # noqa: E402
from keras_evopose.hub import EvoPose2DHubBackbone  # noqa: E402
from keras_evopose.hub import EvoPose2DPoseEstimator  # noqa: E402
from keras_evopose.inference import predict_keypoints  # noqa: E402
from keras_evopose.models import EvoPose2D  # noqa: E402
from keras_evopose.models import count_flops  # noqa: E402

# A searched genotype: the test preset with another kernel in stage 2 and
# its own head steps.
GENOTYPE = [
    "ir_r1_k3_s1_e1_c8_se0.25",
    "ir_r1_k5_s2_e2_c16_se0.25",
    "ir_r1_k3_s2_e2_c16_se0.25",
    "ir_r1_k3_s2_e2_c24_se0.25",
    "up_c16",
    "up_c16",
    "up_c8",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A searched test-preset network after a few training steps, its task
    and the task's preset folder."""
    model = EvoPose2D.from_preset("test", genotype=GENOTYPE)
    # Eager: a third of the CPU time of tracing a train step this small.
    model.compile(keras.optimizers.SGD(0.1), "mse", run_eagerly=True)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 64, 48, 3)).astype("float32")
    heatmaps = rng.random((4, 32, 24, 17)).astype("float32")
    initial = model.get_weights()
    for _ in range(2):
        model.train_on_batch(images, heatmaps)
    # Every kernel and the BN statistics moved.
    moved = [
        not np.array_equal(before, after)
        for before, after in zip(initial, model.get_weights())
    ]
    assert np.mean(moved) > 0.9
    task = EvoPose2DPoseEstimator.from_model(model)
    preset = tmp_path_factory.mktemp("hub") / "evopose_test"
    task.save_to_preset(preset)
    return model, task, str(preset)


def test_keras_hub_from_preset_gives_the_same_heatmaps(trained):
    model, task, preset = trained
    assert sorted(os.listdir(preset)) == [
        "config.json",
        "image_converter.json",
        "metadata.json",
        "model.weights.h5",
        "preprocessor.json",
        "task.json",
        "task.weights.h5",
    ]
    loaded = EvoPose2DPoseEstimator.from_preset(preset)
    assert type(loaded) is EvoPose2DPoseEstimator
    assert type(loaded.backbone) is EvoPose2DHubBackbone
    assert loaded.sample_options == model.sample_options
    assert loaded.keypoint_layout == model.keypoint_layout
    crops = np.random.default_rng(1).normal(size=(3, 64, 48, 3))
    crops = crops.astype("float32")
    np.testing.assert_array_equal(
        loaded(crops, training=False), model(crops, training=False)
    )
    # keras-hub's own entry point for the backbone alone.
    backbone = keras_hub.models.Backbone.from_preset(preset)
    np.testing.assert_array_equal(
        backbone(crops, training=False), model.backbone(crops, training=False)
    )


def test_metadata_holds_size_genotype_and_data_contract(trained):
    model, _, preset = trained
    with open(os.path.join(preset, "metadata.json")) as handle:
        fields = json.load(handle)["keras_evopose"]
    assert fields["genotype"] == GENOTYPE
    assert fields["input_size"] == [64, 48]
    assert fields["heatmap_size"] == [32, 24]
    assert fields["parameter_count"] == model.count_params()
    assert fields["flops"] == count_flops(model, (64, 48, 3))
    assert fields["data_contract"] == data_contract(model)


def test_predict_gives_the_keypoints_of_predict_keypoints(trained, coco_mini):
    import tensorflow as tf

    model, task, _ = trained
    data = json.loads(coco_mini["annotations"].read_text())
    image_id = data["annotations"][0]["image_id"]
    boxes = [
        a["bbox"] for a in data["annotations"] if a["image_id"] == image_id
    ]
    name = next(i for i in data["images"] if i["id"] == image_id)["file_name"]
    path = coco_mini["images"] / name
    pixels = tf.io.decode_jpeg(tf.io.read_file(str(path))).numpy()
    predicted = task.predict({"images": pixels, "boxes": boxes})
    expected = predict_keypoints(model, path, boxes)
    assert predicted["keypoints"].shape == (len(boxes), 17, 2)
    np.testing.assert_allclose(
        predicted["keypoints"], expected[..., :2], rtol=1e-5, atol=1e-3
    )
    np.testing.assert_allclose(
        predicted["scores"], expected[..., 2], rtol=1e-5, atol=1e-5
    )


def test_config_and_bad_arguments(trained):
    model, task, _ = trained
    config = task.get_config()
    assert set(config) == set(model.get_config()) | {"preprocessor"}
    with pytest.raises(ValueError, match="must be an EvoPose2DHubBackbone"):
        EvoPose2DPoseEstimator(model.backbone)
    with pytest.raises(ValueError, match="needs an EvoPose2D"):
        EvoPose2DPoseEstimator.from_model(model.backbone)
    with pytest.raises(ValueError, match="'small' is an EvoPose2D arch"):
        EvoPose2DPoseEstimator.from_preset("small")
    with pytest.raises(ValueError, match="`boxes` is empty"):
        task.predict({"images": np.zeros((64, 48, 3)), "boxes": []})
    preprocessor, task.preprocessor = task.preprocessor, None
    try:
        with pytest.raises(ValueError, match="has none"):
            task.predict({"images": np.zeros((64, 48, 3)), "boxes": [[0] * 4]})
    finally:
        task.preprocessor = preprocessor
