import json

import numpy as np
import pytest

from keras_evopose.data import coco_keypoints_dataset
from keras_evopose.data import load_coco_instances
from keras_evopose.metrics import ceiling_ap
from keras_evopose.metrics import coco_keypoint_ap
from keras_evopose.metrics import coco_results
from keras_evopose.metrics import decode_heatmaps
from keras_evopose.metrics import flip_back


def test_ceiling_ap_with_ground_truth_boxes(coco_mini):
    # The acceptance bar: GT keypoints -> crop -> heatmap -> decode -> AP.
    stats = ceiling_ap(
        coco_mini["annotations"],
        coco_mini["images"],
        input_size=(256, 192),
        heatmap_size=(64, 48),
    )
    assert stats["ap"] >= 0.97, stats
    assert stats["ap50"] == 1.0


def test_ceiling_ap_with_detector_boxes(coco_mini):
    stats = ceiling_ap(
        coco_mini["annotations"],
        coco_mini["images"],
        input_size=(256, 192),
        heatmap_size=(64, 48),
        detections=coco_mini["detections"],
    )
    assert stats["ap"] >= 0.97, stats


def test_ground_truth_results_score_one(coco_mini):
    instances = load_coco_instances(
        coco_mini["annotations"], coco_mini["images"]
    )
    keypoints = instances.keypoints.copy()
    keypoints[..., 2] = 1.0
    results = coco_results(instances.image_ids, keypoints, instances.scores, 1)
    stats = coco_keypoint_ap(coco_mini["annotations"], results)
    np.testing.assert_allclose(stats["ap"], 1.0)


def test_flip_back_needs_no_shift(coco_mini):
    # Targets of the mirrored crop, flipped back, equal the plain targets.
    options = dict(
        input_size=(64, 48), heatmap_size=(32, 24), batch_size=16,
        training=True, seed=0, scale_factor=0.0, rotation_probability=0.0,
        half_body_probability=0.0,
    )  # fmt: skip
    plain = next(
        iter(coco_keypoints_dataset(
            coco_mini["annotations"], coco_mini["images"],
            flip_probability=0.0, **options,
        ))
    )  # fmt: skip
    mirrored = next(
        iter(coco_keypoints_dataset(
            coco_mini["annotations"], coco_mini["images"],
            flip_probability=1.0, **options,
        ))
    )  # fmt: skip
    # Equal up to one uint8 level (the warp rounds to uint8).
    np.testing.assert_allclose(
        mirrored[0].numpy()[:, :, ::-1], plain[0].numpy(), atol=0.02
    )
    permutation = load_coco_instances(
        coco_mini["annotations"], coco_mini["images"]
    ).layout.flip_permutation
    np.testing.assert_allclose(
        flip_back(mirrored[1].numpy(), permutation),
        plain[1].numpy(),
        atol=1e-2,
    )


@pytest.mark.parametrize("refinement", ["quarter_offset", "dark"])
def test_decoding_recovers_subpixel_peaks(refinement):
    rng = np.random.default_rng(0)
    true = rng.uniform(4, 20, size=(2, 3, 2))
    ys, xs = np.mgrid[:24, :24]
    heatmaps = np.exp(
        -(
            (xs[None, :, :, None] - true[:, None, None, :, 0]) ** 2
            + (ys[None, :, :, None] - true[:, None, None, :, 1]) ** 2
        )
        / (2 * 1.5**2)
    ) * 255  # fmt: skip
    coordinates, scores = decode_heatmaps(heatmaps, refinement, sigma=1.5)
    error = np.abs(coordinates - true).max()
    assert error < (0.3 if refinement == "quarter_offset" else 0.05)
    assert np.all(scores > 0.75)


def test_bad_inputs_raise(tmp_path):
    with pytest.raises(ValueError, match="refinement"):
        decode_heatmaps(np.zeros((1, 4, 4, 1)), "argmax")
    with pytest.raises(ValueError, match="shape"):
        decode_heatmaps(np.zeros((4, 4, 1)))
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(ValueError, match="empty"):
        coco_keypoint_ap(path, [])


def test_oks_nms_drops_duplicates_of_one_person():
    from keras_evopose.metrics import oks_nms

    rng = np.random.default_rng(0)
    person = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], 1)
    other = person + [300, 0, 0]
    keypoints = np.stack([person, person + [0.5, 0.5, 0], other, person])
    kept = oks_nms(
        image_ids=[1, 1, 1, 2],
        keypoints=keypoints,
        scores=[0.9, 0.95, 0.5, 0.1],
        areas=[1e4] * 4,
        oks_sigmas=[0.05] * 17,
    )
    # The 0.9 copy of the 0.95 person goes; another image is untouched.
    assert kept.tolist() == [1, 2, 3]
