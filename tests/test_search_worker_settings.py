"""A worker started as docs/search.md shows adopts its chief's settings.

Before, a worker given only `--output` trained with the default recipe
(the ancestor 6 epochs) while its chief's search_config.json said 1.
"""

import json

import pytest
from cli_process import ONE_TRIAL
from cli_process import free_port
from cli_process import kill_left
from cli_process import start


def _start(output, tuner_id, port, *flags):
    return start(
        "search", "--output", str(output), *flags, tuner_id=tuner_id, port=port
    )


@pytest.mark.slow
def test_a_worker_with_only_output_trains_the_chiefs_recipe(tmp_path):
    port = free_port()
    output = tmp_path / "shared"
    # The worker first (it waits for the chief to save its settings), as
    # the documented command: only --output.
    worker = _start(output, "tuner0", port)
    chief = _start(
        output,
        "chief",
        port,
        *ONE_TRIAL,
        *("--verbose", "0"),
    )
    outputs = {}
    try:
        for name, process in (("worker", worker), ("chief", chief)):
            outputs[name] = process.communicate(timeout=600)[0]
            assert process.returncode == 0, outputs[name][-3000:]
    finally:
        kill_left(worker, chief)
    trial = json.loads((output / "tuner/trial_0/trial.json").read_text())
    assert trial["status"] == "COMPLETED"
    steps = trial["metrics"]["metrics"]["loss"]["observations"]
    # One epoch, as the chief says (the default would be 6).
    assert [step["step"] for step in steps] == [0]
