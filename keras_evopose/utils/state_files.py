"""Crash-safe state files: write to a temporary file, rename into place.

A search is killed at any moment (a pre-empted machine, `kill -9`, a full
disk). Every file it resumes from is therefore written next to its final
path and renamed over it, so a reader sees the old file or the new one,
never a truncated one. Reading names the file and what to do when it is
damaged anyway (written by something else, or by an older version).
"""

import errno
import io
import json
import os
import pathlib
import shutil
import tempfile

from keras_evopose.api_export import keras_evopose_export

# In every temporary file's name, so a crash's leftovers can be found.
TEMPORARY_MARK = ".partial-"


def _file_mode():
    # mkstemp creates 0600 files; a renamed state file gets the mode a
    # plain `open(path, "w")` would give (other users of a shared project
    # folder can read it).
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@keras_evopose_export("keras_evopose.utils.StateFileError")
class StateFileError(ValueError):
    """A state file is missing, truncated or not what it should be.

    The message names the file and the way out (which file or folder to
    remove, or which flag to use).
    """


@keras_evopose_export("keras_evopose.utils.DiskFullError")
class DiskFullError(OSError):
    """The disk (or the user's quota) filled up while a state file was
    written. The old file, if any, is intact and no temporary file is
    left; the message names the path and how much space is free."""

    def __init__(self, path):
        path = pathlib.Path(path)
        try:
            free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB"
        except OSError:
            free = "unknown space"
        self.message = (
            f"no space left on the device to write {path} ({free} free "
            f"there); free space on that disk"
        )
        super().__init__(errno.ENOSPC, self.message)
        self.path = path

    def __str__(self):
        return self.message


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@keras_evopose_export("keras_evopose.utils.write_atomically")
def write_atomically(path, write):
    """Writes `path` through a temporary file in the same directory.

    Args:
        path: the final file path.
        write: a function of the temporary path that writes the content
            there. The temporary name ends like `path` (e.g.
            `.weights.h5`, `.png`), so writers that check the suffix work.

    Returns:
        The final path, as a `pathlib.Path`.
    """
    path = pathlib.Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The suffix of `path` is kept whole: Keras wants `.weights.h5`.
        suffix = "".join(path.suffixes) or ".tmp"
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{path.name.split('.')[0]}{TEMPORARY_MARK}",
            suffix=suffix,
            dir=path.parent,
        )
    except OSError as error:
        if error.errno in _DISK_FULL:
            raise DiskFullError(path) from None
        raise
    os.close(descriptor)
    try:
        os.chmod(temporary, _file_mode())
        write(temporary)
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            raise DiskFullError(path) from None
        raise
    return path


def _weights_h5_bytes(model, objects_to_skip=()):
    """The bytes `model.save_weights` would write (without the weights of
    `objects_to_skip`, as `keras.saving.save_weights`), made in memory;
    `None` where this Keras has moved the internals it needs."""
    try:
        from keras.src.saving import saving_lib

        buffer = io.BytesIO()
        store = saving_lib.H5IOStore(buffer, mode="w")
        saving_lib._save_state(
            model,
            weights_store=store,
            assets_store=None,
            inner_path="",
            visited_saveables=set(id(o) for o in objects_to_skip),
        )
        store.close()
    except (ImportError, AttributeError, TypeError):
        return None
    return buffer.getvalue()


@keras_evopose_export("keras_evopose.utils.write_weights_atomically")
def write_weights_atomically(path, model, objects_to_skip=()):
    """`model.save_weights(path)` (a `.weights.h5` file), crash- and
    disk-full-safe; with `objects_to_skip` (layers), the weights of the
    others only, as `keras.saving.save_weights(..., objects_to_skip)`.

    HDF5 written straight to a full disk floods stderr and can crash the
    process inside h5py's `File.close` (SIGSEGV). So the file is made in
    memory (the size of the weights) and written with plain file writes,
    whose failure is an ordinary `OSError`: a full disk raises
    `DiskFullError` naming `path`, leaving the old file and no temporary
    one.

    Returns:
        The final path, as a `pathlib.Path`.
    """
    if not model.built:
        raise ValueError(
            f"cannot save the weights of an unbuilt model to {path}"
        )
    data = _weights_h5_bytes(model, objects_to_skip)
    if data is None:

        def write_with_keras(temporary):
            import keras

            keras.saving.save_weights(
                model, temporary, objects_to_skip=objects_to_skip or None
            )

        return write_atomically(path, write_with_keras)

    def write(temporary):
        with open(temporary, "wb") as file:
            file.write(data)

    return write_atomically(path, write)


@keras_evopose_export("keras_evopose.utils.remove_partial_files")
def remove_partial_files(folder, older_than=None):
    """Deletes the temporary files a killed `write_atomically` left.

    Only call it while nothing else writes into `folder` (a single-process
    search at start-up, holding the folder's lock): another process's
    temporary file is in use. Where others may write (a distributed
    search's workers), pass `older_than`: only files not modified for that
    many seconds go (a write takes seconds; a killed one stays still).

    Returns:
        The removed paths.
    """
    import time

    removed = []
    for path in pathlib.Path(folder).rglob(f".*{TEMPORARY_MARK}*"):
        try:
            if not path.is_file() or (
                older_than is not None
                and time.time() - path.stat().st_mtime < older_than
            ):
                continue
            path.unlink()
        except FileNotFoundError:  # Its writer renamed or removed it.
            continue
        removed.append(path)
    return removed


@keras_evopose_export("keras_evopose.utils.write_json_atomically")
def write_json_atomically(path, value, indent=None):
    """Writes `value` as JSON to `path` with `write_atomically`."""
    text = json.dumps(value, indent=indent)

    def write(temporary):
        with open(temporary, "w") as file:
            file.write(text)

    return write_atomically(path, write)


@keras_evopose_export("keras_evopose.utils.read_json_state")
def read_json_state(path, remedy):
    """Reads a JSON state file; a damaged one raises `StateFileError`.

    Args:
        path: the file to read.
        remedy: what the user can do, e.g. `"remove trial_3 to re-run it"`;
            it ends the one-line message.

    Returns:
        The decoded JSON value.
    """
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StateFileError(f"{path} is missing; {remedy}") from None
    except UnicodeDecodeError:
        raise StateFileError(f"{path} is not UTF-8 text; {remedy}") from None
    if not text.strip():
        raise StateFileError(
            f"{path} is empty (truncated by a crash); {remedy}"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise StateFileError(
            f"{path} is truncated or corrupt ({error.msg} at character "
            f"{error.pos}); {remedy}"
        ) from None
