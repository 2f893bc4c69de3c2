import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from keras_evopose.utils.folder_lock import FolderLock
from keras_evopose.utils.folder_lock import FolderLockedError

HOLD = textwrap.dedent(
    """
    import sys, time
    from keras_evopose.utils.folder_lock import FolderLock
    FolderLock(sys.argv[1], "training run").acquire()
    print("held", flush=True)
    time.sleep(60)
    """
)


def _hold_in_child(folder):
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert child.stdout.readline().strip() == "held"
    return child


def test_refused_naming_pid_and_host_then_free_after_kill_9(tmp_path):
    child = _hold_in_child(tmp_path / "run")
    try:
        with pytest.raises(FolderLockedError) as info:
            FolderLock(tmp_path / "run", "training run").acquire()
        message = str(info.value)
        assert f"pid {child.pid} on host" in message
        assert "\n" not in message
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    # The kernel dropped the dead holder's lock: no stale lock.
    with FolderLock(tmp_path / "run") as lock:
        assert lock.held
        assert f"pid {os.getpid()}" in lock.path.read_text()
    assert not lock.held
    FolderLock(tmp_path / "run").acquire().release()


def test_one_process_locking_twice_is_refused_too(tmp_path):
    # flock locks belong to open file descriptions: a second open in the
    # same process conflicts, so one process cannot write a run twice.
    with FolderLock(tmp_path):
        start = time.monotonic()
        with pytest.raises(FolderLockedError):
            FolderLock(tmp_path).acquire()
        assert time.monotonic() - start < 1  # never waits


def test_the_message_names_what_and_the_way_out(tmp_path):
    with FolderLock(tmp_path, "search", hint="continue with --resume X"):
        with pytest.raises(FolderLockedError) as info:
            FolderLock(tmp_path, "search").acquire()
    assert str(info.value).startswith(
        f"{tmp_path} is in use by another search (pid {os.getpid()} on host"
    )
    with FolderLock(tmp_path, "search", hint="continue with --resume X"):
        with pytest.raises(
            FolderLockedError, match="; continue with --resume X$"
        ):
            FolderLock(
                tmp_path, "search", hint="continue with --resume X"
            ).acquire()


def test_a_file_system_without_locks_warns_and_goes_on(tmp_path, monkeypatch):
    import errno
    import fcntl

    def refuse(descriptor, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", refuse)
    with pytest.warns(UserWarning, match="has no locks"):
        lock = FolderLock(tmp_path).acquire()
    assert not lock.held
