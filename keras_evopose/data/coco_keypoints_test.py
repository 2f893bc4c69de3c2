import json

import numpy as np
import pytest
from PIL import Image

from keras_evopose.data import KeypointLayout
from keras_evopose.data import coco_keypoints_dataset
from keras_evopose.data import geometry
from keras_evopose.data import load_coco_instances
from keras_evopose.data import normalize_image

COCO_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
]  # fmt: skip
LEFT, RIGHT, NOSE = 5, 6, 0  # the joints drawn as coloured dots
INPUT_SIZE = (64, 48)


def write_synthetic(tmp_path, annotations=None, categories=None):
    """A 160x120 black PNG with a red dot at the left shoulder, a green dot
    at the right shoulder and a blue one at the nose; all 17 joints
    labelled."""
    image = np.zeros((160, 120, 3), "uint8")
    points = np.stack(
        [np.linspace(40, 80, 17), np.linspace(30, 130, 17)], axis=1
    )
    points[LEFT] = (45, 60)
    points[RIGHT] = (78, 95)
    for index, colour in (
        (LEFT, (255, 0, 0)),
        (RIGHT, (0, 255, 0)),
        (NOSE, (0, 0, 255)),
    ):
        x, y = points[index].astype(int)
        image[y - 2 : y + 3, x - 2 : x + 3] = colour
    (tmp_path / "images").mkdir(exist_ok=True)
    Image.fromarray(image).save(tmp_path / "images" / "1.png")
    keypoints = np.concatenate([points, np.full((17, 1), 2)], 1)
    default = [
        {
            "id": 7,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": [30, 20, 60, 120],
            "keypoints": keypoints.ravel().tolist(),
            "num_keypoints": 17,
        }
    ]
    data = {
        "images": [
            {"id": 1, "file_name": "1.png", "width": 120, "height": 160}
        ],
        "annotations": default if annotations is None else annotations,
        "categories": categories
        or [{"id": 1, "name": "person", "keypoints": COCO_NAMES}],
    }
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(data))
    return path, tmp_path / "images", keypoints


def dot_centre(crop, channel):
    """Centroid of the pixels where `channel` dominates (crop in [0,255])."""
    others = np.delete(crop, channel, axis=-1)
    mask = (crop[..., channel] > 80) & (others < 60).all(axis=-1)
    if mask.sum() == 0:
        return None
    weights = crop[..., channel] * mask
    ys, xs = np.mgrid[: crop.shape[0], : crop.shape[1]]
    return np.array(
        [
            (xs * weights).sum() / weights.sum(),
            (ys * weights).sum() / weights.sum(),
        ]
    )


def heatmap_peak(heatmap):
    y, x = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    return np.array([x, y], "float32")


def unnormalize(image):
    return (
        image * np.asarray([0.229, 0.224, 0.225]) + [0.485, 0.456, 0.406]
    ) * 255


AUGMENTATIONS = {
    "none": {},
    "scale": {"scale_factor": 0.3},
    "rotation": {"rotation_factor": 40.0, "rotation_probability": 1.0},
    "flip": {"flip_probability": 1.0},
    "half_body": {"half_body_probability": 1.0},
    "all": {
        "scale_factor": 0.3,
        "rotation_factor": 40.0,
        "rotation_probability": 1.0,
        "flip_probability": 0.5,
    },
}


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_keypoints_move_with_pixels(tmp_path, name):
    annotations, images, _ = write_synthetic(tmp_path)
    options = dict(
        scale_factor=0.0,
        rotation_probability=0.0,
        flip_probability=0.0,
        half_body_probability=0.0,
    )
    options.update(AUGMENTATIONS[name])
    dataset = coco_keypoints_dataset(
        annotations,
        images,
        input_size=INPUT_SIZE,
        heatmap_size=INPUT_SIZE,  # stride 1: compare at pixel precision
        sigma=1.5,
        training=True,
        batch_size=1,
        seed=3,
        repeat=True,
        **options,
    )
    checked = 0
    flips = []
    for image, heatmaps, weights in dataset.take(6):
        crop = unnormalize(image.numpy()[0])
        red, green, blue = (dot_centre(crop, c) for c in range(3))
        if red is None or green is None or blue is None:
            continue
        # Whether the crop is mirrored, from its pixels alone: a mirror
        # reverses the turn red -> green -> blue (clockwise in the image),
        # which scaling and rotation keep.
        (ax, ay), (bx, by) = green - red, blue - red
        flipped = bool(ax * by - ay * bx > 0)  # -815 in the original image
        flips.append(flipped)
        for joint in (LEFT, RIGHT):
            # Skip joints outside the crop (a low border target or none).
            if heatmaps.numpy()[0, ..., joint].max() < 128:
                continue
            # The left-shoulder channel marks the red dot, unless mirrored:
            # then the person's left shoulder is the green dot.
            expected = red if (joint == LEFT) != flipped else green
            peak = heatmap_peak(heatmaps.numpy()[0, ..., joint])
            np.testing.assert_allclose(peak, expected, atol=1.6)
            checked += 1
    assert checked >= 4
    if name == "flip":
        assert flips and all(flips)
    if name in ("none", "scale", "rotation"):
        assert not any(flips)


def test_no_augmentation_matches_geometry_exactly(tmp_path):
    annotations, images, keypoints = write_synthetic(tmp_path)
    dataset = coco_keypoints_dataset(
        annotations, images, input_size=INPUT_SIZE, heatmap_size=(32, 24),
        batch_size=1, include_metadata=True,
    )  # fmt: skip
    sample = next(iter(dataset))
    center, scale = geometry.box_to_center_scale(
        np.asarray([30, 20, 60, 120], "float32"), INPUT_SIZE
    )
    np.testing.assert_allclose(sample["center"][0], center)
    np.testing.assert_allclose(sample["scale"][0], scale)
    to_crop = geometry.image_to_crop_matrix(center, scale, INPUT_SIZE)
    to_image = geometry.crop_to_image_matrix(center, scale, INPUT_SIZE)
    round_trip = geometry.apply_affine(
        to_image, geometry.apply_affine(to_crop, keypoints[None, :, :2])
    )
    np.testing.assert_allclose(round_trip[0], keypoints[:, :2], atol=1e-4)


def test_seeded_dataset_is_deterministic(coco_mini):
    def first_batch():
        dataset = coco_keypoints_dataset(
            coco_mini["annotations"], coco_mini["images"],
            input_size=INPUT_SIZE, heatmap_size=(32, 24), training=True,
            batch_size=4, seed=11, half_body_probability=0.3,
        )  # fmt: skip
        return [tensor.numpy() for tensor in next(iter(dataset))]

    first, second = first_batch(), first_batch()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_half_body_probability_zero_never_applies(tmp_path):
    # The reference applied half-body to ~50% of people with probability 0.
    annotations, images, _ = write_synthetic(tmp_path)
    dataset = coco_keypoints_dataset(
        annotations, images, input_size=INPUT_SIZE, heatmap_size=(32, 24),
        training=True, batch_size=16, seed=0, repeat=True, scale_factor=0.0,
        rotation_probability=0.0, flip_probability=0.0,
        half_body_probability=0.0, include_metadata=True,
    )  # fmt: skip
    sample = next(iter(dataset))
    np.testing.assert_allclose(sample["scale"], sample["scale"][0])


def test_normalize_image_is_imagenet():
    white = normalize_image(np.full((1, 1, 3), 255, "uint8"))
    expected = (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(white[0, 0], expected, rtol=1e-6)


def annotation(**changes):
    record = {
        "id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
        "bbox": [30, 20, 60, 120], "keypoints": [50, 60, 2] * 17,
    }  # fmt: skip
    record.update(changes)
    return record


def test_malformed_inputs_are_skipped_and_counted(tmp_path):
    annotations, images, _ = write_synthetic(
        tmp_path,
        annotations=[
            annotation(id=1),
            annotation(id=2, iscrowd=1),
            annotation(id=3, keypoints=[0, 0, 0] * 17),
            annotation(id=4, bbox=[500, 500, 20, 20]),
            annotation(id=5, image_id=2),
        ],
    )
    data = json.loads(annotations.read_text())
    data["images"].append(
        {"id": 2, "file_name": "missing.jpg", "width": 10, "height": 10}
    )
    annotations.write_text(json.dumps(data))
    instances = load_coco_instances(annotations, images)
    assert instances.annotation_ids.tolist() == [1]
    assert dict(instances.skipped) == {
        "crowd annotation": 1,
        "no labelled keypoints": 1,
        "box outside the image": 1,
        "missing image file": 1,
        "image file missing or not listed": 1,
    }


def test_malformed_inputs_raise_with_context(tmp_path):
    annotations, images, _ = write_synthetic(
        tmp_path, categories=[{"id": 1, "name": "person"}]
    )
    with pytest.raises(ValueError, match="no category has a `keypoints`"):
        load_coco_instances(annotations, images)
    annotations, images, _ = write_synthetic(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_coco_instances(annotations, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="input_size"):
        coco_keypoints_dataset(
            annotations, images, input_size=(64,), heatmap_size=(32, 24)
        )
    with pytest.raises(ValueError, match="heatmap_size.*output_shape"):
        coco_keypoints_dataset(annotations, images, input_size=(64, 48))
    with pytest.raises(ValueError, match="Unknown sample options.*paddin"):
        coco_keypoints_dataset(
            annotations, images, input_size=(64, 48), heatmap_size=(32, 24),
            paddin=1.0,
        )  # fmt: skip


def test_layout_comes_from_the_json():
    layout = KeypointLayout.from_names(COCO_NAMES)
    assert layout.num_keypoints == 17
    assert (5, 6) in layout.flip_pairs and len(layout.flip_pairs) == 8
    assert layout.upper_body == tuple(range(11))
    assert layout.flip_permutation[:3] == [0, 2, 1]


def test_tfrecords_give_the_same_samples(coco_mini, tmp_path):
    from keras_evopose.data import tfrecord_keypoints_dataset
    from keras_evopose.data import write_tfrecords

    paths = write_tfrecords(
        coco_mini["annotations"],
        coco_mini["images"],
        str(tmp_path / "val"),
        examples_per_shard=32,
    )
    assert len(paths) == 3  # 80 people
    options = dict(input_size=INPUT_SIZE, heatmap_size=(32, 24), batch_size=80)
    from_json = next(
        iter(coco_keypoints_dataset(
            coco_mini["annotations"], coco_mini["images"], **options
        ))
    )  # fmt: skip
    from_records = next(
        iter(tfrecord_keypoints_dataset(str(tmp_path / "val-*"), **options))
    )
    for a, b in zip(from_json, from_records):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_corrupt_image_error_names_the_file(tmp_path):
    import tensorflow as tf

    annotations, images, _ = write_synthetic(tmp_path)
    (images / "1.png").write_bytes(b"this is not an image")
    dataset = coco_keypoints_dataset(
        annotations, images, input_size=INPUT_SIZE, heatmap_size=(32, 24),
        batch_size=1,
    )  # fmt: skip
    with pytest.raises(tf.errors.InvalidArgumentError, match="1.png"):
        next(iter(dataset))


def test_half_body_probability_is_a_probability(tmp_path):
    annotations, images, _ = write_synthetic(tmp_path)
    dataset = coco_keypoints_dataset(
        annotations, images, input_size=INPUT_SIZE, heatmap_size=(32, 24),
        training=True, batch_size=200, seed=0, repeat=True, scale_factor=0.0,
        rotation_probability=0.0, flip_probability=0.0,
        half_body_probability=0.3, include_metadata=True,
    )  # fmt: skip
    scales = next(iter(dataset))["scale"].numpy()
    applied = np.mean(~np.isclose(scales, scales.max()))
    assert 0.2 < applied < 0.4, applied


def test_mean_fill_is_the_reference_warp_of_the_normalized_image(tmp_path):
    # The reference normalizes, then warps with fill 0 (the mean colour).
    import tensorflow as tf

    annotations, images, _ = write_synthetic(tmp_path)
    pixels = np.asarray(Image.open(images / "1.png").convert("RGB"))
    # A box at the image corner, so half the crop lies outside the image.
    data = json.loads(annotations.read_text())
    data["annotations"][0]["bbox"] = [0, 0, 40, 60]
    annotations.write_text(json.dumps(data))
    crops = {}
    for fill in ("black", "mean"):
        sample = next(
            iter(coco_keypoints_dataset(
                annotations, images, input_size=INPUT_SIZE,
                heatmap_size=(32, 24), batch_size=1, include_metadata=True,
                fill=fill,
            ))
        )  # fmt: skip
        crops[fill] = sample["image"].numpy()[0]
    matrix = geometry.crop_to_image_matrix(
        sample["center"].numpy()[0], sample["scale"].numpy()[0], INPUT_SIZE
    )
    reference = tf.raw_ops.ImageProjectiveTransformV3(
        images=normalize_image(pixels)[None],
        transforms=np.concatenate([matrix.ravel(), [0, 0]])[None].astype(
            "float32"
        ),
        output_shape=INPUT_SIZE,
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0].numpy()
    # One uint8 level of the warped crop, in normalized units.
    np.testing.assert_allclose(crops["mean"], reference, atol=1 / 255 / 0.22)
    outside = np.all(reference == 0, axis=-1)
    assert outside.mean() > 0.2
    black = normalize_image(np.zeros((1, 3)))[0]
    np.testing.assert_allclose(
        crops["black"][outside], np.broadcast_to(black, (outside.sum(), 3))
    )


def test_dangling_ids_and_negative_boxes_are_named(tmp_path, caplog):
    annotations, images, _ = write_synthetic(
        tmp_path,
        annotations=[
            annotation(id=1),
            annotation(id=2, image_id=99),
            annotation(id=3, bbox=[30, 20, -60, 120]),
        ],
    )
    with caplog.at_level("WARNING", logger="keras_evopose.data"):
        instances = load_coco_instances(annotations, images)
    assert instances.annotation_ids.tolist() == [1]
    assert dict(instances.skipped) == {
        "annotation of an unlisted image": 1,
        "box of zero or negative size": 1,
    }
    text = caplog.text
    assert "annotation id 2 (image id 99) names image_id 99" in text
    assert "has bbox [30.0, 20.0, -60.0, 120.0]: its width and height" in text


def test_an_image_of_another_size_than_its_record_is_refused(tmp_path):
    from keras_evopose.data.image_files import environment_cause

    annotations, images, _ = write_synthetic(tmp_path)
    data = json.loads(annotations.read_text())
    # The file is 120x160 (width x height); the record says half that.
    data["images"][0].update(width=60, height=80)
    annotations.write_text(json.dumps(data))
    dataset = coco_keypoints_dataset(
        annotations,
        images,
        input_size=(64, 48),
        heatmap_size=(16, 12),
        batch_size=1,
    )
    with pytest.raises(Exception) as error:
        next(iter(dataset))
    assert environment_cause(error.value).startswith(
        f"{images / '1.png'} is 120x160 but its record in the annotations "
        "says 60x80 (width x height): the annotation coordinates would be in "
        "another frame"
    )
