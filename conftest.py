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
