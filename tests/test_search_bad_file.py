"""A bad image fails a trial naming the file; fixed, `--resume` re-runs it.

Before, a 0-byte image failed the ancestor with `[[IteratorGetNext]]`
(no file named), and after the image was fixed `--resume` kept exiting 1
("the ancestor failed") until `tuner/trial_0` was deleted by hand.
"""

import json
import shutil

import pytest
from cli_process import ONE_TRIAL
from cli_process import ROOT
from cli_process import run

MINI = ROOT / "data" / "coco_kpt_mini"


@pytest.mark.slow
def test_a_trial_failed_by_a_bad_image_reruns_once_it_is_fixed(tmp_path):
    images = tmp_path / "images"
    shutil.copytree(MINI / "val2017", images)
    annotations = MINI / "annotations" / "person_keypoints_val2017_mini.json"
    bad = images / sorted(p.name for p in images.iterdir())[0]
    good = bad.read_bytes()
    bad.write_bytes(b"")
    output = tmp_path / "search"
    flags = [*ONE_TRIAL, "--verbose", "1"]
    failed = run(
        "search",
        "--output",
        str(output),
        "--annotations",
        str(annotations),
        "--images",
        str(images),
        *flags,
    )
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert (
        f"trial 0 failed: environment error: {bad}: Not a JPEG/PNG/GIF/BMP "
        "image; fix it, then --resume re-runs this trial"
    ) in failed.stdout
    assert "IteratorGetNext" not in failed.stdout
    bad.write_bytes(good)
    resumed = run("search", "--resume", str(output))
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"re-running trial 0, which failed: {bad}:" in resumed.stdout
    trial = json.loads((output / "tuner/trial_0/trial.json").read_text())
    assert trial["status"] == "COMPLETED"
    assert (output / "best_model.keras").exists()
