"""Two `keras-evopose search` processes on one folder: the second refuses.

Before the folder lock both trained every trial, both wrote the results,
and one's start-up cleanup deleted the other's temporary files.
"""

import json
import time

import pytest
from cli_process import ONE_TRIAL
from cli_process import kill_left
from cli_process import start

TINY = [*ONE_TRIAL, "--child-epochs", "1", "--verbose", "0"]


@pytest.mark.slow
def test_a_second_search_on_a_folder_refuses_and_the_first_finishes(tmp_path):
    output = tmp_path / "search"
    first = start("search", "--output", str(output), *TINY, merge=False)
    try:
        deadline = time.time() + 300
        lock = output / "keras-evopose.lock"
        # The lock is taken before anything else is written.
        while not (
            (output / "search_config.json").exists()
            and lock.exists()
            and f"pid {first.pid} on host" in lock.read_text()
        ):
            assert first.poll() is None, first.communicate()
            assert time.time() < deadline, "the first search never started"
            time.sleep(0.1)
        for flags in (["--resume", str(output)], ["--output", str(output)]):
            second = start("search", *flags, merge=False)
            out, err = second.communicate(timeout=300)
            assert second.returncode == 2, (out, err)
            lines = err.strip().splitlines()
            assert len(lines) == 1, err
            holder = f"(pid {first.pid} on host"
            assert f"{output} is in use by another search {holder}" in lines[0]
            assert f"--resume {output}" in lines[0]
        out, err = first.communicate(timeout=600)
    finally:
        kill_left(first)
    assert first.returncode == 0, err[-3000:]
    result = json.loads((output / "pareto.json").read_text())
    assert len(result["trials"]) == 1
    states = [
        json.loads(path.read_text())["status"]
        for path in (output / "tuner").glob("trial_*/trial.json")
    ]
    assert states == ["COMPLETED"]
    assert (output / "best_model.keras").stat().st_size > 0
    assert not [p for p in output.rglob(".*") if p.is_file()]
