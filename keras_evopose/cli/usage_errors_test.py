"""Every user error of the command line is one line naming the file or
flag and the fix: exit status 2, no traceback."""

import json

import pytest

from keras_evopose.cli import main


@pytest.fixture
def paths(coco_mini, tmp_path):
    not_coco = tmp_path / "not_coco.json"
    not_coco.write_text(json.dumps({"info": "not a COCO file"}))
    not_keras = tmp_path / "model.keras"
    not_keras.write_text("not a zip file")
    return {
        "annotations": str(coco_mini["annotations"]),
        "images": str(coco_mini["images"]),
        "image": str(coco_mini["images"] / "000000000785.jpg"),
        "missing": str(tmp_path / "missing.json"),
        "not_coco": str(not_coco),
        "not_keras": str(not_keras),
        "text_file": str(not_coco),
    }


def one_line_error(capsys, argv, *expected):
    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    last = err.splitlines()[-1]
    assert "Traceback" not in err
    assert last.startswith(f"keras-evopose {argv[0]}: error: "), last
    for text in expected:
        assert text in last, last
    return last


def test_evaluate_and_predict_model_and_path_errors(paths, capsys):
    base = ["--annotations", paths["annotations"], "--images", paths["images"]]
    one_line_error(
        capsys,
        ["evaluate", "--model", paths["missing"], *base],
        "--model",
        "missing.json",
        "no such file",
    )
    one_line_error(
        capsys,
        ["evaluate", "--model", paths["text_file"], *base],
        "--model",
        ".keras file",
        ".tflite",
    )
    one_line_error(
        capsys,
        ["evaluate", "--model", paths["not_keras"], *base],
        "cannot be loaded as a Keras model",
    )
    one_line_error(
        capsys,
        ["evaluate", "--preset", "test", "--annotations", paths["missing"],
         "--images", paths["images"]],
        "--annotations",
        "no such file",
    )  # fmt: skip
    one_line_error(
        capsys,
        ["evaluate", "--preset", "test", "--annotations", paths["annotations"],
         "--images", paths["missing"]],
        "--images",
        "no such folder",
    )  # fmt: skip
    one_line_error(
        capsys,
        ["export", "--model", "small_int8.tflite"],
        "already an exported file",
    )


def test_predict_rejects_boxes_outside_the_image(paths, capsys):
    one_line_error(
        capsys,
        ["predict", paths["image"], "--boxes", "10000,10000,50,50",
         "--preset", "test"],
        "--boxes 10000,10000,50,50 lies outside the image",
        "640x425",
    )  # fmt: skip
    one_line_error(
        capsys,
        ["predict", paths["image"], "--boxes", "10,10,50,50",
         "--preset", "test", "--annotations", paths["not_coco"]],
        "--annotations",
        "'keypoints'",
    )  # fmt: skip
    one_line_error(
        capsys,
        ["predict", paths["missing"], "--boxes", "10,10,50,50",
         "--preset", "test"],
        "missing.json",
    )  # fmt: skip


def test_input_sizes_are_checked_against_the_stride(paths, capsys):
    one_line_error(
        capsys,
        ["train", "--preset", "test", "--input-size", "10x10",
         "--annotations", paths["annotations"], "--images", paths["images"],
         "--output", "never_written"],
        "--input-size 10x10",
        "multiples of 16",
        "nearest valid sizes: 16x16",
    )  # fmt: skip
    one_line_error(
        capsys,
        ["check-data", "--preset", "small", "--input-size", "250x190",
         "--annotations", paths["annotations"], "--images", paths["images"]],
        "--input-size 250x190",
        "256x192",
    )  # fmt: skip
    one_line_error(
        capsys,
        ["train", "--preset", "tiny", "--input-size", "64x48",
         "--annotations", paths["annotations"], "--images", paths["images"],
         "--output", "never_written"],
        "--preset 'tiny': unknown preset",
    )  # fmt: skip


def test_values_out_of_range(paths, capsys):
    base = ["--annotations", paths["annotations"], "--images", paths["images"]]
    one_line_error(
        capsys,
        ["evaluate", "--preset", "test", *base, "--oks-nms", "7"],
        "--oks-nms",
        "(0, 1]",
    )
    one_line_error(
        capsys,
        ["predict", paths["image"], "--preset", "test", "--min-score", "nan"],
        "--min-score must be a finite number",
    )


def test_wrong_kind_of_json_is_one_line(paths, coco_mini, capsys):
    # A COCO keypoints JSON given as detections, a JPEG as the skeleton.
    one_line_error(
        capsys,
        ["check-data", "--preset", "test", "--annotations",
         paths["annotations"], "--images", paths["images"],
         "--detections", paths["annotations"]],
        "expected a COCO results list",
        "pass it as the annotations",
    )  # fmt: skip
    status = main(
        ["predict", paths["image"], "--preset", "test",
         "--annotations", paths["image"]]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err  # no note before the error
    assert "000000000785.jpg" in err[0] and "JSON" in err[0], err


@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_annotations_that_are_not_json_are_the_only_line(
    command, paths, capsys, tmp_path
):
    out = tmp_path / "out"
    out.mkdir()
    status = main(
        [command, "--preset", "test", "--annotations", paths["image"],
         "--images", paths["images"]]
        + (["--output", str(out / "x.tflite")] if command == "export"
           else [])
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err  # no random-weights note
    assert "000000000785.jpg" in err[0] and "JSON" in err[0], err
    assert not list(out.iterdir())
