"""The search across processes: keras-tuner chief + workers, and kill -9."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "search_process.py"
TIMEOUT = 300


def start(directory, *extra, tuner_id=None, port=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for key in list(env):
        if key.startswith("KERASTUNER_"):
            del env[key]
    if tuner_id is not None:
        env.update(
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=str(port),
        )
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), "--directory", str(directory), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_all(processes, timeout=TIMEOUT):
    deadline = time.time() + timeout
    outputs = []
    try:
        for process in processes:
            output, _ = process.communicate(
                timeout=max(1, deadline - time.time())
            )
            outputs.append(output)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs


def read_trials(project):
    trials = {}
    for path in sorted(project.glob("trial_*/trial.json")):
        trial = json.loads(path.read_text())
        probe = path.parent / "probe.jsonl"
        trial["probe"] = (
            [json.loads(line) for line in probe.read_text().splitlines()]
            if probe.exists()
            else []
        )
        trials[trial["trial_id"]] = trial
    return trials


def values(trial):
    return trial["hyperparameters"]["values"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers(tmp_path):
    port = free_port()
    chief = start(tmp_path, "--max-trials", "4", tuner_id="chief", port=port)
    workers = [
        start(tmp_path, "--max-trials", "4", tuner_id=f"tuner{i}", port=port)
        for i in range(2)
    ]
    outputs = wait_all([chief, *workers])
    for process, output in zip([chief, *workers], outputs):
        assert process.returncode == 0, output[-3000:]
    trials = read_trials(tmp_path / "search")
    assert len(trials) == 4, "\n\n".join(o[-2000:] for o in outputs)
    genotypes = set()
    for trial in trials.values():
        assert trial["status"] == "COMPLETED", trial
        # Every trial ran exactly once.
        begins = [p for p in trial["probe"] if p["event"] == "begin"]
        assert len(begins) == 1, trial["probe"]
        genotypes.add(values(trial)["genotype"])
    assert len(genotypes) == 4
    tuners = {trial["probe"][0]["tuner_id"] for trial in trials.values()}
    assert tuners == {"tuner0", "tuner1"}
    # Some child started from weights its parent learned on the other
    # worker: its stem at the start of training is one the parent had at
    # the end of an epoch (the stem never mutates).
    cross = 0
    for trial in trials.values():
        parent_id = values(trial)["parent_trial_id"]
        if not parent_id:
            continue
        parent = trials[parent_id]
        begin = trial["probe"][0]
        parent_epochs = [
            p["stem"] for p in parent["probe"] if p["event"] == "epoch"
        ]
        assert any(
            begin["stem"] == pytest.approx(stem, rel=1e-6)
            for stem in parent_epochs
        ), (trial["trial_id"], begin, parent_epochs)
        if parent["probe"][0]["tuner_id"] != begin["tuner_id"]:
            cross += 1
    assert cross >= 1


@pytest.mark.slow
def test_kill_and_resume(tmp_path):
    project = tmp_path / "search"
    args = ("--max-trials", "4", "--epoch-sleep", "1.0")
    process = start(tmp_path, *args)
    deadline = time.time() + TIMEOUT
    # Kill -9 once trial 2 has started training.
    while not (project / "trial_2" / "probe.jsonl").exists():
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.time() < deadline, "trial 2 never started"
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = read_trials(project)
    assert before["2"]["status"] == "RUNNING"
    completed = {
        trial_id: trial["score"]
        for trial_id, trial in before.items()
        if trial["status"] == "COMPLETED"
    }
    assert set(completed) == {"0", "1"}

    resumed = start(tmp_path, *args, "--resume")
    (output,) = wait_all([resumed])
    assert resumed.returncode == 0, output[-3000:]
    after = read_trials(project)
    assert sorted(after) == ["0", "1", "2", "3"]
    for trial_id, trial in after.items():
        assert trial["status"] == "COMPLETED"
    # Completed trials were kept, not re-run.
    for trial_id, score in completed.items():
        assert after[trial_id]["score"] == score
        assert len(after[trial_id]["probe"]) == len(before[trial_id]["probe"])
    # The interrupted trial ran again with the same genotype.
    begins = [p for p in after["2"]["probe"] if p["event"] == "begin"]
    assert len(begins) == 2
    assert values(after["2"]) == values(before["2"])
