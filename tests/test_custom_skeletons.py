"""Any skeleton through the command line: two keypoint layouts derived
from the bundled COCO subset pass check-data, train, evaluate, predict
and export; the three layout mistakes are one line and exit status 2."""

import json

import pytest

from keras_evopose.cli import main
from keras_evopose.data.keypoint_layout import COCO_OKS_SIGMAS

# Module-scoped fixtures: the whole file on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_custom_skeletons")

FACE = ("left_eye", "right_eye", "left_ear", "right_ear")
# Synthetic joints: the midpoint of two COCO joints each.
MIDPOINTS = {
    "neck": ("left_shoulder", "right_shoulder"),
    "pelvis": ("left_hip", "right_hip"),
    "left_thigh": ("left_hip", "left_knee"),
    "right_thigh": ("right_hip", "right_knee"),
}
MIDPOINT_SIGMAS = {"neck": 0.079, "pelvis": 0.107, "left_thigh": 0.097}
MIDPOINT_SIGMAS["right_thigh"] = MIDPOINT_SIGMAS["left_thigh"]


def short_name(name):
    """`left_knee` -> `l_knee`, `right_knee` -> `r_knee`."""
    for side in ("left", "right"):
        if name.startswith(side + "_"):
            return side[0] + name[len(side) :]
    return name


def derive(source, keep, add=(), names=None):
    """A copy of the COCO JSON `source` whose keypoints are those of
    `keep` (COCO names) plus the `add` midpoints, named by `names`."""
    data = json.loads(source.read_text())
    category = data["categories"][0]
    coco = category["keypoints"]
    joints = [*keep, *add]
    names = names or joints
    for record in data["annotations"]:
        points = record["keypoints"]
        point = {n: points[3 * i : 3 * i + 3] for i, n in enumerate(coco)}
        for name in add:
            a, b = (point[joint] for joint in MIDPOINTS[name])
            labelled = a[2] > 0 and b[2] > 0
            point[name] = (
                [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, min(a[2], b[2])]
                if labelled
                else [0, 0, 0]
            )
        record["keypoints"] = [v for joint in joints for v in point[joint]]
        record["num_keypoints"] = sum(point[j][2] > 0 for j in joints)
    index = {joint: position + 1 for position, joint in enumerate(joints)}
    category["keypoints"] = list(names)
    category["skeleton"] = [
        [index[coco[a - 1]], index[coco[b - 1]]]
        for a, b in category["skeleton"]
        if coco[a - 1] in index and coco[b - 1] in index
    ]
    return data, category


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """The two layouts' annotation files and three faulty layout files."""
    from conftest import ROOT

    source = ROOT / "data/coco_kpt_mini/annotations"
    source = source / "person_keypoints_val2017_mini.json"
    folder = tmp_path_factory.mktemp("layouts")
    coco = json.loads(source.read_text())["categories"][0]["keypoints"]
    body = [name for name in coco if name not in FACE]

    # (a) 13 joints, no eyes or ears, `l_`/`r_` names: flip pairs and
    # COCO sigmas are inferred from the names.
    data, category = derive(source, body, names=map(short_name, body))
    paths = {"body13": folder / "body13.json"}
    paths["body13"].write_text(json.dumps(data))
    # Its layout as a --keypoint-layout file, the pairs spelled out.
    pairs = [[a, "r" + a[1:]] for a in category["keypoints"] if a[:2] == "l_"]
    paths["body13_layout"] = folder / "body13_layout.json"
    paths["body13_layout"].write_text(
        json.dumps({**category, "flip_pairs": pairs})
    )
    # The same with flip pairs given but incomplete.
    paths["body13_pairs"] = folder / "body13_pairs.json"
    paths["body13_pairs"].write_text(
        json.dumps({**category, "flip_pairs": [["l_shoulder", "r_shoulder"]]})
    )

    # (b) 17 + 4 midpoints, flip pairs and OKS sigmas in the category.
    data, category = derive(source, coco, add=list(MIDPOINTS))
    joints = category["keypoints"]
    category["flip_pairs"] = [
        [name, "right_" + name[len("left_") :]]
        for name in joints
        if name.startswith("left_")
    ]
    sigmas = {**COCO_OKS_SIGMAS, **MIDPOINT_SIGMAS}
    category["oks_sigmas"] = [sigmas[name] for name in joints]
    paths["coco21"] = folder / "coco21.json"
    paths["coco21"].write_text(json.dumps(data))
    # The same without the midpoints' sigmas (COCO has none for them).
    paths["coco21_no_sigmas"] = folder / "coco21_no_sigmas.json"
    del category["oks_sigmas"]
    paths["coco21_no_sigmas"].write_text(json.dumps(data))
    return paths


def run(capsys, *argv):
    """`keras-evopose argv...`: (exit status, stdout, stderr)."""
    status = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.slow
@pytest.mark.parametrize(
    "layout, num_keypoints, num_pairs", [("body13", 13, 6), ("coco21", 21, 9)]
)
def test_every_command_on_a_custom_layout(
    layout, num_keypoints, num_pairs, layouts, coco_mini, tmp_path, capsys
):
    # body13 also trains from a --keypoint-layout file and resumes.
    layout_flag = ()
    if layout == "body13":
        layout_flag = ("--keypoint-layout", layouts["body13_layout"])
    annotations = layouts[layout]
    images = coco_mini["images"]
    data = ("--annotations", annotations, "--images", images)
    status, out, err = run(
        capsys, "check-data", *data, "--preset", "test", "--json"
    )
    assert status == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["num_keypoints"] == num_keypoints
    assert len(report["flip_pairs"]) == num_pairs
    assert report["missing_flip_pairs"] == []
    assert report["ceiling_ap"]["ground_truth_boxes"]["ap"] > 0.8

    # Flip augmentation on (the default): the layout's pairs are used.
    status, out, err = run(
        capsys, "train", "--preset", "test", *data, "--epochs", "1",
        "--steps-per-epoch", "1", "--batch-size", "4", *layout_flag,
        "--output", tmp_path / "run", "--verbose", "0",
    )  # fmt: skip
    assert status == 0, err
    model = tmp_path / "run" / "best.keras"
    import keras

    if layout_flag:
        # One more epoch: --resume reads the layout file from the run.
        settings = tmp_path / "run" / "train_config.json"
        config = json.loads(settings.read_text())
        assert config["keypoint_layout"] == str(layouts["body13_layout"])
        settings.write_text(json.dumps({**config, "epochs": 2}))
        status, out, err = run(
            capsys, "train", "--resume", tmp_path / "run", "--verbose", "0"
        )
        assert status == 0, err

    trained = keras.saving.load_model(model, compile=False)
    assert trained.keypoint_layout.num_keypoints == num_keypoints
    assert len(trained.keypoint_layout.flip_pairs) == num_pairs

    # The flip test (the default) with the model's own flip pairs.
    status, out, err = run(capsys, "evaluate", "--model", model, *data)
    assert status == 0, err
    assert "ground-truth boxes" in out and "ap50" in out

    status, out, err = run(
        capsys, "predict", images / "000000000785.jpg", "--boxes",
        "277,46,225,334", "--model", model, "--output", tmp_path / "p.png",
        "--json",
    )  # fmt: skip
    assert status == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert len(result["keypoints"][0]) == num_keypoints

    exported = tmp_path / "model.tflite"
    status, out, err = run(
        capsys, "export", "--model", model, *data, "--output", exported,
        "--json",
    )  # fmt: skip
    assert status == 0, err
    # Scored from the .tflite alone: the contract travels beside it.
    status, out, err = run(
        capsys, "evaluate", "--model", exported, *data, "--json"
    )
    assert status == 0, err
    assert 0 <= json.loads(out.strip().splitlines()[-1])["ap"] <= 1


def one_line_error(status, err, *expected):
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert len(lines) == 1, err
    for text in expected:
        assert text in lines[0], lines[0]


def untrained_model(layout_file, path):
    """A `test` network for the layout in `layout_file`, saved at `path`
    (as `train --no-augment` would leave one: no flip checked)."""
    from keras_evopose.data import KeypointLayout
    from keras_evopose.models import EvoPose2D

    layout = KeypointLayout.from_json(layout_file)
    EvoPose2D.from_preset("test", keypoint_layout=layout).save(path)
    return path


def test_layout_mistakes_are_one_line(layouts, coco_mini, tmp_path, capsys):
    images = coco_mini["images"]
    body13 = ("--annotations", layouts["body13"], "--images", images)
    # Flip augmentation with pairs missing: refused before any training.
    status, _, err = run(
        capsys, "train", "--preset", "test", *body13, "--epochs", "1",
        "--steps-per-epoch", "1", "--batch-size", "4",
        "--keypoint-layout", layouts["body13_pairs"],
        "--output", tmp_path / "run",
    )  # fmt: skip
    one_line_error(status, err, "flip augmentation", "l_elbow/r_elbow")
    one_line_error(status, err, "flip_pairs", "--keypoint-layout")
    # check-data shows it (it flips nothing itself).
    status, out, err = run(
        capsys, "check-data", "--preset", "test", *body13,
        "--keypoint-layout", layouts["body13_pairs"], "--json",
    )  # fmt: skip
    assert status == 0, err
    missing = json.loads(out.strip().splitlines()[-1])["missing_flip_pairs"]
    assert ["l_elbow", "r_elbow"] in missing and len(missing) == 5

    # The flip test of a model whose layout misses pairs.
    model = untrained_model(layouts["body13_pairs"], tmp_path / "m13.keras")
    for command in ("evaluate", "predict"):
        where = body13 if command == "evaluate" else (
            images / "000000000785.jpg", "--boxes", "277,46,225,334",
            "--output", tmp_path / "p.png",
        )  # fmt: skip
        status, _, err = run(capsys, command, "--model", model, *where)
        one_line_error(status, err, "the flip test", "l_hip/r_hip")
        one_line_error(status, err, "--no-flip")

    # No OKS sigmas for the midpoints: the ceiling and evaluation refuse.
    coco21 = ("--annotations", layouts["coco21_no_sigmas"], "--images", images)
    model = untrained_model(layouts["coco21_no_sigmas"], tmp_path / "m.keras")
    for network in (("--preset", "test"), ("--model", model)):
        command = "check-data" if network[0] == "--preset" else "evaluate"
        status, _, err = run(capsys, command, *network, *coco21)
        one_line_error(status, err, '"oks_sigmas"', "--keypoint-layout")
        one_line_error(status, err, "neck, pelvis, left_thigh, right_thigh")


def test_validation_without_sigmas_is_refused_before_training(
    layouts, coco_mini, tmp_path, capsys
):
    coco21 = ("--annotations", layouts["coco21_no_sigmas"])
    images = ("--images", coco_mini["images"])
    status, _, err = run(
        capsys, "train", "--preset", "test", *coco21, *images,
        "--val-annotations", layouts["coco21_no_sigmas"],
        "--val-images", coco_mini["images"], "--epochs", "1",
        "--output", tmp_path / "run",
    )  # fmt: skip
    one_line_error(status, err, '"oks_sigmas"', "neck")
    assert not (tmp_path / "run" / "last.keras").exists()
