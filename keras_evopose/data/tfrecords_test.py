import json

import numpy as np
import pytest

from keras_evopose.data import IMAGE_STD
from keras_evopose.data import SampleOptions
from keras_evopose.data import augmentation
from keras_evopose.data import coco_keypoints
from keras_evopose.data import coco_keypoints_dataset
from keras_evopose.data import geometry
from keras_evopose.data import load_coco_instances
from keras_evopose.data import tfrecord_keypoints_dataset
from keras_evopose.data import write_tfrecords

OPTIONS = SampleOptions((64, 48), (16, 12), half_body_probability=0.3)


def test_person_crop_regions_hold_every_augmented_window(coco_mini):
    import tensorflow as tf

    instances = load_coco_instances(
        coco_mini["annotations"], coco_mini["images"]
    )
    regions, widened = coco_keypoints.person_crop_regions(
        instances.boxes,
        instances.keypoints,
        instances.image_sizes,
        instances.layout,
        OPTIONS,
    )
    size = np.tile(instances.image_sizes[:, ::-1], 2)
    assert np.all(regions[:, :2] >= 0) and np.all(regions <= size)
    # Half-body crops of some people reach beyond their box crop's region.
    assert 0 < widened.sum() < len(widened)
    # Always-on augmentation, many draws: every window the warp reads,
    # clipped to the image, lies inside the stored region.
    options = OPTIONS.replace(
        half_body_probability=1.0, rotation_probability=1.0
    )
    center, scale = geometry.box_to_center_scale(
        instances.boxes, options.input_size, options.padding, xp=tf
    )
    keypoints = tf.constant(instances.keypoints)
    for seed in range(10):
        drawn = augmentation.augment_crops(
            keypoints, center, scale, options, instances.layout,
            tf.constant(seed, "int64"),
        )  # fmt: skip
        matrix = geometry.crop_to_image_matrix(
            *drawn[:2], options.input_size, *drawn[2:], xp=tf
        )
        windows = coco_keypoints.crop_windows(matrix, options.input_size)
        windows = np.clip(windows.numpy(), 0, size)
        assert np.all(windows[:, :2] >= regions[:, :2]), seed
        assert np.all(windows[:, 2:] <= regions[:, 2:]), seed


def test_person_crop_records_give_the_same_samples(coco_mini, tmp_path):
    write_tfrecords(
        coco_mini["annotations"],
        coco_mini["images"],
        str(tmp_path / "val"),
        person_crops=OPTIONS,
    )
    written = json.loads((tmp_path / "val-layout.json").read_text())
    assert written["person_crops"]["people"] == 80
    settings = dict(
        options=OPTIONS, training=True, shuffle=False, seed=0, batch_size=80
    )
    from_images = next(iter(coco_keypoints_dataset(
        coco_mini["annotations"], coco_mini["images"], **settings
    )))  # fmt: skip
    from_crops = next(
        iter(tfrecord_keypoints_dataset(str(tmp_path / "val-*"), **settings))
    )
    levels = np.abs(from_crops[0].numpy() - from_images[0].numpy())
    levels *= np.asarray(IMAGE_STD) * 255.0
    # JPEG re-encoding noise only (a missing region would be black:
    # differences of 100+ levels).
    assert levels.mean() < 3.0 and levels.max() < 40, levels.max()
    np.testing.assert_array_equal(from_crops[1], from_images[1])
    np.testing.assert_array_equal(from_crops[2], from_images[2])
    # Augmentation beyond what the regions hold is refused.
    with pytest.raises(ValueError, match="scale_factor=0.5"):
        tfrecord_keypoints_dataset(
            str(tmp_path / "val-*"), scale_factor=0.5, **settings
        )
    # Evaluation reads only the unaugmented crop: allowed.
    tfrecord_keypoints_dataset(
        str(tmp_path / "val-*"), options=OPTIONS.replace(scale_factor=0.5)
    )
