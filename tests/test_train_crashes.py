"""`keras-evopose train` as users run it, killed at the worst moments.

Each process is the `keras-evopose` command. One run is interrupted with
Ctrl-C after its first epoch, then `kill -9`ed mid epoch, while its
checkpoint is being written and while `best.keras` is being written,
resumed after each; it must end with the epochs, optimizer
step and learning rate of an uninterrupted run, having lost at most the
epoch in progress at each kill.
"""

import json
import math
import os
import signal
import time

import pytest
from cli_process import kill
from cli_process import start

EPOCHS = 7
STEPS = 4
BATCH_SIZE = 8
WARMUP_EPOCHS = 1
BASE_LEARNING_RATE = 1e-2
TIMEOUT = 300


def _flags(coco_mini):
    return [
        "--preset", "test", "--annotations", str(coco_mini["annotations"]),
        "--images", str(coco_mini["images"]), "--no-augment",
        "--epochs", str(EPOCHS), "--warmup-epochs", str(WARMUP_EPOCHS),
        "--steps-per-epoch", str(STEPS), "--batch-size", str(BATCH_SIZE),
        "--base-learning-rate", str(BASE_LEARNING_RATE), "--verbose", "2",
    ]  # fmt: skip


def _start(*argv):
    return start("train", *argv)


def _state(run):
    try:
        return json.loads((run / "checkpoint.json").read_text())
    except FileNotFoundError:
        return {"epoch": 0}


def _partial(folder, prefix):
    """The name of a temporary file `prefix*.partial-*` in `folder`."""
    try:
        for entry in os.scandir(folder):
            if entry.name.startswith(prefix) and ".partial-" in entry.name:
                return entry.name
    except FileNotFoundError:
        pass
    return None


def _kill_when(process, run, moment):
    """SIGKILLs `process` at `moment`. Returns `None` if it ended first,
    else the epoch it was working on (training or writing)."""
    first = _state(run)["epoch"]
    deadline = time.monotonic() + TIMEOUT
    in_progress = None
    while time.monotonic() < deadline and process.poll() is None:
        if moment == "mid_epoch":
            # Part-way into the epoch after the first one this process
            # committed.
            if _state(run)["epoch"] > first:
                time.sleep(0.5)
                in_progress = _state(run)["epoch"] + 1
                break
        elif moment == "checkpoint_write":
            name = _partial(run / "checkpoint", ".epoch-")
            if name:
                in_progress = int(name.split("-")[1].split(".")[0])
                break
        elif moment == "best_write":
            if _partial(run, ".best"):
                # best.keras is written before the epoch is committed.
                in_progress = _state(run)["epoch"] + 1
                break
        time.sleep(0.001)
    if process.poll() is not None:
        return None
    kill(process)
    return in_progress


@pytest.mark.slow
def test_ctrl_c_and_kill_9_at_the_worst_moments_then_resume(
    coco_mini, tmp_path
):
    from keras_evopose.training import learning_rate_schedule

    # An uninterrupted run's rate after each epoch is its optimizer's
    # schedule (`evopose2d_optimizer`) for these flags at the epoch's end:
    # computed, not trained for (an uninterrupted run cost ~15 s).
    schedule = learning_rate_schedule(
        BATCH_SIZE, STEPS, epochs=EPOCHS, warmup_epochs=WARMUP_EPOCHS,
        base_learning_rate=BASE_LEARNING_RATE,
    )  # fmt: skip
    run = tmp_path / "run"
    kills = []
    process = _start(*_flags(coco_mini), "--output", str(run))
    # First Ctrl-C after epoch 1: one last line naming the resume
    # command, exit 130, the completed epochs kept.
    deadline = time.monotonic() + TIMEOUT
    while _state(run)["epoch"] < 1 and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130, output[-2000:]
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    last = lines[-1]
    assert last.startswith("keras-evopose train: interrupted;"), last
    assert f"keras-evopose train --resume {run}" in last
    assert [line for line in lines if "--resume" in line] == [last]
    kept = _state(run)
    assert kept["epoch"] >= 1 and f"keeps epoch {kept['epoch']}." in last
    process = _start("--resume", str(run))
    for moment in ("mid_epoch", "checkpoint_write", "best_write"):
        in_progress = _kill_when(process, run, moment)
        if in_progress is None:
            break
        committed = _state(run)["epoch"]
        # At most the epoch in progress is lost.
        assert committed >= in_progress - 1, (moment, in_progress, committed)
        kills.append((moment, in_progress, committed))
        process = _start("--resume", str(run))
    output, _ = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, output[-3000:]
    assert len(kills) >= 2, f"the run ended before the kills: {kills}"
    state = _state(run)
    assert state["epoch"] == EPOCHS
    assert [row["epoch"] for row in state["history"]] == list(
        range(1, EPOCHS + 1)
    )
    assert state["iterations"] == EPOCHS * STEPS
    # The epochs kept at Ctrl-C were not trained again.
    assert state["history"][: kept["epoch"]] == kept["history"]
    assert math.isclose(
        state["learning_rate"],
        float(schedule(EPOCHS * STEPS)),
        rel_tol=1e-6,
        abs_tol=1e-12,
    )
    for row in state["history"]:
        assert math.isclose(
            row["learning_rate"],
            float(schedule(row["epoch"] * STEPS)),
            rel_tol=1e-6,
            abs_tol=1e-12,
        ), row
    assert not list(run.rglob("*.partial-*"))
    lines = (run / "history.csv").read_text().splitlines()
    assert len(lines) == EPOCHS + 1
    # (moment, epoch in progress, epochs committed after the kill)
    print(f"kill matrix: {kills}")
