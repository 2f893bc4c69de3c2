"""A damaged annotation file or image is one line naming it, exit 2."""

import shutil

import pytest

from keras_evopose.cli import main


@pytest.fixture
def damaged(tmp_path, coco_mini):
    images = tmp_path / "images"
    shutil.copytree(coco_mini["images"], images)
    empty_image = images / sorted(p.name for p in images.iterdir())[0]
    empty_image.write_bytes(b"")
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "cut.json").write_text('{"images": [')
    return {
        "images": str(images),
        "empty_image": empty_image,
        "annotations": str(coco_mini["annotations"]),
        "empty": tmp_path / "empty.json",
        "cut": tmp_path / "cut.json",
    }


def _one_line(capsys, command):
    lines = capsys.readouterr().err.strip().splitlines()
    lines = [line for line in lines if not line.startswith("note: ")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"keras-evopose {command}: error: ")
    return lines[0]


def test_broken_annotation_json(damaged, capsys, coco_mini):
    images = str(coco_mini["images"])
    for name, what in (("empty", "is empty"), ("cut", "is not valid JSON")):
        for command in ("check-data", "evaluate"):
            argv = [command, "--annotations", str(damaged[name])]
            argv += ["--images", images]
            if command == "evaluate":
                argv += ["--preset", "test"]
            assert main(argv) == 2
            line = _one_line(capsys, command)
            assert f"{damaged[name]} {what}" in line


def test_an_empty_image_is_named(damaged, capsys, tmp_path):
    argv = ["evaluate", "--preset", "test", "--annotations"]
    argv += [damaged["annotations"], "--images", damaged["images"]]
    assert main(argv) == 2
    line = _one_line(capsys, "evaluate")
    assert line.endswith(
        f"{damaged['empty_image']}: Not a JPEG/PNG/GIF/BMP image; fix or "
        "remove the file"
    )


def test_check_data_reports_an_image_of_another_size(tmp_path, capsys):
    import json

    from conftest import ROOT

    root = ROOT / "data" / "coco_kpt_mini"
    original = root / "annotations" / "person_keypoints_val2017_mini.json"
    data = json.loads(original.read_text())
    image = data["images"][0]
    real = (image["width"], image["height"])
    image["width"] *= 2  # (halved, its people could fall outside)
    annotations = tmp_path / "resized.json"
    annotations.write_text(json.dumps(data))
    argv = ["check-data", "--annotations", str(annotations)]
    assert main([*argv, "--images", str(root / "val2017")]) == 1
    out = capsys.readouterr().out
    assert (
        f"{image['file_name']}: is {real[0]}x{real[1]} but its record in the "
        f"annotations says {image['width']}x{real[1]} (width x height)"
    ) in out
