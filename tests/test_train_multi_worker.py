"""`keras-evopose train --multi-worker`: two worker processes on 127.0.0.1.

Both workers run the same command with the cluster in the environment
(`TF_CONFIG` under TensorFlow, `KERAS_DISTRIBUTION_*` under JAX). They
must train in step (the same loss every epoch), worker 0 must write one
run folder and the other worker nothing there; both killed with `kill -9`
after an epoch, `--resume --multi-worker` on both finishes the run.
"""

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
COMMAND = pathlib.Path(sys.executable).parent / "keras-evopose"
EPOCHS = 3
TIMEOUT = 300


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _cluster_environment(backend, index, addresses):
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        TF_CPP_MIN_LOG_LEVEL="3",
        KERAS_BACKEND=backend,
    )
    if backend == "tensorflow":
        env["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": addresses},
                "task": {"type": "worker", "index": index},
            }
        )
    else:
        env.update(
            KERAS_DISTRIBUTION_JOB_ADDRESSES=",".join(addresses),
            KERAS_DISTRIBUTION_NUM_PROCESSES=str(len(addresses)),
            KERAS_DISTRIBUTION_PROCESS_ID=str(index),
        )
    return env


def _start_workers(backend, argv, log_folder, tag):
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    scratch = log_folder / f"{tag}-tmp"
    scratch.mkdir()
    workers = []
    for index in range(2):
        env = _cluster_environment(backend, index, addresses)
        env["TMPDIR"] = str(scratch)
        log = open(log_folder / f"{tag}-worker{index}.log", "w")
        workers.append(
            (
                subprocess.Popen(
                    [str(COMMAND), "train", "--multi-worker", *argv],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
                log,
            )
        )
    return workers


def _finish(workers, log_folder, tag):
    outputs = []
    for index, (process, log) in enumerate(workers):
        try:
            process.wait(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
        output = (log_folder / f"{tag}-worker{index}.log").read_text()
        assert process.returncode == 0, output[-3000:]
        outputs.append(output)
    return outputs


def _epoch_lines(output):
    return [
        line.split(",")[0:2]  # "epoch i/n: loss x", "learning rate y"
        for line in output.splitlines()
        if line.startswith("epoch ")
    ]


def _state(run):
    try:
        return json.loads((run / "checkpoint.json").read_text())
    except (FileNotFoundError, ValueError):
        return {"epoch": 0}


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [
        "tensorflow",
        # Compiling for XLA on 2 shared cores takes minutes: outside the
        # suite's budget, run with KERAS_EVOPOSE_TEST_JAX_WORKERS=1.
        pytest.param(
            "jax",
            marks=pytest.mark.skipif(
                not os.environ.get("KERAS_EVOPOSE_TEST_JAX_WORKERS"),
                reason="set KERAS_EVOPOSE_TEST_JAX_WORKERS=1 (minutes)",
            ),
        ),
    ],
)
def test_two_workers_train_resume_and_save_one_run(
    backend, coco_mini, tmp_path
):
    run = tmp_path / "run"
    argv = [
        "--preset", "test", "--annotations", str(coco_mini["annotations"]),
        "--images", str(coco_mini["images"]), "--no-augment",
        "--epochs", str(EPOCHS), "--warmup-epochs", "1",
        "--steps-per-epoch", "2", "--batch-size", "8",
        "--base-learning-rate", "1e-2", "--verbose", "2",
        "--output", str(run),
    ]  # fmt: skip
    workers = _start_workers(backend, argv, tmp_path, "first")
    deadline = time.monotonic() + TIMEOUT
    while _state(run)["epoch"] < 1 and time.monotonic() < deadline:
        assert all(p.poll() is None for p, _ in workers), [
            (tmp_path / f"first-worker{i}.log").read_text()[-2000:]
            for i in range(2)
        ]
        time.sleep(0.2)
    for process, log in workers:
        process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()
    kept = _state(run)["epoch"]
    assert 1 <= kept <= EPOCHS

    resumed = _finish(
        _start_workers(
            backend,
            ["--resume", str(run), "--verbose", "2"],
            tmp_path,
            "resume",
        ),
        tmp_path,
        "resume",
    )
    state = _state(run)
    assert state["epoch"] == EPOCHS
    assert state["iterations"] == EPOCHS * 2
    # Cosine to 0 at the last step: the schedule ran to its end once.
    assert state["learning_rate"] == pytest.approx(0.0, abs=1e-9)
    # In step: both workers saw the same loss (an all-reduced model).
    chief, other = (_epoch_lines(output) for output in resumed)
    assert chief == other and len(chief) == EPOCHS - kept
    assert resumed[1].strip().splitlines()[-1].startswith("worker 1 of 2: ")
    # One run folder, written by the chief only.
    for name in ("best.keras", "last.keras", "history.csv", "curves.png"):
        assert (run / name).is_file(), name
    # The other worker's scratch folder went with its run.
    assert not list((tmp_path / "resume-tmp").iterdir())


@pytest.mark.parametrize(
    "tf_config, extra, expected",
    [
        (None, [], "TF_CONFIG, which is not set"),
        ('{"cluster": {"worker": ["a:1"]}}', [], "does not name this task"),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, '
            '"task": {"type": "worker", "index": 0}}',
            ["--val-annotations", "VAL", "--val-images", "VALIMAGES"],
            "drop --val-annotations",
        ),
    ],
)
def test_refusals_are_one_line_and_write_nothing(
    tf_config, extra, expected, coco_mini, tmp_path, monkeypatch, capsys
):
    from keras_evopose.cli import main

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    extra = [
        {
            "VAL": str(coco_mini["annotations"]),
            "VALIMAGES": str(coco_mini["images"]),
        }.get(value, value)
        for value in extra
    ]
    status = main(
        [
            "train", "--multi-worker", "--preset", "test",
            "--annotations", str(coco_mini["annotations"]),
            "--images", str(coco_mini["images"]),
            "--output", str(tmp_path / "run"), *extra,
        ]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("keras-evopose train: error: ")
    assert expected in err[0], err
    assert not (tmp_path / "run").exists()
