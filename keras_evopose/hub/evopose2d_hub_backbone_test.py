import json
import os
import subprocess

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from keras_evopose.hub import EvoPose2DHubBackbone  # noqa: E402
from keras_evopose.hub import preset_folder  # noqa: E402
from keras_evopose.models import EvoPose2DBackbone  # noqa: E402
from keras_evopose.models import count_flops  # noqa: E402
from keras_evopose.models.presets import preset_arguments  # noqa: E402
from keras_evopose.utils.state_files import DiskFullError  # noqa: E402


def _perturb(backbone, seed):
    """Moves every weight away from its initial value (BN variances
    stay > 0)."""
    rng = np.random.default_rng(seed)
    backbone.set_weights(
        [
            w * rng.uniform(0.5, 1.5, w.shape).astype(w.dtype)
            for w in backbone.get_weights()
        ]
    )
    return backbone


def _backbone():
    return _perturb(
        EvoPose2DHubBackbone(**preset_arguments("test", "backbone")), 0
    )


def test_save_to_preset_round_trips_replaces_and_survives_a_full_disk(
    tmp_path, monkeypatch
):
    backbone = _backbone()
    target = tmp_path / "preset"
    backbone.save_to_preset(target)
    loaded = keras_hub.models.Backbone.from_preset(str(target))
    assert type(loaded) is EvoPose2DHubBackbone
    assert isinstance(loaded, EvoPose2DBackbone)
    images = np.random.default_rng(1).normal(size=(2, 64, 48, 3))
    images = images.astype("float32")
    np.testing.assert_array_equal(loaded(images), backbone(images))
    assert loaded.get_config() == backbone.get_config()
    with open(target / "metadata.json") as handle:
        metadata = json.load(handle)
    assert metadata["parameter_count"] == backbone.count_params()
    assert metadata["keras_evopose"] == {
        "version": metadata["keras_evopose"]["version"],
        "backbone_genotype": list(backbone.genotype),
        "input_size": [64, 48],
        "backbone_parameter_count": backbone.count_params(),
        "backbone_flops": count_flops(backbone, (64, 48, 3)),
    }
    weights = (target / "model.weights.h5").read_bytes()

    # A save that fails half-way leaves the earlier preset as it was.
    def fail(folder, fields):
        raise OSError("disk full")

    monkeypatch.setattr(preset_folder, "update_metadata", fail)
    _perturb(backbone, seed=1)
    with pytest.raises(OSError, match="disk full"):
        backbone.save_to_preset(target)
    assert (target / "model.weights.h5").read_bytes() == weights
    assert sorted(os.listdir(tmp_path)) == ["preset"]
    monkeypatch.undo()

    backbone.save_to_preset(target)
    assert (target / "model.weights.h5").read_bytes() != weights
    assert sorted(os.listdir(tmp_path)) == ["preset"]

    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(ValueError, match="notes holds files but no preset"):
        backbone.save_to_preset(other)
    assert os.listdir(other) == ["todo.txt"]

    # A full disk: room for one test-backbone preset (~220 kB), not for a
    # second one beside it.
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(disk)],
        capture_output=True,
    )
    if mounted.returncode:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        backbone.save_to_preset(disk / "preset")
        weights = (disk / "preset" / "model.weights.h5").read_bytes()
        _perturb(backbone, seed=2)
        with pytest.raises(DiskFullError, match=r"to write .*disk/preset \("):
            backbone.save_to_preset(disk / "preset")
        assert sorted(os.listdir(disk)) == ["preset"]
        assert (disk / "preset" / "model.weights.h5").read_bytes() == weights
    finally:
        subprocess.run(["umount", str(disk)], check=False)
