"""`keras-evopose predict`: where its boxes come from, what it refuses,
and a drawing whose size does not grow with the photo."""

import json

import numpy as np
import pytest
from PIL import Image

from keras_evopose.cli import main
from keras_evopose.cli import predict

IMAGE = "000000000785.jpg"  # 640x425, one annotated person


def _run(capsys, *argv):
    status = main(["predict", *argv, "--preset", "test", "--json"])
    captured = capsys.readouterr()
    return status, captured


def test_box_sources(coco_mini, tmp_path, capsys):
    image = str(coco_mini["images"] / IMAGE)
    output = str(tmp_path / "pose.png")
    # Neither --boxes nor --detections: the whole image, said so.
    status, captured = _run(capsys, image, "--output", output)
    assert status == 0, captured.err
    assert "one box over the whole image (640x425)" in captured.err
    result = json.loads(captured.out.splitlines()[-1])
    assert result["boxes"] == [[0.0, 0.0, 640.0, 425.0]]
    # The annotated box of a COCO keypoints JSON (image id from the name).
    status, captured = _run(
        capsys, image, "--detections", str(coco_mini["annotations"]),
        "--output", output,
    )  # fmt: skip
    assert status == 0, captured.err
    assert "1 annotated box(es) of image 785" in captured.err
    result = json.loads(captured.out.splitlines()[-1])
    assert result["boxes"] == [[280.79, 44.73, 218.7, 346.68]]
    # A COCO results file: the boxes scoring >= --score-threshold.
    detections = str(coco_mini["detections"])
    for threshold, count in (("0.5", 1), ("0.05", 3)):
        status, captured = _run(
            capsys, image, "--detections", detections,
            "--score-threshold", threshold, "--output", output,
        )  # fmt: skip
        assert status == 0, captured.err
        result = json.loads(captured.out.splitlines()[-1])
        assert len(result["boxes"]) == len(result["keypoints"]) == count
    status, captured = _run(
        capsys, image, "--detections", detections,
        "--score-threshold", "1.5", "--output", output,
    )  # fmt: skip
    assert status == 2
    assert "none scoring >= --score-threshold 1.5" in captured.err
    assert "lower --score-threshold" in captured.err


def test_no_flip_changes_the_prediction(coco_mini, tmp_path, capsys):
    # The flip test averages with the mirrored crop; --no-flip does not.
    image = str(coco_mini["images"] / IMAGE)
    predictions = []
    for flags in ([], ["--no-flip"]):
        status, captured = _run(
            capsys, image, "--boxes", "280,44,218,346",
            "--output", str(tmp_path / "pose.png"), *flags,
        )  # fmt: skip
        assert status == 0, captured.err
        points = json.loads(captured.out.splitlines()[-1])["keypoints"]
        predictions.append(np.asarray(points))
    assert not np.allclose(predictions[0], predictions[1])


@pytest.mark.parametrize(
    "box", ["nan,0,10,10", "0,0,inf,10", "0,-inf,10,10", "1,2,3"]
)
def test_non_finite_boxes_are_refused(coco_mini, tmp_path, capsys, box):
    image = str(coco_mini["images"] / IMAGE)
    status, captured = _run(
        capsys, image, "--boxes", box, "--output", str(tmp_path / "p.png")
    )
    assert status == 2
    assert "finite numbers" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert not (tmp_path / "p.png").exists()


def test_refuses_to_overwrite_its_input_and_names_a_folder(
    coco_mini, tmp_path, capsys
):
    image = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), "gray").save(image)
    before = image.read_bytes()
    status, captured = _run(capsys, str(image), "--output", str(image))
    assert status == 2
    assert "is the input" in captured.err
    assert image.read_bytes() == before
    status, captured = _run(capsys, str(tmp_path))
    assert status == 2
    assert "is a folder" in captured.err
    status, captured = _run(
        capsys, str(image), "--output", str(tmp_path / "no" / "p.png")
    )
    assert status == 2
    assert "does not exist" in captured.err


def test_a_large_photo_is_drawn_at_a_bounded_size(tmp_path, capsys):
    # 6000x4500: the drawing is MAX_DRAWING_SIDE on its longest side and
    # the keypoints land in its frame (scaled with the image).
    photo = tmp_path / "large.jpg"
    Image.new("RGB", (6000, 4500), "gray").save(photo, quality=50)
    output = tmp_path / "large_pose.png"
    status, captured = _run(
        capsys, str(photo), "--boxes", "1000,500,3000,3500",
        "--output", str(output),
    )  # fmt: skip
    assert status == 0, captured.err
    with Image.open(output) as drawing:
        assert max(drawing.size) == predict.MAX_DRAWING_SIDE
        assert drawing.size == (2000, 1500)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
