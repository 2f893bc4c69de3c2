"""Per-trial optimizers through EvolutionTuner (tiny stand-in model)."""

import json
import types

import keras
import keras_tuner
import numpy as np
import pytest

from keras_evopose.search import EvolutionOracle
from keras_evopose.search import EvolutionTuner
from keras_evopose.search import SearchSpace
from keras_evopose.search.evopose2d_hypermodel import FITNESS_METRIC
from keras_evopose.search.evopose2d_hypermodel import EvoPose2DHyperModel
from keras_evopose.search.trial_optimizer import TrialOptimizer
from keras_evopose.search.trial_optimizer import steps_per_epoch_of


class TinyHyperModel(EvoPose2DHyperModel):
    """EvoPose2DHyperModel's compile and fit on a 1x1 conv "pose" model."""

    def build(self, hp):
        model = keras.Sequential(
            [
                keras.Input((4, 3, 1)),
                keras.layers.Conv2D(
                    2,
                    1,
                    kernel_regularizer=self.model_kwargs["kernel_regularizer"],
                ),
            ]
        )
        self._compile(model, self.compile_kwargs.get("optimizer", "adam"))
        return model


class OptimizerRecorder(keras.callbacks.Callback):
    """Appends what the optimizer says at the last step and after fit to
    a file (keras-tuner deep-copies callbacks per trial)."""

    def __init__(self, path):
        super().__init__()
        self.path = str(path)

    def on_train_begin(self, logs=None):
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))

    def on_train_end(self, logs=None):
        optimizer = self.model.optimizer
        record = {
            "epochs": self.params["epochs"],
            "steps": self.params["steps"],
            "iterations": int(optimizer.iterations),
            "first_rate": self.rates[0],
            "last_step_rate": self.rates[-1],
            "end_rate": float(optimizer.learning_rate),
        }
        with open(self.path, "a") as file:
            file.write(json.dumps(record) + "\n")


X = np.linspace(0, 1, 8 * 12, dtype="float32").reshape(8, 4, 3, 1)
Y = np.concatenate([X, 1 - X], axis=-1)


def search(tmp_path, hypermodel, objective="val_loss", child_epochs=1):
    oracle = EvolutionOracle(
        objective=[
            keras_tuner.Objective(objective, "min"),
            keras_tuner.Objective("num_params", "min"),
        ],
        search_space=SearchSpace.from_preset("test"),
        max_trials=2,
        seed=0,
    )
    tuner = EvolutionTuner(
        oracle,
        hypermodel=hypermodel,
        ancestor_epochs=2,
        child_epochs=child_epochs,
        transfer_weights=False,
        directory=str(tmp_path),
        project_name="p",
    )
    path = tmp_path / "optimizer.jsonl"
    tuner.search(
        X,
        Y,
        batch_size=4,
        validation_data=(X, Y),
        callbacks=[OptimizerRecorder(path)],
        verbose=0,
    )
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return oracle, records


@pytest.mark.parametrize("child_epochs", [1, 3])
def test_each_trial_reaches_the_schedule_end_on_its_last_step(
    tmp_path, child_epochs
):
    hypermodel = TinyHyperModel(trial_optimizer=TrialOptimizer(0.01))
    oracle, records = search(tmp_path, hypermodel, FITNESS_METRIC, child_epochs)
    # The ancestor (2 epochs) and one child, 2 steps an epoch.
    assert [(r["epochs"], r["steps"]) for r in records] == [
        (2, 2),
        (child_epochs, 2),
    ]
    for record in records:
        steps = record["epochs"] * record["steps"]
        assert record["iterations"] == steps
        assert record["first_rate"] == pytest.approx(0.01, rel=1e-6)
        # Cosine to 0 over exactly this trial's steps: the rate of the
        # last step is the schedule's last non-zero value, and the
        # optimizer reads 0 (the end value) once it is taken.
        expected_last = 0.005 * (1 + np.cos(np.pi * (steps - 1) / steps))
        assert record["last_step_rate"] == pytest.approx(
            expected_last, rel=1e-4
        )
        assert record["end_rate"] == pytest.approx(0.0, abs=1e-9)
    # Scored on the heatmap error without the L2 terms.
    for trial in oracle.trials.values():
        assert trial.status == "COMPLETED"
        heatmap = oracle.metric_value(trial, FITNESS_METRIC)
        loss = oracle.metric_value(trial, "val_loss")
        assert 0 < heatmap < loss


def test_a_users_own_optimizer_still_works(tmp_path):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.02, 1, 0.5)
    hypermodel = TinyHyperModel(
        compile_kwargs={"optimizer": keras.optimizers.SGD(schedule)}
    )
    assert hypermodel.trial_optimizer is None
    _, records = search(tmp_path, hypermodel)
    assert records[0]["first_rate"] == pytest.approx(0.02, rel=1e-6)
    assert records[0]["end_rate"] == pytest.approx(0.02 * 0.5**4, rel=1e-5)


def test_recipe_defaults_and_bad_arguments():
    hypermodel = EvoPose2DHyperModel("test")
    assert hypermodel.model_kwargs["kernel_regularizer"].l2 == pytest.approx(
        1e-5
    )
    assert isinstance(hypermodel.trial_optimizer, TrialOptimizer)
    assert hypermodel.trial_optimizer.learning_rate == 4e-3
    no_l2 = EvoPose2DHyperModel("test", {"kernel_regularizer": None})
    assert no_l2.model_kwargs["kernel_regularizer"] is None
    with pytest.raises(ValueError, match="ancestor_weights must be None"):
        EvoPose2DHyperModel("test", ancestor_weights="coco")
    with pytest.raises(ValueError, match="learning_rate=0"):
        TrialOptimizer(0)
    with pytest.raises(ValueError, match="schedule='step'"):
        TrialOptimizer(schedule="step")
    config = TrialOptimizer(1e-3, "constant").get_config()
    assert TrialOptimizer.from_config(config).get_config() == config


def test_steps_per_epoch_from_fit_or_data():
    assert steps_per_epoch_of(X, {"batch_size": 3}) == 3
    assert steps_per_epoch_of(X, {}) == 1
    assert steps_per_epoch_of({"image": X}, {"batch_size": 4}) == 2
    assert steps_per_epoch_of(iter([]), {"steps_per_epoch": 7}) == 7
    with pytest.raises(ValueError, match="Pass steps_per_epoch=N"):
        steps_per_epoch_of(iter([]), {})


class TinyBackboneHyperModel(TinyHyperModel):
    def build(self, hp):
        model = super().build(hp)
        # Stands in for EvoPose2D.backbone (what the ImageNet copy needs).
        model.backbone = types.SimpleNamespace(image_shape=(4, 3, 1))
        return model


def test_imagenet_weights_for_the_ancestor_only(tmp_path, monkeypatch):
    from keras_evopose.models import presets

    calls = []
    monkeypatch.setattr(
        presets,
        "load_preset_weights",
        lambda backbone, weights, height: calls.append((weights, height)),
    )
    hypermodel = TinyBackboneHyperModel(ancestor_weights="imagenet")
    oracle, _ = search(tmp_path, hypermodel, FITNESS_METRIC)
    assert len(oracle.trials) == 2
    assert calls == [("imagenet", 4)]
