"""Every subcommand with what a user mistypes: a misspelled preset, a
missing image folder, a file that is not an image (folder). Each is one
line naming the thing and exit status 2, and leaves nothing behind."""

import pytest

from keras_evopose.cli import main


def _argv(command, case, paths):
    """The command line of `command` with the mistake `case`."""
    preset = "smal" if case == "preset" else "test"
    images = {
        "preset": paths["images"],
        "missing_folder": paths["missing_folder"],
        "not_an_image": paths["text_file"],
    }[case]
    data = ["--annotations", paths["annotations"], "--images", images]
    out = paths["out"]
    if command == "info":
        return ["info", "smal"]
    if command == "search":
        return ["search", "--preset", preset, *data,
                "--output", f"{out}/search"]  # fmt: skip
    if command == "train":
        return ["train", "--preset", preset, *data,
                "--output", f"{out}/run"]  # fmt: skip
    if command == "evaluate":
        return ["evaluate", "--preset", preset, *data,
                "--results", f"{out}/results.json"]  # fmt: skip
    if command == "check-data":
        return ["check-data", "--preset", preset, *data]
    if command == "export":
        return ["export", "--preset", preset, *data,
                "--output", f"{out}/model.tflite"]  # fmt: skip
    if command == "predict":
        image = {
            "preset": paths["image"],
            "missing_folder": f"{paths['missing_folder']}/person.jpg",
            "not_an_image": paths["text_file"],
        }[case]
        return ["predict", image, "--preset", preset,
                "--output", f"{out}/pose.png"]  # fmt: skip
    raise AssertionError(command)


EXPECTED = {
    "preset": "'smal'",
    "missing_folder": "no_such_folder",
    "not_an_image": "not_coco.json",
}
COMMANDS = [
    "search", "train", "evaluate", "predict", "check-data", "export", "info"
]  # fmt: skip


@pytest.fixture
def paths(coco_mini, tmp_path):
    text_file = tmp_path / "not_coco.json"
    text_file.write_text('{"info": "not an image"}')
    out = tmp_path / "out"
    out.mkdir()
    return {
        "annotations": str(coco_mini["annotations"]),
        "images": str(coco_mini["images"]),
        "image": str(coco_mini["images"] / "000000000785.jpg"),
        "missing_folder": str(tmp_path / "no_such_folder"),
        "text_file": str(text_file),
        "out": str(out),
    }


@pytest.mark.parametrize("case", list(EXPECTED))
@pytest.mark.parametrize("command", COMMANDS)
def test_one_line_and_exit_2(command, case, paths, capsys, tmp_path):
    if command == "info" and case != "preset":
        pytest.skip("info takes a preset name only")
    argv = _argv(command, case, paths)
    status = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert status == 2, captured.err[-2000:]
    assert "Traceback" not in captured.err, captured.err[-2000:]
    # One line: the error (a preset's random-weights note may not come
    # first, since nothing is built for a refused command).
    assert len(err) == 1, err
    assert err[0].startswith(f"keras-evopose {command}: error: "), err
    assert EXPECTED[case] in err[0], err
    # Nothing half-written: no output file or folder appears.
    assert not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("flag", ["--annotations", "--val-annotations"])
def test_train_refused_on_its_data_leaves_no_run_folder(
    flag, paths, capsys, tmp_path
):
    # Found once the run folder is locked (the data is read then): the
    # folder, its lock and train_config.json go again.
    data = ["--annotations", paths["annotations"], "--images", paths["images"]]
    if flag == "--annotations":
        data[1] = paths["text_file"]
    else:
        data += [flag, paths["text_file"], "--val-images", paths["images"]]
    run = tmp_path / "out" / "run"
    status = main(["train", "--preset", "test", *data, "--output", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1 and "not_coco.json" in err[0], err
    assert not list((tmp_path / "out").iterdir())
    # What an earlier run left (it never finished an epoch) stays as it
    # was: only what the refused command made goes.
    (run / "checkpoint").mkdir(parents=True)
    (run / "train_config.json").write_text('{"epochs": 3}')
    (run / "keras-evopose.lock").write_text("")
    status = main(["train", "--preset", "test", *data, "--output", str(run)])
    assert status == 2
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint",
        "keras-evopose.lock",
        "train_config.json",
    ]
    assert (run / "train_config.json").read_text() == '{"epochs": 3}'
