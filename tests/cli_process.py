"""The installed `keras-evopose` command in a subprocess, as a user runs it.

Shared by the tests that start, wait for, kill and resume a real search
or training run (tests/test_search_*.py, tests/test_train_*.py).
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
TIMEOUT = 420
# The smallest search: the `test` preset's ancestor, one pass of one epoch.
ONE_TRIAL = [
    *("--max-trials", "1", "--ancestor-epochs", "1"),
    *("--passes-per-epoch", "1"),
]


def environment(tuner_id=None, port=None):
    """The test's environment without any KerasTuner distribution
    variables (a CI runner may set them), Keras config in the repo and
    this checkout's code; `tuner_id` and `port` make a chief or a worker
    on 127.0.0.1."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("KERASTUNER_")
    }
    env.update(
        KERAS_HOME=str(ROOT / ".keras_home"),
        PYTHONPATH=str(ROOT),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    if tuner_id is not None:
        env.update(
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=str(port),
        )
    return env


def run(subcommand, *flags, timeout=600):
    """Runs `keras-evopose SUBCOMMAND FLAGS` to its end; the
    CompletedProcess with stdout and stderr apart."""
    return subprocess.run(
        [str(COMMAND), subcommand, *flags],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _default_sigint():
    # A test runner started in the background (`cmd &` in a script)
    # ignores SIGINT, and so would its children: Ctrl-C as in a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(subcommand, *flags, tuner_id=None, port=None, merge=True):
    """Starts `keras-evopose SUBCOMMAND FLAGS` in the background; its
    stderr goes into stdout when `merge`."""
    return subprocess.Popen(
        [str(COMMAND), subcommand, *flags],
        cwd=ROOT,
        env=environment(tuner_id, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def wait_for(process, condition, what, poll=0.05, timeout=TIMEOUT):
    """Polls `condition` until it is true; fails the test (with the
    process's output) if the process ends or time runs out first."""
    deadline = time.time() + timeout
    while not condition():
        if process.poll() is not None:
            output = process.communicate()[0]
            pytest.fail(f"the process ended before {what}:\n{output[-3000:]}")
        if time.time() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(poll)


def kill(process):
    """`kill -9` and reap."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def kill_left(*processes):
    """Kills what a failed test left running."""
    for process in processes:
        if process.poll() is None:
            process.kill()


def read_json(path):
    """The file's JSON, or None while it is missing or being written."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
