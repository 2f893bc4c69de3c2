"""An exclusive lock on a run or search folder, released when its process dies.

Two processes writing one training run (or one search) would interleave
checkpoints and delete each other's temporary files. The lock is an
`fcntl.flock` on `FOLDER/.lock`: the kernel drops it when the holding
process exits, however it exits (`kill -9` included), so no stale lock is
ever left to clean up by hand. The file also records the holder's pid and
host, so a refused process can say who holds the folder.

On network file systems `flock` is only as good as the server's lock
support: NFSv4 and most cluster file systems honour it; NFSv3 without
`lockd`, and object stores mounted as folders (gcsfuse, s3fs), do not, and
there two processes on different machines can both get the lock.
"""

import fcntl
import os
import pathlib
import socket

from keras_evopose.api_export import keras_evopose_export

LOCK_FILE = ".lock"


@keras_evopose_export("keras_evopose.utils.FolderLockedError")
class FolderLockedError(RuntimeError):
    """Another live process holds the folder's lock (the message names
    its pid and host)."""


@keras_evopose_export("keras_evopose.utils.FolderLock")
class FolderLock:
    """An exclusive, non-blocking lock on a folder, as a context manager.

    Example:

    ```python
    with keras_evopose.utils.FolderLock("runs/s", "training run"):
        ...  # only this process writes runs/s
    ```

    Args:
        folder: the folder to lock (created if missing).
        what: what the folder holds, for the error message (e.g.
            `"training run"`, `"search"`).

    Raises:
        FolderLockedError: on `acquire` (or entering the `with` block)
            when another process holds the lock.
    """

    def __init__(self, folder, what="folder"):
        self.folder = pathlib.Path(folder)
        self.what = what
        self._descriptor = None

    @property
    def path(self):
        return self.folder / LOCK_FILE

    def acquire(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 256, 0).decode(errors="replace")
            os.close(descriptor)
            holder = holder.strip() or "another process"
            raise FolderLockedError(
                f"{self.folder} is in use by {holder} (another "
                f"{self.what} writes there); wait for it to end or stop "
                "it, or use another folder"
            ) from None
        # Only the holder writes its name; a reader refused above reads it.
        os.ftruncate(descriptor, 0)
        os.pwrite(
            descriptor,
            f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(),
            0,
        )
        self._descriptor = descriptor
        return self

    def release(self):
        if self._descriptor is not None:
            # Closing drops the flock; the file stays (removing it would
            # race a process that opened it and is about to lock it).
            os.close(self._descriptor)
            self._descriptor = None

    @property
    def held(self):
        return self._descriptor is not None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
