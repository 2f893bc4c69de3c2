"""docs/training.md's path, run line by line as a user pastes it:
search -> train --from-search -> kill -9 mid-epoch -> train --resume ->
evaluate -> export --int8 -> predict, each through the `keras-evopose`
command."""

import json
import math
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "training.md"
BIN = pathlib.Path(sys.executable).parent
TIMEOUT = 600


def walkthrough():
    """The lines of the page's first ```bash block."""
    block = re.search(r"^```bash\n(.*?)^```", PAGE.read_text(), re.S | re.M)
    return [line for line in block.group(1).splitlines() if line.strip()]


def _state(run):
    try:
        return json.loads((run / "checkpoint.json").read_text())
    except FileNotFoundError:
        return {"epoch": 0}


@pytest.mark.slow
def test_search_train_kill_resume_evaluate_export_predict(tmp_path):
    from keras_evopose.training import learning_rate_schedule

    (tmp_path / "data").symlink_to(ROOT / "data")
    env = dict(
        os.environ,
        PATH=f"{BIN}:{os.environ['PATH']}",
        PYTHONPATH=str(ROOT),
        KERAS_HOME=str(ROOT / ".keras_home"),
        TF_CPP_MIN_LOG_LEVEL="3",
        MPLBACKEND="Agg",
    )
    variables = []
    run = tmp_path / "my_run"
    killed_at = None
    for line in walkthrough():
        script = "\n".join([*variables, line])
        if re.match(r"^[A-Z]+=", line):
            variables.append(line)
            continue
        command = ["bash", "-c", script]
        if line.startswith("keras-evopose train --from-search"):
            process = subprocess.Popen(
                command, cwd=tmp_path, env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            deadline = time.monotonic() + TIMEOUT
            while _state(run)["epoch"] < 1 and process.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(0.5)  # into epoch 2
            assert process.poll() is None, process.stdout.read()[-3000:]
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed_at = _state(run)["epoch"]
            continue
        result = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=TIMEOUT,
        )  # fmt: skip
        assert result.returncode == 0, (line, result.stdout[-2000:],
                                        result.stderr[-3000:])  # fmt: skip
        if line.startswith("keras-evopose train --resume"):
            assert "4/4 epochs" in result.stdout, result.stdout
        if line.startswith("keras-evopose evaluate"):
            assert re.search(r"\bap\b", result.stdout), result.stdout
    assert killed_at is not None and killed_at < 4
    # The resumed run ends as an uninterrupted one would: 4 epochs, the
    # optimizer at step 4 x steps, the schedule's rate there.
    state = _state(run)
    config = json.loads((run / "train_config.json").read_text())
    steps = state["steps_per_epoch"]
    assert [row["epoch"] for row in state["history"]] == [1, 2, 3, 4]
    assert state["iterations"] == 4 * steps
    schedule = learning_rate_schedule(
        config["batch_size"], steps, epochs=4,
        warmup_epochs=min(config["warmup_epochs"], 3),
        base_learning_rate=config["base_learning_rate"],
    )  # fmt: skip
    for row in state["history"]:
        expected = float(schedule(row["epoch"] * steps))
        assert math.isclose(
            row["learning_rate"], expected, rel_tol=1e-5, abs_tol=1e-9
        )
    assert (tmp_path / "pose.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "best_int8.tflite").stat().st_size > 0
