"""`keras-evopose search` on a disk that fills up, then resumed.

Before, a full disk during a checkpoint write killed the search with
SIGSEGV inside h5py (after ~1,500 lines of "No space left on device").
"""

import json
import subprocess

import pytest
from cli_process import ONE_TRIAL
from cli_process import run

TINY = [*ONE_TRIAL, "--verbose", "0"]


@pytest.mark.slow
def test_a_full_disk_stops_the_search_in_one_line_and_it_resumes(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    # The split (~136 kB) fits, the ancestor's checkpoint (~280 kB) not.
    mount = ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)]
    if subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        output = disk / "search"
        full = run("search", "--output", str(output), *TINY)
        assert full.returncode == 2, full.stderr[-3000:]
        checkpoint = output / "tuner" / "trial_0" / "checkpoint.weights.h5"
        assert full.stderr.strip().splitlines() == [
            "keras-evopose search: error: no space left on the device to "
            f"write {checkpoint} "
            + full.stderr.split(f"write {checkpoint} ", 1)[1].strip()
        ]
        assert full.stderr.strip().endswith(
            f"free space on that disk, then continue with: keras-evopose "
            f"search --resume {output}"
        )
        assert not [p for p in output.rglob(".*") if p.is_file()]
        trial = json.loads((checkpoint.parent / "trial.json").read_text())
        assert trial["status"] == "RUNNING"  # re-run on resume
        subprocess.run(
            ["mount", "-o", "remount,size=4m", str(disk)], check=True
        )
        resumed = run("search", "--resume", str(output))
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        trial = json.loads((checkpoint.parent / "trial.json").read_text())
        assert trial["status"] == "COMPLETED"
        assert (output / "best_model.keras").stat().st_size > 0
        assert not [p for p in output.rglob(".*") if p.is_file()]
    finally:
        subprocess.run(["umount", str(disk)], check=False)
