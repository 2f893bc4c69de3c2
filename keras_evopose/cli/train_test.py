"""`keras-evopose train` never saves a model whose training diverged."""

import pytest

from keras_evopose.cli import main


@pytest.mark.slow
def test_train_stops_on_nan_and_saves_nothing(coco_mini, tmp_path, capsys):
    model_path = tmp_path / "diverged.keras"
    # A learning rate this large sends the weights to inf in a step or two.
    status = main(
        [
            "train", "--preset", "test",
            "--annotations", str(coco_mini["annotations"]),
            "--images", str(coco_mini["images"]), "--epochs", "2",
            "--warmup-epochs", "0", "--steps-per-epoch", "3",
            "--batch-size", "4", "--base-learning-rate", "1e35",
            "--output", str(model_path), "--verbose", "0",
        ]
    )  # fmt: skip
    assert status == 1
    assert "NOT saved" in capsys.readouterr().err
    assert not model_path.exists()
