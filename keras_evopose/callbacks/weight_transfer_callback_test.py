import copy
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_evopose.callbacks import WeightTransferCallback
from keras_evopose.models import EvoPose2D
from keras_evopose.models.presets import preset_arguments

# Module-scoped fixtures: the whole file on one xdist worker.
pytestmark = pytest.mark.xdist_group("weight_transfer_callback_test")

GENOTYPE = list(preset_arguments("test", "backbone")["genotype"])
# The child grows stage 4's kernel 3 -> 5: an adapted depthwise kernel.
CHILD_GENOTYPE = GENOTYPE[:3] + [GENOTYPE[3].replace("_k3_", "_k5_")]
KERNEL = "stage4_block1/dwconv/kernel"


def value(model, path):
    (variable,) = [v for v in model.weights if v.path == path]
    return keras.ops.convert_to_numpy(variable.value)


def fit_child(callback, epochs=1):
    """One epoch of two batches with a zero learning rate: the trainable
    weights after `fit` are the ones the callback placed."""
    child = EvoPose2D.from_preset("test", genotype=CHILD_GENOTYPE)
    child.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    images = np.zeros((4, 64, 48, 3), "float32")
    targets = np.zeros((4, 32, 24, 17), "float32")
    child.fit(
        images,
        targets,
        batch_size=2,
        epochs=epochs,
        verbose=0,
        callbacks=[callback],
    )
    return child


def begin_training(callback):
    """What `fit` does with the callback first, without compiling a step."""
    child = EvoPose2D.from_preset("test", genotype=CHILD_GENOTYPE)
    callback.set_model(child)
    callback.on_train_begin()
    return child


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    model = EvoPose2D.from_preset("test")
    # A distinct dwconv kernel, recognisable after transfer.
    for variable in model.weights:
        if variable.path == KERNEL:
            variable.assign(np.full(variable.shape, 0.5, "float32"))
    directory = tmp_path_factory.mktemp("parent")
    model.save(directory / "parent.keras")
    model.save_weights(directory / "parent.weights.h5")
    return model, directory


def check_transferred(child, callback):
    kernel = value(child, KERNEL)
    np.testing.assert_array_equal(kernel[1:4, 1:4], 0.5)
    assert callback.report[KERNEL].status == "adapted"
    assert callback.report.fresh == []


def test_from_weights_checkpoint_and_genotype(parent, capsys):
    _, directory = parent
    callback = WeightTransferCallback(
        directory / "parent.weights.h5", genotype=GENOTYPE
    )
    check_transferred(fit_child(callback), callback)
    assert "1 adapted" in capsys.readouterr().out


def test_from_keras_file_and_model(parent):
    model, directory = parent
    for source in (str(directory / "parent.keras"), model):
        callback = WeightTransferCallback(source, verbose=0)
        check_transferred(begin_training(callback), callback)


def test_genotype_string_and_deepcopy(parent):
    from keras_evopose.search import genotype_to_string

    model, directory = parent
    callback = WeightTransferCallback(
        str(directory / "parent.weights.h5"),
        genotype=genotype_to_string(GENOTYPE),
        verbose=0,
    )
    assert callback.genotype == list(GENOTYPE)
    copied = copy.deepcopy(callback)
    assert copied.parent == callback.parent
    assert copied.genotype == callback.genotype
    assert copied.genotype is not callback.genotype
    check_transferred(begin_training(copied), copied)
    assert callback.report is None
    # A model parent is shared, not duplicated.
    by_model = copy.deepcopy(WeightTransferCallback(model, verbose=0))
    assert by_model.load_parent(None) is model


def test_bad_arguments(parent, tmp_path):
    _, directory = parent
    with pytest.raises(ValueError, match="pass the parent's `genotype`"):
        WeightTransferCallback(directory / "parent.weights.h5")
    with pytest.raises(ValueError, match="`.keras` file"):
        WeightTransferCallback("parent.h5")
    with pytest.raises(ValueError, match="path or a Keras model"):
        WeightTransferCallback(3)
    with pytest.raises(FileNotFoundError, match="no parent file"):
        begin_training(WeightTransferCallback(str(tmp_path / "none.keras")))
    wrong_genotype = [g.replace("_r2_", "_r3_") for g in GENOTYPE]
    wrong = WeightTransferCallback(
        directory / "parent.weights.h5", genotype=wrong_genotype, verbose=0
    )
    with pytest.raises(ValueError, match="does not fit"):
        begin_training(wrong)


SCRIPT = """
import os, sys
import numpy as np
sys.path.insert(0, os.getcwd())
{setup}
from keras_evopose.callbacks import weight_transfer_callback_test as t
import keras
from keras_evopose.callbacks import WeightTransferCallback
from keras_evopose.models import EvoPose2D
from keras_evopose.search import transfer_weights

parent = EvoPose2D.from_preset("test")
for variable in parent.weights:
    if variable.path == t.KERNEL:
        variable.assign(np.full(variable.shape, 0.5, "float32"))
path = os.path.join(sys.argv[1], "parent.weights.h5")
parent.save_weights(path)
same = EvoPose2D.from_preset("test")
report = transfer_weights(parent, same)
assert len(report.copied) == len(same.weights), report
for a, b in zip(parent.weights, same.weights):
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(a.value), keras.ops.convert_to_numpy(b.value)
    )
callback = WeightTransferCallback(path, genotype=t.GENOTYPE, verbose=0)
{fit}
t.check_transferred(child, callback)
print("OK", keras.backend.backend())
"""


def run_script(tmp_path, env, setup="", fit="child = t.fit_child(callback)"):
    code = textwrap.dedent(SCRIPT).format(setup=setup, fit=fit)
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env={**os.environ, **env},
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_jax_backend(tmp_path):
    assert "OK jax" in run_script(tmp_path, {"KERAS_BACKEND": "jax"})


MIRRORED_SETUP = """
import tensorflow as tf
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
"""

MIRRORED_FIT = """
with strategy.scope():
    child = t.fit_child(callback)
assert "Mirrored" in type(child.weights[0].value).__name__, type(
    child.weights[0].value)
"""


@pytest.mark.slow
def test_mirrored_strategy_two_cpus(tmp_path):
    out = run_script(
        tmp_path,
        {"KERAS_BACKEND": "tensorflow"},
        setup=MIRRORED_SETUP,
        fit=MIRRORED_FIT,
    )
    assert "OK tensorflow" in out


def test_parent_genotype_with_head_steps_rebuilds_its_head(parent):
    # A search with head genes: the parent's genotype names its head (the
    # test preset's three steps of 16); the child widens step 2.
    model, directory = parent
    callback = WeightTransferCallback(
        directory / "parent.weights.h5",
        genotype=GENOTYPE + ["up_c16"] * 3,
        verbose=0,
    )
    child = EvoPose2D.from_preset(
        "test", genotype=GENOTYPE + ["up_c16", "up_c32", "up_c16"]
    )
    callback.set_model(child)
    callback.on_train_begin()
    path = "head/deconv2/kernel"
    assert callback.report[path].status == "adapted"
    np.testing.assert_array_equal(
        value(child, path)[:, :, :16], value(model, path)
    )
    assert callback.report.fresh == []
