"""Preset folders written beside and renamed into place."""

import contextlib
import errno
import json
import os
import shutil
import tempfile

from keras_evopose.utils.state_files import DiskFullError
from keras_evopose.utils.state_files import write_json_atomically

METADATA_FILE = "metadata.json"
CONFIG_FILE = "config.json"
# The key of this library's fields in keras-hub's `metadata.json`.
METADATA_KEY = "keras_evopose"

# Temporary folders a `save_to_preset` of this process is filling: a task's
# save writes its backbone into its own folder, which must not be swapped
# a second time.
_FILLING = set()


@contextlib.contextmanager
def preset_folder(preset_dir):
    """Yields the folder to write `preset_dir`'s files into.

    A new folder beside `preset_dir`, renamed to `preset_dir` when the
    block ends without error (the previous preset, if any, is removed
    only then), so an interrupted save leaves the old preset or none,
    never a mix. Inside a save already under way, `preset_dir` itself.

    Raises:
        ValueError: if `preset_dir` is a file, or a non-empty folder that
            holds no preset (it would be replaced whole).
        DiskFullError: if the disk fills up (naming `preset_dir`).
    """
    target = os.path.abspath(str(preset_dir))
    if target in _FILLING:
        yield target
        return
    if os.path.exists(target):
        if not os.path.isdir(target):
            raise ValueError(
                f"save_to_preset: {preset_dir} is a file; pass a folder path."
            )
        if os.listdir(target) and not os.path.exists(
            os.path.join(target, CONFIG_FILE)
        ):
            raise ValueError(
                f"save_to_preset: {preset_dir} holds files but no preset "
                f"({CONFIG_FILE}); the preset replaces the whole folder, so "
                "pass a new or empty folder."
            )
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(target)
    temporary = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
    _FILLING.add(temporary)
    try:
        yield temporary
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in (
            errno.ENOSPC,
            errno.EDQUOT,
        ):
            raise DiskFullError(target) from None
        raise
    finally:
        _FILLING.discard(temporary)
    if os.path.exists(target):
        previous = tempfile.mkdtemp(
            prefix=f".{name}.", suffix=".old", dir=parent
        )
        os.replace(target, previous)
        os.replace(temporary, target)
        shutil.rmtree(previous, ignore_errors=True)
    else:
        os.replace(temporary, target)


def check_not_architecture(preset, owner):
    """Raises if `preset` names one of this library's architectures
    (`EvoPose2D.presets`) rather than a preset folder or handle."""
    from keras_evopose.models import presets as preset_lib

    if preset in preset_lib.list_presets() and not os.path.exists(preset):
        raise ValueError(
            f"{owner}.from_preset({preset!r}): {preset!r} is an EvoPose2D "
            "architecture, not a keras-hub preset. Build it with "
            f"keras_evopose.models.EvoPose2D.from_preset({preset!r}), train "
            "it, then EvoPose2DPoseEstimator.from_model(model); from_preset "
            "here loads a preset folder or an hf:// / kaggle:// handle."
        )


def update_metadata(preset_dir, fields):
    """Adds `fields` under `METADATA_KEY` to keras-hub's `metadata.json`."""
    path = os.path.join(preset_dir, METADATA_FILE)
    with open(path) as handle:
        metadata = json.load(handle)
    metadata.setdefault(METADATA_KEY, {}).update(fields)
    write_json_atomically(path, metadata, indent=4)
