"""Test-wide settings: Keras config inside the repo, quiet TF, fixed seeds."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
# Keras writes keras.json on first import: keep it inside the repo.
os.environ.setdefault("KERAS_HOME", str(ROOT / ".keras_home"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def coco_mini():
    """Paths of the bundled real COCO val2017 keypoint subset."""
    root = ROOT / "data" / "coco_kpt_mini"
    return {
        "root": root,
        "annotations": root
        / "annotations"
        / "person_keypoints_val2017_mini.json",
        "images": root / "val2017",
        "detections": root
        / "original"
        / "mmpose"
        / "test_coco_det_AP_H_56.json",
    }


@pytest.fixture
def coco_train():
    """Paths of the bundled real COCO train2017 keypoint subset.

    No image (and so no person) of it is in `coco_mini` or `coco_extra`:
    train on it, validate on `coco_mini` (people never seen).
    """
    root = ROOT / "data" / "coco_kpt_mini"
    return {
        "root": root,
        "annotations": root
        / "annotations"
        / "person_keypoints_train2017_mini.json",
        "images": root / "train2017",
    }


@pytest.fixture
def coco_extra():
    """Paths of the bundled 71 more COCO images (191 people), disjoint
    from `coco_mini` and `coco_train`."""
    root = ROOT / "data" / "coco_kpt_extra"
    return {
        "root": root,
        "annotations": root / "annotations" / "person_keypoints_extra.json",
        "images": root / "images",
    }
