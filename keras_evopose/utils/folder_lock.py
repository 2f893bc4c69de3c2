"""An exclusive lock on an output folder (a search, a training run).

Two processes writing one folder both train and both write, and one's
start-up cleanup deletes the other's temporary files. The process that
writes a folder (a single process, or the chief of a distributed search)
therefore holds `fcntl.flock` on `keras-evopose.lock` inside it for as
long as it runs. The kernel releases the lock when the process ends, also
on `kill -9` or a crash, so there is never a stale lock to remove by hand.
A second process refuses in one line naming the holder (pid, host, start
time, command), which the holder writes into the lock file.

On network file systems the lock is as good as the mount's locks: Linux
NFS (v3 with `lockd`, v4) turns `flock` into a POSIX lock the server
arbitrates, across hosts; NFSv3 with `nolock`, `local_lock=flock` and
object stores mounted as folders (gcsfuse, s3fs) lock within one host at
best. A file system that refuses locks gets a warning, and no lock.

The lock file stays after the process ends: removing it would let a third
process lock a fresh file while a second still holds the removed one.
"""

import datetime
import errno
import fcntl
import os
import pathlib
import socket
import sys
import warnings

from keras_evopose.api_export import keras_evopose_export

LOCK_FILE = "keras-evopose.lock"


@keras_evopose_export("keras_evopose.utils.FolderLockedError")
class FolderLockedError(RuntimeError):
    """Another live process holds the folder's lock (one-line message:
    the folder, the holder and what to do)."""


def _holder_text(descriptor):
    text = os.pread(descriptor, 1024, 0).decode(errors="replace").strip()
    # Empty: read while the holder was writing it.
    return text or "a process that has not yet written its name"


@keras_evopose_export("keras_evopose.utils.FolderLock")
class FolderLock:
    """Holds an exclusive lock on `folder` for one process.

    Use it as a context manager around everything that writes `folder`:

    ```python
    with FolderLock("runs/search", "search"):
        ...  # only this process writes runs/search
    ```

    Args:
        folder: the folder to lock; created if missing.
        what: what the folder holds, for the message (`"search"`,
            `"training run"`).
        hint: what the refused user can do instead; ends the message.

    Raises:
        FolderLockedError: on entering, while another process (on this
            host, or on another host of a file system with working locks)
            holds the lock.
    """

    def __init__(self, folder, what="output folder", hint=None):
        self.folder = pathlib.Path(folder)
        self.what = what
        self.hint = hint or (
            "wait for it to end or stop it (the lock goes with its process), "
            "or use another folder"
        )
        self.path = self.folder / LOCK_FILE
        self._descriptor = None

    @property
    def held(self):
        return self._descriptor is not None

    def acquire(self):
        if self.held:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _holder_text(descriptor)
            os.close(descriptor)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderLockedError(
                    f"{self.folder} is in use by another {self.what} "
                    f"({holder}); {self.hint}"
                ) from None
            # ENOLCK / EOPNOTSUPP: a file system without locks (an NFS
            # mount with `nolock`, some FUSE mounts). Refusing would make
            # the folder unusable; go on, and say what is not protected.
            warnings.warn(
                f"cannot lock {self.path} ({error.strerror}): this file "
                "system has no locks, so nothing stops a second process "
                f"from writing {self.folder}; start only one",
                stacklevel=2,
            )
            return self
        self._descriptor = descriptor
        since = datetime.datetime.now(datetime.timezone.utc)
        command = " ".join([pathlib.Path(sys.argv[0]).name, *sys.argv[1:]])
        holder = (
            f"pid {os.getpid()} on host {socket.gethostname()}, since "
            f"{since:%Y-%m-%d %H:%M:%S} UTC: {command.strip() or 'python'}"
        )
        # Written in place: only for the refusal message, and only the
        # holder writes it (a reader that catches it half-written says so).
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (holder + "\n").encode(), 0)
        return self

    def release(self):
        if self._descriptor is not None:
            # The file stays: removing it would let a third process lock
            # a new file while a second one holds the old inode.
            os.close(self._descriptor)
            self._descriptor = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
        return False
