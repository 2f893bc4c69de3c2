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
