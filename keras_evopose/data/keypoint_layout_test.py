import json

import pytest

from keras_evopose.data.keypoint_layout import COCO_OKS_SIGMAS
from keras_evopose.data.keypoint_layout import KeypointLayout
from keras_evopose.data.keypoint_layout import KeypointLayoutError
from keras_evopose.data.keypoint_layout import mirror_name


@pytest.mark.parametrize(
    "names",
    [
        ["left_knee", "nose", "right_knee"],
        ["l_knee", "nose", "r_knee"],
        ["LKnee", "nose", "RKnee"],
        ["knee_l", "nose", "knee_r"],
        ["leftknee", "nose", "rightknee"],
    ],
)
def test_flip_pairs_are_inferred_from_side_words(names):
    layout = KeypointLayout.from_names(names)
    assert layout.flip_pairs == ((0, 2),)
    assert layout.flip_permutation == [2, 1, 0]
    layout.check_flip()


def test_mirror_name_keeps_case_and_ignores_plain_names():
    assert mirror_name("LShoulder") == "RShoulder"
    assert mirror_name("Left_Hand") == "Right_Hand"
    assert mirror_name("nose") is None
    assert mirror_name("lip") is None


def test_coco_names_get_coco_sigmas_and_upper_body_in_any_spelling():
    layout = KeypointLayout.from_names(["nose", "l_shoulder", "RHip"])
    assert layout.oks_sigmas == (
        COCO_OKS_SIGMAS["nose"],
        COCO_OKS_SIGMAS["left_shoulder"],
        COCO_OKS_SIGMAS["right_hip"],
    )
    assert layout.upper_body == (0, 1)
    assert KeypointLayout.from_names(["nose", "tail"]).oks_sigmas is None


def test_category_fields_override_the_inference():
    category = {
        "keypoints": ["head", "paw_a", "paw_b", "tail"],
        "skeleton": [[1, 4]],
        "flip_pairs": [["paw_a", "paw_b"]],
        "oks_sigmas": [0.05, 0.06, 0.06, 0.1],
        "upper_body": ["head", "paw_a", "paw_b"],
    }
    layout = KeypointLayout.from_category(category)
    assert layout.flip_pairs == ((1, 2),)
    assert layout.skeleton == ((0, 3),)
    assert layout.oks_sigmas == (0.05, 0.06, 0.06, 0.1)
    assert layout.upper_body == (0, 1, 2)
    with pytest.raises(ValueError, match="'paw_c', which is not a keypoint"):
        KeypointLayout.from_category(
            {**category, "flip_pairs": [["paw_a", "paw_c"]]}
        )
    with pytest.raises(ValueError, match="`oks_sigmas` must hold 4"):
        KeypointLayout.from_category({**category, "oks_sigmas": [0.1]})


def test_flip_of_a_layout_missing_its_pairs_names_the_joints_and_fix():
    layout = KeypointLayout.from_category(
        {"keypoints": ["nose", "l_eye", "r_eye"], "flip_pairs": []}
    )
    assert layout.missing_flip_pairs == (("l_eye", "r_eye"),)
    with pytest.raises(KeypointLayoutError) as error:
        layout.check_flip("flip augmentation")
    message = str(error.value)
    assert "l_eye/r_eye" in message and "flip_pairs" in message
    assert "--keypoint-layout" in message and "\n" not in message
    # A side word without its mirror is no pair (e.g. a vertebra "L5").
    KeypointLayout.from_names(["L5", "nose"]).check_flip()


def test_missing_oks_sigmas_name_the_field_and_the_flag():
    layout = KeypointLayout.from_names(["nose", "neck"])
    with pytest.raises(KeypointLayoutError, match="neck") as error:
        layout.check_oks_sigmas()
    assert '"oks_sigmas"' in str(error.value)
    assert "--keypoint-layout" in str(error.value)


def test_config_round_trip_and_json_file(tmp_path):
    layout = KeypointLayout.coco_person()
    config = layout.get_config()
    assert json.loads(json.dumps(config)) == config
    assert KeypointLayout.from_config(config) == layout
    path = tmp_path / "layout.json"
    path.write_text(json.dumps({"keypoints": ["nose", "l_eye", "r_eye"]}))
    assert KeypointLayout.from_json(path).flip_pairs == ((1, 2),)
    path.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        KeypointLayout.from_json(path)
