"""`keras-evopose train --config`: the reference's settings per preset."""

import pathlib

import pytest

from keras_evopose.cli import build_parser
from keras_evopose.cli import main
from keras_evopose.cli.train import _config_from_flags

ROOT = pathlib.Path(__file__).resolve().parents[2]

REFERENCE = {
    # preset, batch (bfloat16 TPU runs), peak rate 2.5e-4 * batch / 32
    "xs": ("extra_small", 512, 4e-3),
    "s": ("small", 512, 4e-3),
    "m": ("medium", 256, 2e-3),
    "l": ("large", 128, 1e-3),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_configs_load(name, coco_mini, tmp_path):
    from keras_evopose.training import batch_scaled_learning_rate

    path = ROOT / "configs" / f"evopose2d_{name}_train.yaml"
    args = build_parser(["train"]).parse_args(
        ["train", "--config", str(path),
         "--annotations", str(coco_mini["annotations"]),
         "--images", str(coco_mini["images"]),
         "--output", str(tmp_path / "run")]
    )  # fmt: skip
    config = _config_from_flags(args)
    preset, batch, peak = REFERENCE[name]
    assert (config.preset, config.batch_size) == (preset, batch)
    assert config.epochs == 200 and config.warmup_epochs == 5
    assert config.precision == "mixed_bfloat16"
    assert batch_scaled_learning_rate(
        config.batch_size, config.base_learning_rate
    ) == pytest.approx(peak)
    # A flag overrides the file.
    args.batch_size = 64
    assert _config_from_flags(args).batch_size == 64


def test_bfloat16_trains_on_cpu_through_a_config_file(
    coco_mini, tmp_path, capsys
):
    import keras

    config = tmp_path / "tiny.yaml"
    config.write_text(
        "preset: test\nepochs: 2\nwarmup_epochs: 0\nbatch_size: 4\n"
        "steps_per_epoch: 2\nprecision: mixed_bfloat16\n"
    )
    run = tmp_path / "run"
    status = main(
        ["train", "--config", str(config),
         "--annotations", str(coco_mini["annotations"]),
         "--images", str(coco_mini["images"]), "--output", str(run),
         "--verbose", "0"]
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    model = keras.saving.load_model(run / "last.keras")
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert model.backbone.layers[1].compute_dtype == "bfloat16"
    # The global policy is back to what it was.
    assert keras.config.dtype_policy().name == "float32"


def test_unknown_config_keys_are_one_line(coco_mini, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("preset: test\nlearning_rate: 1e-3\n")
    status = main(
        ["train", "--config", str(config),
         "--annotations", str(coco_mini["annotations"]),
         "--images", str(coco_mini["images"]),
         "--output", str(tmp_path / "run")]
    )  # fmt: skip
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1
    assert "learning_rate" in error and str(config) in error
    assert not (tmp_path / "run").exists()
