"""`keras-evopose write-tfrecords` -> `keras-evopose train --tfrecords`."""

import json

from keras_evopose.cli import main


def test_write_then_train_on_tfrecords(coco_mini, tmp_path, capsys):
    prefix = tmp_path / "records" / "val"
    prefix.parent.mkdir()
    status = main(
        ["write-tfrecords", "--annotations", str(coco_mini["annotations"]),
         "--images", str(coco_mini["images"]), "--output", str(prefix),
         "--examples-per-shard", "50"]
    )  # fmt: skip
    assert status == 0
    assert "wrote 2 shard(s)" in capsys.readouterr().out
    run = tmp_path / "run"
    status = main(
        ["train", "--preset", "test", "--tfrecords", f"{prefix}-*",
         "--epochs", "1", "--batch-size", "40", "--output", str(run),
         "--verbose", "0"]
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    state = json.loads((run / "checkpoint.json").read_text())
    # 80 people in the shards, batch 40: counted, two steps an epoch.
    assert state["steps_per_epoch"] == 2 and state["iterations"] == 2
    config = json.loads((run / "train_config.json").read_text())
    assert config["tfrecords"].endswith("val-*") and config["images"] is None


def test_write_tfrecords_bad_paths_are_one_line(coco_mini, tmp_path, capsys):
    status = main(
        ["write-tfrecords", "--annotations", str(coco_mini["annotations"]),
         "--images", str(coco_mini["images"]),
         "--output", str(tmp_path / "missing" / "val")]
    )  # fmt: skip
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1
    assert "does not exist" in error
