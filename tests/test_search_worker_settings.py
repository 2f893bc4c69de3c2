"""A worker started as docs/search.md shows adopts its chief's settings.

Before, a worker given only `--output` trained with the default recipe
(the ancestor 6 epochs) while its chief's search_config.json said 1.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMAND = pathlib.Path(sys.executable).parent / "keras-evopose"


def _start(output, tuner_id, port, *flags):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("KERASTUNER")
    }
    env.update(
        KERAS_HOME=str(ROOT / ".keras_home"),
        KERASTUNER_TUNER_ID=tuner_id,
        KERASTUNER_ORACLE_IP="127.0.0.1",
        KERASTUNER_ORACLE_PORT=str(port),
    )
    return subprocess.Popen(
        [str(COMMAND), "search", "--output", str(output), *flags],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_a_worker_with_only_output_trains_the_chiefs_recipe(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    output = tmp_path / "shared"
    # The worker first (it waits for the chief to save its settings), as
    # the documented command: only --output.
    worker = _start(output, "tuner0", port)
    chief = _start(
        output,
        "chief",
        port,
        *("--max-trials", "1", "--ancestor-epochs", "1"),
        *("--passes-per-epoch", "1", "--verbose", "0"),
    )
    outputs = {}
    try:
        for name, process in (("worker", worker), ("chief", chief)):
            outputs[name] = process.communicate(timeout=600)[0]
            assert process.returncode == 0, outputs[name][-3000:]
    finally:
        for process in (worker, chief):
            if process.poll() is None:
                process.kill()
    trial = json.loads((output / "tuner/trial_0/trial.json").read_text())
    assert trial["status"] == "COMPLETED"
    steps = trial["metrics"]["metrics"]["loss"]["observations"]
    # One epoch, as the chief says (the default would be 6).
    assert [step["step"] for step in steps] == [0]
