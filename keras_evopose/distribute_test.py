import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import pytest

from keras_evopose import distribute

ROOT = pathlib.Path(__file__).resolve().parents[1]

MIRRORED_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf

# Two logical CPUs; this must happen before TensorFlow initializes.
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
import keras
from keras_evopose.distribute import average_replica_statistics
from keras_evopose.distribute import strategy_from_flags
from keras_evopose.losses import HeatmapMSE
from keras_evopose.models import EvoPose2D

strategy = strategy_from_flags(devices=["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
with strategy.scope():
    model = EvoPose2D.from_preset("test")
    model.compile(optimizer="adam", loss=HeatmapMSE())
assert "Mirrored" in type(model.weights[0].value).__name__, type(
    model.weights[0].value
)
rng = np.random.default_rng(0)
images = rng.normal(size=(8, 64, 48, 3)).astype("float32")
heatmaps = rng.uniform(size=(8, 32, 24, 17)).astype("float32")
history = model.fit(images, heatmaps, batch_size=4, epochs=2, verbose=0)
assert np.isfinite(history.history["loss"]).all()

def replica_gap():
    gaps = []
    for variable in model.non_trainable_variables:
        first, second = (copy.numpy() for copy in variable.value.values)
        gaps.append(float(np.abs(first - second).max()))
    return max(gaps)

# Each replica updated its own BatchNormalization statistics.
assert replica_gap() > 0
assert average_replica_statistics(model) == len(model.non_trainable_variables)
assert replica_gap() == 0
path = sys.argv[1]
model.save(path)
restored = keras.saving.load_model(path)
np.testing.assert_allclose(
    restored.predict(images, verbose=0), model.predict(images, verbose=0),
    atol=1e-6,
)
print("MIRRORED_OK")
"""

JAX_SCRIPT = """
import numpy as np
import keras
from keras_evopose.distribute import data_parallel
from keras_evopose.losses import HeatmapMSE
from keras_evopose.models import EvoPose2D

distribution = data_parallel()
assert distribution.device_mesh.shape == (2,), distribution.device_mesh.shape
with distribution.scope():
    model = EvoPose2D.from_preset("test")
    model.compile(optimizer="adam", loss=HeatmapMSE())
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 64, 48, 3)).astype("float32")
    heatmaps = rng.uniform(size=(8, 32, 24, 17)).astype("float32")
    history = model.fit(images, heatmaps, batch_size=4, epochs=2, verbose=0)
assert np.isfinite(history.history["loss"]).all()
sharding = model.weights[0].value.sharding
assert len(sharding.device_set) == 2, sharding
print("DATA_PARALLEL_OK")
"""


def run_script(script, env_updates, *arguments):
    env = dict(os.environ, **env_updates)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, arguments)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    output = run_script(
        MIRRORED_SCRIPT,
        {"KERAS_BACKEND": "tensorflow"},
        tmp_path / "mirrored.keras",
    )
    assert "MIRRORED_OK" in output


@pytest.mark.slow
def test_jax_data_parallel_on_two_host_devices():
    pytest.importorskip("jax")
    output = run_script(
        JAX_SCRIPT,
        {
            "KERAS_BACKEND": "jax",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        },
    )
    assert "DATA_PARALLEL_OK" in output


def test_tpu_without_a_tpu_fails_clearly():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute needs the TensorFlow backend")
    with pytest.raises(ValueError, match="No TPU could be reached") as error:
        distribute.distribution_scope(tpu="local")
    assert "--tpu='local'" in str(error.value)
    with pytest.raises(ValueError, match="`tpu` is empty"):
        distribute.tpu_strategy("")


def test_strategy_flag_errors():
    with pytest.raises(ValueError, match="either"):
        distribute.strategy_from_flags(tpu="local", mirrored=True)
    if keras.backend.backend() != "jax":
        with pytest.raises(ValueError, match="KERAS_BACKEND=jax"):
            distribute.data_parallel()


def test_default_scope_is_the_default_strategy():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute needs the TensorFlow backend")
    import tensorflow as tf

    strategy = distribute.strategy_from_flags()
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_train_command_with_tpu_flag_fails_clearly(coco_mini, tmp_path, capsys):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute needs the TensorFlow backend")
    from keras_evopose.cli import main

    status = main(
        [
            "train",
            "--preset",
            "test",
            "--annotations",
            str(coco_mini["annotations"]),
            "--images",
            str(coco_mini["images"]),
            "--output",
            str(tmp_path / "run"),
            "--tpu",
            "local",
        ]
    )
    assert status == 2
    error = capsys.readouterr().err
    assert "No TPU could be reached for --tpu='local'" in error
    assert not (tmp_path / "model.keras").exists()


def test_search_command_with_tpu_flag_fails_clearly(tmp_path, capsys):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute needs the TensorFlow backend")
    from keras_evopose.cli import main

    output = tmp_path / "search"
    status = main(["search", "--tpu", "local", "--output", str(output)])
    assert status == 2
    assert "No TPU could be reached" in capsys.readouterr().err
    assert not output.exists()
