"""The bad-data matrix: every broken input is counted and named, never
silently lost, and never a bare error from deep inside TensorFlow."""

import json
import logging
import shutil

import numpy as np
import pytest

from keras_evopose.data import coco_keypoints_dataset
from keras_evopose.data import load_coco_instances
from keras_evopose.data.image_files import unreadable_images

GOOD_IMAGE = "000000000785.jpg"  # one well-labelled person (id 442619)
TRUNCATED_IMAGE = "000000000139.jpg"
NON_UTF8_NAME = b"caf\xe9.jpg"  # Latin-1, not UTF-8


def person(annotation_id, image_id, **changes):
    record = {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": 0,
        "bbox": [280.0, 45.0, 218.0, 346.0],
        "keypoints": [350.0, 100.0, 2] * 17,
    }
    record.update(changes)
    return record


def image(image_id, file_name, **changes):
    record = {
        "id": image_id,
        "file_name": file_name,
        "width": 640,
        "height": 425,
    }
    record.update(changes)
    return record


@pytest.fixture
def bad_data(coco_mini, tmp_path):
    """A COCO JSON with one good person and one of each bad case."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(coco_mini["images"] / GOOD_IMAGE, images / GOOD_IMAGE)
    body = (coco_mini["images"] / TRUNCATED_IMAGE).read_bytes()
    (images / TRUNCATED_IMAGE).write_bytes(body[: len(body) // 2])
    for name in ("nowidth.jpg", "nan.jpg", "string.jpg"):
        shutil.copy(coco_mini["images"] / GOOD_IMAGE, images / name)
    data = {
        "images": [
            image(1, GOOD_IMAGE),
            image(2, "nowidth.jpg", width=None),
            image(3, "PLACEHOLDER"),
            image(4, TRUNCATED_IMAGE, width=640, height=426),
            image(5, "nan.jpg"),
            image(6, "string.jpg"),
        ],
        "annotations": [
            person(101, 1),
            person(102, 2),
            person(103, 3),
            person(104, 4),
            person(105, 5, bbox=[float("nan"), 45.0, 218.0, 346.0]),
            person(106, 6, keypoints=["350", 100.0, 2] + [0, 0, 0] * 16),
        ],
        "categories": [
            {
                "id": 1,
                "name": "person",
                "keypoints": json.loads(coco_mini["annotations"].read_text())[
                    "categories"
                ][0]["keypoints"],
            }
        ],
    }
    # Raw non-UTF-8 bytes in the JSON, as a tool writing bytes would leave.
    text = json.dumps(data).encode().replace(b"PLACEHOLDER", NON_UTF8_NAME)
    annotations = tmp_path / "annotations.json"
    annotations.write_bytes(text)
    return annotations, images


def test_bad_records_are_counted_and_named(bad_data, caplog):
    annotations, images = bad_data
    with caplog.at_level(logging.WARNING, logger="keras_evopose.data"):
        instances = load_coco_instances(annotations, images)
    # The good person and the truncated image's person (found by decoding).
    assert sorted(instances.annotation_ids.tolist()) == [101, 104]
    expected = {
        "malformed image record": 1,  # no width
        "image file name is not UTF-8": 1,
        "malformed bbox": 1,  # NaN
        "malformed keypoints": 1,  # a string
        "image file missing or not listed": 2,  # people of skipped images
    }
    assert dict(instances.skipped) == expected
    # Nothing silently lost: every annotation is used or counted (the
    # two image-record skips count images, whose people are counted too).
    per_person = ("malformed bbox", "malformed keypoints")
    per_person += ("image file missing or not listed",)
    assert len(instances) + sum(expected[r] for r in per_person) == 6
    examples = instances.skipped_examples
    assert "nowidth.jpg" in examples["malformed image record"][0]
    assert "width" in examples["malformed image record"][0]
    assert "(id 3)" in examples["image file name is not UTF-8"][0]
    assert "annotation id 105" in examples["malformed bbox"][0]
    assert "nan.jpg" in examples["malformed bbox"][0]
    assert "annotation id 106" in examples["malformed keypoints"][0]
    assert "string.jpg" in examples["malformed keypoints"][0]
    logged = caplog.text
    for needle in ("nowidth.jpg", "(id 3)", "annotation id 105", "106"):
        assert needle in logged
    assert str(annotations) in logged


def test_truncated_image_is_found_and_named(bad_data):
    import tensorflow as tf

    annotations, images = bad_data
    problems = unreadable_images(
        [images / GOOD_IMAGE, images / TRUNCATED_IMAGE], verbose=False
    )
    assert list(problems) == [str(images / TRUNCATED_IMAGE)]
    assert "Truncated" in problems[str(images / TRUNCATED_IMAGE)]
    dataset = coco_keypoints_dataset(
        annotations,
        images,
        input_size=(64, 48),
        heatmap_size=(32, 24),
        batch_size=2,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=TRUNCATED_IMAGE):
        next(iter(dataset))


def test_check_data_reports_the_matrix(bad_data, capsys):
    from keras_evopose.cli import main

    annotations, images = bad_data
    status = main(
        [
            "check-data", "--annotations", str(annotations),
            "--images", str(images), "--input-size", "64x48",
            "--heatmap-size", "32x24", "--json",
        ]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert list(report["unreadable_images"]) == [str(images / TRUNCATED_IMAGE)]
    assert report["skipped"]["malformed bbox"] == 1
    assert "ceiling_ap" not in report


def test_windowed_decode_matches_full_decode(coco_mini):
    # decode_and_crop_jpeg must give the pixels of a full decode.
    import tensorflow as tf

    from keras_evopose.data.image_files import decode_window

    encoded = tf.io.read_file(str(coco_mini["images"] / GOOD_IMAGE))
    full = tf.io.decode_jpeg(encoded, channels=3).numpy()
    for window in ([13, 7, 211, 300], [-40, -9, 90, 70], [600, 400, 900, 900]):
        pixels, origin, size = decode_window(
            encoded, tf.constant(window, "int32"), tf.constant("test")
        )
        x0, y0 = origin.numpy()
        height, width = pixels.shape[:2]
        assert size.numpy().tolist() == list(full.shape[:2])
        np.testing.assert_array_equal(
            pixels.numpy(), full[y0 : y0 + height, x0 : x0 + width]
        )
