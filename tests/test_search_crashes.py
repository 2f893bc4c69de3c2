"""`keras-evopose search` as users run it, killed at the worst moments.

Every process here is the installed `keras-evopose` command: the kill
matrix `kill -9`s a search mid-ancestor, mid-child, right after a
`trial.json` turns COMPLETED and while the results are written, resuming
after each; the distributed test runs a chief and two workers on
127.0.0.1 and kills one worker mid-trial.
"""

import hashlib
import json
import os
import signal
import time

import cli_process
import pytest
from cli_process import TIMEOUT
from cli_process import free_port
from cli_process import kill
from cli_process import kill_left
from cli_process import read_json
from cli_process import wait_for

# Small enough for 2 cores: the `test` preset, one pass per epoch.
FAST = [
    "--ancestor-epochs",
    "2",
    "--child-epochs",
    "1",
    "--passes-per-epoch",
    "1",
    "--verbose",
    "0",
]


def start(output, *flags, tuner_id=None, port=None):
    return cli_process.start(
        "search", "--output", str(output), *flags, tuner_id=tuner_id, port=port
    )


def trials(output):
    found = {}
    for path in (output / "tuner").glob("trial_*/trial.json"):
        state = json.loads(path.read_text())  # never truncated
        checkpoint = path.parent / "checkpoint.weights.h5"
        state["checkpoint"] = (
            (
                checkpoint.stat().st_mtime_ns,
                hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
            )
            if checkpoint.exists()
            else None
        )
        found[state["trial_id"]] = state
    return found


def completed(output):
    return {
        trial_id: (trial["score"], trial["checkpoint"])
        for trial_id, trial in trials(output).items()
        if trial["status"] == "COMPLETED"
    }


def running_trial(output, children_only):
    for trial_id, trial in trials(output).items():
        if trial["status"] == "RUNNING" and (
            not children_only
            or trial["hyperparameters"]["values"]["parent_trial_id"]
        ):
            return trial_id
    return None


@pytest.mark.slow
def test_kill_matrix_through_the_cli(tmp_path):
    output = tmp_path / "search"
    max_trials = 4
    flags = ["--max-trials", str(max_trials), *FAST]
    report = []
    ledger = {}  # every completed trial ever seen: (score, checkpoint)

    def check_nothing_lost():
        now = completed(output)
        for trial_id, record in ledger.items():
            # A completed trial is never lost, re-trained or re-scored.
            assert now.get(trial_id) == record, trial_id
        ledger.update(now)

    # 1. Mid-ancestor.
    process = start(output, *flags)
    wait_for(process, lambda: running_trial(output, False), "the ancestor")
    time.sleep(3)
    kill(process)
    report.append(("mid-ancestor", len(completed(output))))
    check_nothing_lost()

    # 2. Mid-child.
    process = start(output, "--resume", str(output))
    wait_for(process, lambda: running_trial(output, True), "a child")
    time.sleep(2)
    kill(process)
    report.append(("mid-child", len(completed(output))))
    check_nothing_lost()

    # 3. Right after a trial.json turns COMPLETED (polled continuously).
    before = set(completed(output))
    process = start(output, "--resume", str(output))
    trial_files = output / "tuner"

    def newly_completed():
        for path in trial_files.glob("trial_*/trial.json"):
            if path.parent.name[len("trial_") :] in before:
                continue
            if b'"status": "COMPLETED"' in path.read_bytes():
                return path
        return None

    wait_for(process, newly_completed, "a trial to complete", poll=0.0002)
    seen = time.perf_counter()
    os.kill(process.pid, signal.SIGKILL)
    delay_ms = (time.perf_counter() - seen) * 1000
    process.wait()
    # Typically ~0.2 ms; a loaded machine may deschedule the test between
    # seeing the file and the kill, which does not change what is tested.
    assert delay_ms < 50.0
    report.append(("1 ms after COMPLETED", len(completed(output))))
    check_nothing_lost()

    # 4. During the results write (a temporary file beside pareto.json,
    # the plots or best_model.keras).
    process = start(output, "--resume", str(output))
    wait_for(
        process,
        lambda: any(
            p.name.startswith((".pareto", ".fitness", ".best_model"))
            for p in output.iterdir()
        ),
        "the results write",
        poll=0.0002,
    )
    kill(process)
    report.append(("during results write", len(completed(output))))
    check_nothing_lost()

    # 5. Resume to the end.
    process = start(output, "--resume", str(output))
    out, _ = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, out[-3000:]
    check_nothing_lost()
    final = trials(output)
    assert sorted(final, key=int) == [str(i) for i in range(max_trials)]
    assert all(t["status"] == "COMPLETED" for t in final.values())
    genotypes = [
        t["hyperparameters"]["values"]["genotype"] for t in final.values()
    ]
    assert len(set(genotypes)) == max_trials
    result = json.loads((output / "pareto.json").read_text())
    assert len(result["trials"]) == max_trials
    assert (output / "best_model.keras").stat().st_size > 0
    assert not [p for p in output.rglob(".*") if p.is_file()]
    print(
        "kill matrix: "
        + "; ".join(f"{moment}: {n} completed kept" for moment, n in report)
        + f"; kill {delay_ms:.3f} ms after COMPLETED; {max_trials} trials, "
        "0 lost, 0 trained twice"
    )


@pytest.mark.slow
def test_chief_and_two_workers_survive_a_killed_worker(tmp_path):
    output = tmp_path / "shared"
    port = free_port()
    flags = ["--max-trials", "3", "--heartbeat-timeout", "12", *FAST]
    chief = start(output, *flags, "--verbose", "1", tuner_id="chief", port=port)
    workers = {
        tuner_id: start(
            output, *flags, "--verbose", "1", tuner_id=tuner_id, port=port
        )
        for tuner_id in ("tuner0", "tuner1")
    }
    oracle_file = output / "tuner" / "oracle.json"

    def tuner0_trial():
        state = read_json(oracle_file) or {}
        return state.get("ongoing_trials", {}).get("tuner0")

    wait_for(workers["tuner0"], tuner0_trial, "tuner0 to get a trial")
    victim = tuner0_trial()
    time.sleep(3)
    kill(workers["tuner0"])
    outputs = {}
    try:
        for name, process in (("tuner1", workers["tuner1"]), ("chief", chief)):
            outputs[name] = process.communicate(timeout=TIMEOUT)[0]
            assert process.returncode == 0, outputs[name][-3000:]
    finally:
        kill_left(chief, *workers.values())
    final = trials(output)
    assert sorted(final, key=int) == ["0", "1", "2"]
    assert all(t["status"] == "COMPLETED" for t in final.values())
    assert final[victim]["status"] == "COMPLETED"
    genotypes = {
        t["hyperparameters"]["values"]["genotype"] for t in final.values()
    }
    assert len(genotypes) == 3
    # Results once, by the chief.
    assert "Wrote" in outputs["chief"]
    assert "Wrote" not in outputs["tuner1"]
    assert "the chief writes the results" in outputs["tuner1"]
    result = json.loads((output / "pareto.json").read_text())
    assert len(result["trials"]) == 3


@pytest.mark.slow
def test_ctrl_c_is_one_line_with_the_resume_command(tmp_path):
    output = tmp_path / "search"
    flags = ["--max-trials", "2", "--ancestor-epochs", "1"]
    flags += ["--child-epochs", "1", "--passes-per-epoch", "1"]
    process = start(output, *flags, "--verbose", "1")
    # Once the ancestor is done, during its child.
    wait_for(process, lambda: running_trial(output, True), "the child")
    kept = completed(output)
    assert list(kept) == ["0"]
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    lines = out.strip().splitlines()
    resume = f"keras-evopose search --resume {output}"
    assert lines[-1] == (
        f"keras-evopose search: interrupted; continue with: {resume}"
    )
    assert [line for line in lines if "--resume" in line] == lines[-1:]
    process = start(output, "--resume", str(output), "--verbose", "0")
    out, _ = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, out[-3000:]
    # The ancestor kept (same checkpoint, not trained again), the child
    # run again to the end.
    final = completed(output)
    assert sorted(final) == ["0", "1"]
    assert final["0"] == kept["0"]
    assert (output / "best_model.keras").stat().st_size > 0
