"""`keras-evopose train`: refusals before any work, divergence, networks."""

import json
import os

import pytest

from keras_evopose.cli import main


def _paths(coco_mini):
    return [
        "--annotations", str(coco_mini["annotations"]),
        "--images", str(coco_mini["images"]),
    ]  # fmt: skip


TINY = ["--epochs", "2", "--steps-per-epoch", "1", "--batch-size", "4"]


def _one_line(capsys, argv, *expected, status=2):
    try:
        assert main(argv) == status
    except SystemExit as exit:  # argparse: usage, then one error line
        assert exit.code == status
        error = capsys.readouterr().err.strip().splitlines()[-1]
    else:
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1, error
    for text in expected:
        assert text in error, error
    return error


def test_bad_settings_are_refused_before_any_work(coco_mini, tmp_path, capsys):
    data = _paths(coco_mini)
    run = str(tmp_path / "run")
    for rate in ("0", "-1", "nan"):
        _one_line(
            capsys,
            ["train", "--preset", "test", *data, "--output", run,
             "--base-learning-rate", rate],
            "--base-learning-rate must be finite and > 0",
        )  # fmt: skip
    _one_line(
        capsys,
        ["train", "--preset", "test", *data,
         "--output", str(tmp_path / "missing" / "run")],
        "parent folder", "does not exist",
    )  # fmt: skip
    _one_line(capsys, ["train", *data, "--output", run], "give a network")
    _one_line(
        capsys,
        ["train", "--preset", "test", "--model", "x.keras", *data],
        "not allowed with argument",
    )  # fmt: skip
    _one_line(
        capsys,
        ["train", "--genotype", "ir_r1_k3_s9_e1_c16_se0.25", *data,
         "--output", run],
        "s=9",
    )  # fmt: skip
    _one_line(
        capsys,
        ["train", "--resume", run, "--epochs", "3"],
        "drop --epochs",
    )  # fmt: skip
    _one_line(capsys, ["train", "--resume", run], "no training run there")
    assert not os.path.exists(run)
    if os.geteuid() != 0:  # root writes anywhere
        read_only = tmp_path / "read_only"
        read_only.mkdir(mode=0o500)
        _one_line(
            capsys,
            ["train", "--preset", "test", *data,
             "--output", str(read_only / "run")],
            "not writable",
        )  # fmt: skip


def test_a_locked_run_folder_is_refused(coco_mini, tmp_path, capsys):
    from keras_evopose.utils import FolderLock

    run = tmp_path / "run"
    with FolderLock(run, "training run"):
        error = _one_line(
            capsys,
            ["train", "--preset", "test", *_paths(coco_mini),
             "--output", str(run), *TINY],
            f"pid {os.getpid()} on host",
        )  # fmt: skip
    assert "training run" in error


def test_divergence_keeps_the_last_good_epoch(coco_mini, tmp_path, capsys):
    import keras

    run = tmp_path / "run"
    assert main(
        ["train", "--preset", "test", *_paths(coco_mini), *TINY,
         "--output", str(run), "--verbose", "2"]
    ) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["epoch 1/2"] + [
        "epoch 2/2"
    ]
    # One more epoch, from a checkpoint whose optimizer now runs at a
    # learning rate of 1e6: the loss explodes (finite or not).
    state = json.loads((run / "checkpoint.json").read_text())
    checkpoint = run / state["checkpoint"]
    model = keras.saving.load_model(checkpoint)
    model.compile(optimizer=keras.optimizers.Adam(1e6), loss=model.loss)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(state["iterations"])
    model.save(checkpoint)
    config = json.loads((run / "train_config.json").read_text())
    (run / "train_config.json").write_text(json.dumps(dict(config, epochs=3)))
    saved = {
        name: (run / name).read_bytes()
        for name in ("best.keras", "last.keras", "checkpoint.json")
    }
    status = main(["train", "--resume", str(run), "--verbose", "0"])
    error = capsys.readouterr().err.strip()
    assert status == 1
    assert len(error.splitlines()) == 1 and "diverged at epoch 3" in error
    for name, content in saved.items():
        assert (run / name).read_bytes() == content


@pytest.mark.slow
def test_any_network_with_input_size_and_compound_scale(
    coco_mini, tmp_path, capsys
):
    import keras

    from keras_evopose.models import EvoPose2D
    from keras_evopose.models import presets

    genotype = presets.preset_arguments("test", "backbone")["genotype"]
    data = _paths(coco_mini)
    first = tmp_path / "genotype"
    assert main(
        ["train", "--genotype", " ".join(genotype + ["up_c16", "up_c16"]),
         "--input-size", "64x48", *data, *TINY, "--output", str(first),
         "--verbose", "0"]
    ) == 0  # fmt: skip
    model = keras.saving.load_model(first / "last.keras")
    assert isinstance(model, EvoPose2D)
    assert model.head_filters == [16, 16]
    assert tuple(model.input_shape[1:3]) == (64, 48)

    # Fine-tune that model at another size: every weight carries over.
    second = tmp_path / "model"
    assert main(
        ["train", "--model", str(first / "last.keras"), "--input-size",
         "96x64", *data, *TINY, "--output", str(second), "--verbose", "0"]
    ) == 0  # fmt: skip
    resized = keras.saving.load_model(second / "best.keras")
    assert tuple(resized.input_shape[1:3]) == (96, 64)
    assert resized.count_params() == model.count_params()

    # Compound scaling grows the network (the paper's rule from 256x192).
    third = tmp_path / "scaled"
    assert main(
        ["train", "--model", str(first / "last.keras"), "--compound-scale",
         "384x288", *data, *TINY, "--output", str(third), "--verbose", "0"]
    ) == 0  # fmt: skip
    scaled = keras.saving.load_model(third / "last.keras")
    assert tuple(scaled.input_shape[1:3]) == (384, 288)
    assert scaled.count_params() > model.count_params()
    capsys.readouterr()


def test_a_full_disk_is_one_line_and_the_run_resumes(
    coco_mini, tmp_path, capsys
):
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(disk)],
        capture_output=True,
    )
    if mounted.returncode:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        run = disk / "run"
        # Each epoch writes three ~0.5 MB models: the disk fills in epoch 1
        # or 2.
        status = main(
            ["train", "--preset", "test", *_paths(coco_mini), *TINY,
             "--epochs", "4", "--output", str(run), "--verbose", "0"]
        )  # fmt: skip
        error = capsys.readouterr().err.strip()
        assert status == 2, error
        assert len(error.splitlines()) == 1, error
        assert "space" in error.lower(), error[:400]
        assert f"--resume {run}" in error
        assert not list(run.rglob("*.partial-*"))
        committed = (
            json.loads((run / "checkpoint.json").read_text())["epoch"]
            if (run / "checkpoint.json").exists()
            else 0
        )
        # Space again (the models move out): the run resumes and ends.
        for name in ("best.keras", "last.keras", "curves.png"):
            (run / name).unlink(missing_ok=True)
        subprocess.run(
            ["mount", "-o", "remount,size=8m", str(disk)], check=True
        )
        assert main(["train", "--resume", str(run), "--verbose", "0"]) == 0
        state = json.loads((run / "checkpoint.json").read_text())
        assert state["epoch"] == 4 >= committed
        assert [row["epoch"] for row in state["history"]] == [1, 2, 3, 4]
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def test_ctrl_c_before_the_first_epoch_leaves_nothing(
    coco_mini, tmp_path, capsys, monkeypatch
):
    from keras_evopose.training import network

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    # Ctrl-C while the network is built: the folder is locked, nothing
    # trained, so nothing is kept and the same command starts again.
    monkeypatch.setattr(network, "build_network", interrupted)
    run = tmp_path / "run"
    error = _one_line(
        capsys,
        ["train", "--preset", "test", *_paths(coco_mini), *TINY,
         "--output", str(run)],
        "interrupted before the first epoch; nothing was saved in "
        f"{run}: run the same command again",
        status=130,
    )  # fmt: skip
    assert error.startswith("keras-evopose train: ")
    assert not run.exists()
