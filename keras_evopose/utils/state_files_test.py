import json
import os

import pytest

from keras_evopose.utils.state_files import StateFileError
from keras_evopose.utils.state_files import read_json_state
from keras_evopose.utils.state_files import remove_partial_files
from keras_evopose.utils.state_files import write_atomically
from keras_evopose.utils.state_files import write_json_atomically


def test_json_written_whole_with_a_normal_mode(tmp_path):
    path = write_json_atomically(tmp_path / "a" / "state.json", {"x": [1]})
    assert json.loads(path.read_text()) == {"x": [1]}
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = write_json_atomically(tmp_path / "state.json", {"old": True})

    def broken(temporary):
        with open(temporary, "w") as file:
            file.write("{")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, broken)
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_the_temporary_name_keeps_the_suffix(tmp_path):
    seen = []
    write_atomically(
        tmp_path / "checkpoint.weights.h5",
        lambda temporary: (seen.append(temporary), open(temporary, "w")),
    )
    assert seen[0].endswith(".weights.h5")
    assert (tmp_path / "checkpoint.weights.h5").exists()


def test_partial_files_of_a_killed_write_are_found(tmp_path):
    (tmp_path / "trial_1").mkdir()
    left = tmp_path / "trial_1" / ".trial.partial-abc123.json"
    left.write_text("{")
    keep = tmp_path / "trial_1" / "trial.json"
    keep.write_text("{}")
    assert remove_partial_files(tmp_path) == [left]
    assert keep.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ('{"a": ', "truncated or corrupt"),
    ],
)
def test_damaged_file_message_names_file_and_remedy(tmp_path, content, message):
    path = tmp_path / "oracle.json"
    path.write_text(content)
    with pytest.raises(StateFileError, match=message) as info:
        read_json_state(path, "remove it")
    assert str(path) in str(info.value)
    assert str(info.value).endswith("remove it")


def _mount_small_disk(folder, size):
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
    )
    if mounted.returncode:
        pytest.skip("mounting a tmpfs is not permitted here")


def _unmount(folder):
    import subprocess

    subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_is_one_error_naming_the_path(tmp_path, capfd):
    import keras

    from keras_evopose.utils.state_files import DiskFullError
    from keras_evopose.utils.state_files import write_weights_atomically

    disk = tmp_path / "disk"
    _mount_small_disk(disk, "256k")
    try:
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(512)])
        old = write_json_atomically(disk / "pareto.json", {"old": True})
        (disk / "filler").write_bytes(b"x" * (200 * 1024))
        checkpoint = disk / "trial_0" / "checkpoint.weights.h5"
        # ~130 kB of weights: HDF5 written straight here used to flood
        # stderr from h5py and could crash the process (SIGSEGV).
        with pytest.raises(DiskFullError) as full:
            write_weights_atomically(checkpoint, model)
        assert str(full.value).startswith(
            f"no space left on the device to write {checkpoint} ("
        )
        assert "h5py" not in capfd.readouterr().err
        with pytest.raises(DiskFullError, match="to write .*pareto.json"):
            write_json_atomically(disk / "pareto.json", {"new": "x" * 10**5})
        assert json.loads(old.read_text()) == {"old": True}
        assert not [p for p in disk.rglob(".*") if p.is_file()]
        # Space freed: the same write succeeds and reads back.
        (disk / "filler").unlink()
        write_weights_atomically(checkpoint, model)
        copy = keras.Sequential([keras.Input((64,)), keras.layers.Dense(512)])
        copy.load_weights(checkpoint)
        for a, b in zip(model.get_weights(), copy.get_weights()):
            assert (a == b).all()
    finally:
        _unmount(disk)


def test_only_stale_temporary_files_go_where_others_write(tmp_path):
    import time

    stale = tmp_path / "trial_1" / ".checkpoint.partial-ab.weights.h5"
    fresh = tmp_path / "trial_2" / ".checkpoint.partial-cd.weights.h5"
    for path in (stale, fresh):
        path.parent.mkdir()
        path.write_bytes(b"half")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    # A chief: a worker may be writing the fresh one right now.
    assert remove_partial_files(tmp_path, older_than=180) == [stale]
    assert fresh.exists()
    # The only writer (a single-process search) removes every one.
    assert remove_partial_files(tmp_path) == [fresh]
