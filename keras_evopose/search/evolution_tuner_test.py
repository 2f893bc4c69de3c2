"""EvolutionTuner with a tiny stand-in model (fast): epochs, logs, NaN."""

import keras
import keras_tuner
import numpy as np
import pytest

from keras_evopose.search import EvolutionOracle
from keras_evopose.search import EvolutionTuner
from keras_evopose.search import SearchSpace
from keras_evopose.search import genotype_from_string
from keras_evopose.search.trial_timing import PHASES
from keras_evopose.utils.state_files import StateFileError


def make_hypermodel(loss):
    def build(hp):
        # Width from the genotype, so children differ in size.
        specs = genotype_from_string(hp.get("genotype"))
        width = int(specs[-1].split("_c")[1].split("_")[0])
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(width),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer="sgd", loss=loss)
        return model

    return build


class EpochCounter(keras.callbacks.Callback):
    """Appends each fit's epochs to a file: keras-tuner deep-copies
    callbacks per trial, so state kept on the instance would be lost."""

    def __init__(self, path):
        super().__init__()
        self.path = str(path)

    def on_train_begin(self, logs=None):
        with open(self.path, "a") as file:
            file.write(f"{self.params['epochs']}\n")


def nan_loss(y_true, y_pred):
    return keras.ops.mean(y_pred) * np.nan


def make_tuner(tmp_path, loss, max_trials):
    oracle = EvolutionOracle(
        objective=[
            keras_tuner.Objective("val_loss", "min"),
            keras_tuner.Objective("num_params", "min"),
        ],
        search_space=SearchSpace.from_preset("test"),
        max_trials=max_trials,
        seed=0,
    )
    tuner = EvolutionTuner(
        oracle,
        hypermodel=make_hypermodel(loss),
        ancestor_epochs=3,
        child_epochs=1,
        transfer_weights=False,
        directory=str(tmp_path),
        project_name="p",
    )
    return oracle, tuner


DATA = (
    np.ones((8, 4), "float32"),
    np.ones((8, 1), "float32"),
)


def test_epochs_and_size_logs(tmp_path):
    oracle, tuner = make_tuner(tmp_path, "mse", max_trials=2)
    record = tmp_path / "epochs.txt"
    tuner.search(
        *DATA,
        validation_data=DATA,
        callbacks=[EpochCounter(record)],
        verbose=0,
    )
    # User callbacks pass through; the ancestor trains longer.
    assert record.read_text().split() == ["3", "1"]
    ancestor, child = oracle.trials["0"], oracle.trials["1"]
    assert ancestor.status == child.status == "COMPLETED"
    assert child.hyperparameters.values["parent_trial_id"] == "0"
    # num_params reached the Oracle from the epoch logs.
    assert oracle.objective_values(ancestor)[1] == (4 * 24 + 24) + 25
    # Where each trial's wall time went, beside its metrics (trial.json).
    for trial in (child, ancestor):
        seconds = {
            name[len("time_") :]: oracle.metric_value(trial, name)
            for name in trial.metrics.metrics
            if name.startswith("time_")
        }
        phases = {
            k: v
            for k, v in seconds.items()
            if k not in ("wall", "training_share")
        }
        assert set(phases) == set(PHASES)
        assert all(value >= 0 for value in seconds.values())
        assert sum(phases.values()) == pytest.approx(seconds["wall"], rel=1e-6)
        assert seconds["build"] > 0 and seconds["trace"] > 0
    # The ancestor's 3 one-step epochs: the steps after the first train.
    assert seconds["train_steps"] > 0 and seconds["val_steps"] > 0
    # The last trial's split, with its end-of-trial writes.
    assert tuner.last_timing["state_writes"] > 0
    with pytest.raises(ValueError, match="ancestor_epochs and child_epochs"):
        tuner.run_trial(ancestor, *DATA, epochs=3)


def test_nan_loss_fails_the_trial_and_stops_cleanly(tmp_path):
    oracle, tuner = make_tuner(tmp_path, nan_loss, max_trials=3)
    tuner.search(*DATA, validation_data=DATA, verbose=0)
    # The ancestor failed (not retried); with nothing to mutate the search
    # stops instead of idling.
    assert [t.status for t in oracle.trials.values()] == ["FAILED"]
    assert "training loss is nan" in oracle.trials["0"].message


def test_bad_arguments(tmp_path):
    oracle = EvolutionOracle(search_space=SearchSpace.from_preset("test"))
    with pytest.raises(ValueError, match="child_epochs=0"):
        EvolutionTuner(oracle, child_epochs=0, directory=str(tmp_path))
    with pytest.raises(ValueError, match="needs an EvolutionOracle"):
        EvolutionTuner(
            keras_tuner.oracles.RandomSearchOracle(), directory=str(tmp_path)
        )


class ScriptedValLoss(keras.callbacks.Callback):
    """Replaces each epoch's val_loss with a script and saves the weights
    the model had at each epoch's end, to compare with the checkpoint."""

    def __init__(self, folder, script):
        super().__init__()
        self.folder = str(folder)
        self.script = list(script)

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.script[epoch]
        np.savez(f"{self.folder}/epoch_{epoch}.npz", *self.model.get_weights())


def test_checkpoint_holds_the_scored_epoch(tmp_path):
    oracle, tuner = make_tuner(tmp_path, "mse", max_trials=1)
    tuner.search(
        *DATA,
        validation_data=DATA,
        callbacks=[ScriptedValLoss(tmp_path, [3.0, 1.0, 2.0])],
        verbose=0,
    )
    trial = oracle.trials["0"]
    # Scored: epoch 1's val_loss; the checkpoint holds epoch 1's weights,
    # not the last epoch's.
    assert oracle.objective_values(trial)[0] == 1.0
    assert trial.best_step == 1
    model = tuner.load_model(trial)
    saved = np.load(tmp_path / "epoch_1.npz")
    last = np.load(tmp_path / "epoch_2.npz")
    for index, weight in enumerate(model.get_weights()):
        np.testing.assert_array_equal(weight, saved[f"arr_{index}"])
    assert any(
        not np.array_equal(saved[name], last[name]) for name in saved.files
    )
    # A checkpoint damaged since: one line naming it and the way out.
    path = tmp_path / "p" / "trial_0" / "checkpoint.weights.h5"
    data = path.read_bytes()
    for damaged in (data[:1000], data[:2048] + bytes(len(data) - 2048)):
        path.write_bytes(damaged)
        with pytest.raises(StateFileError) as raised:
            tuner.load_model(trial)
        assert str(raised.value).startswith(f"{path} is damaged (")
        assert str(raised.value).endswith(
            f"remove {path.parent} to re-run trial 0, then --resume"
        )


def test_max_model_size_counts_what_num_params_counts(tmp_path):
    def build(hp):
        inputs = keras.Input((4,))
        hidden = keras.layers.BatchNormalization()(
            keras.layers.Dense(8)(inputs)
        )
        model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
        model.compile(optimizer="sgd", loss="mse")
        return model

    # 40 + 9 trainable + 16 BN (gamma, beta trainable; mean, variance not)
    # = 81 weights in all, 65 of them trainable.
    oracle = EvolutionOracle(
        search_space=SearchSpace.from_preset("test"), max_trials=1, seed=0
    )
    tuner = EvolutionTuner(
        oracle,
        hypermodel=build,
        ancestor_epochs=1,
        max_model_size=70,
        directory=str(tmp_path),
        project_name="p",
    )
    tuner.search(*DATA, validation_data=DATA, verbose=0)
    trial = oracle.trials["0"]
    assert trial.status == "FAILED"
    assert "81 parameters (count_params) > max_model_size=70" in trial.message


def test_heartbeat_survives_a_restarting_chief(caplog):
    import time

    from keras_evopose.search.evolution_tuner import _Heartbeat

    class Chief:
        calls = []

        def update_trial(self, trial_id, metrics):
            self.calls.append((trial_id, metrics))
            if len(self.calls) <= 3:
                raise ConnectionError("chief restarting")

    chief = Chief()
    with caplog.at_level("WARNING"):
        heartbeat = _Heartbeat(chief, "4", 0.01)
        deadline = time.time() + 10
        while len(chief.calls) < 6 and time.time() < deadline:
            time.sleep(0.01)
        heartbeat.stop()
    # It kept beating through the failures, with empty metrics, and said
    # so once.
    assert len(chief.calls) >= 6
    assert all(call == ("4", {}) for call in chief.calls)
    warnings = [r for r in caplog.records if "heartbeat" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize("damage", ["truncated", "garbled", "missing"])
def test_a_damaged_parent_checkpoint_stops_the_search_naming_it(
    tmp_path, damage
):
    # What a child's weight transfer from a parent trial's checkpoint says
    # when that file no longer loads: the file, both trial folders to
    # remove, and a FatalError (ends the search, the child stays
    # unended) rather than h5py's message without a path.
    from keras_evopose.models import EvoPose2D
    from keras_evopose.models.presets import preset_arguments
    from keras_evopose.search.evolution_tuner import DamagedParentError
    from keras_evopose.search.evolution_tuner import _ParentCheckpointTransfer

    parent = EvoPose2D.from_preset("test")
    folder = tmp_path / "tuner" / "trial_0"
    folder.mkdir(parents=True)
    path = folder / "checkpoint.weights.h5"
    parent.save_weights(path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:1000])
    elif damage == "garbled":
        # The superblock intact, the rest noise.
        noise = np.random.default_rng(0).bytes(len(data) - 2048)
        path.write_bytes(data[:2048] + noise)
    else:
        path.unlink()
    child_dir = str(tmp_path / "tuner" / "trial_3")
    callback = _ParentCheckpointTransfer(
        str(path),
        list(preset_arguments("test", "backbone")["genotype"]),
        "0",
        "3",
        child_dir,
    )
    child = EvoPose2D.from_preset("test")
    callback.set_model(child)
    with pytest.raises(DamagedParentError) as raised:
        callback.on_train_begin()
    assert isinstance(raised.value, keras_tuner.errors.FatalError)
    message = str(raised.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(
        f"{path}, the checkpoint of trial 0 (the parent of trial 3), is "
        "damaged or missing ("
    )
    assert message.endswith(
        f"); remove {folder} and {child_dir}, then --resume (the search "
        "goes on without trial 0)"
    )
