"""EvoPose2D neuroevolution on keras-tuner: EvolutionOracle, EvolutionTuner.

The Oracle is steady-state: every new trial is a one-gene mutant of a parent
chosen among the trials completed so far (the first trial is the ancestor),
so it never waits for a whole generation and never answers IDLE while no
trial runs. A trial's values are `genotype` (one canonical string),
`parent_trial_id` (`""` for the ancestor), `generation` and `mutation` (a
description); only `genotype` identifies a trial (no duplicate genotypes).
Everything else (lineage, generations) is read from the trials, so the
Oracle's own state is keras-tuner's JSON state unchanged; its constructor
arguments are not saved and are taken from the code that resumes.
"""

import copy
import math
import random
import time

import keras
import keras_tuner

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.search.mutation import mutate
from keras_evopose.search.pareto import non_dominated_sort
from keras_evopose.search.search_space import GENOTYPE_SEPARATOR
from keras_evopose.search.search_space import SearchSpace
from keras_evopose.search.search_space import genotype_from_string
from keras_evopose.search.search_space import genotype_to_string

COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED
FAILED = keras_tuner.engine.trial.TrialStatus.FAILED
RUNNING = keras_tuner.engine.trial.TrialStatus.RUNNING
SELECTIONS = ("fitness", "pareto")


def _objectives(objective):
    # keras-tuner's MultiObjective is not public; it holds `.objectives`.
    return list(getattr(objective, "objectives", [objective]))


def _check_objective(objective):
    objective = (
        keras_tuner.Objective("val_loss", "min")
        if (objective is None)
        else objective
    )
    items = objective if isinstance(objective, (list, tuple)) else [objective]
    for item in items:
        if not isinstance(item, keras_tuner.Objective):
            raise ValueError(
                "Each objective must be a keras_tuner.Objective with an "
                "explicit direction, e.g. keras_tuner.Objective('val_ap', "
                f"'max'). Received: {item!r}"
            )
        if item.direction not in ("min", "max"):
            raise ValueError(
                f"Objective {item.name!r} has direction {item.direction!r}; "
                "it must be 'min' or 'max'."
            )
    return objective


@keras_evopose_export("keras_evopose.search.EvolutionOracle")
class EvolutionOracle(keras_tuner.Oracle):
    """Pareto neuroevolution of EvoPose2D genotypes (a keras-tuner Oracle).

    Trial 0 trains the search space's ancestor. Every later trial mutates
    one gene of one stage of a parent (`keras_evopose.search.mutate`), drawn
    uniformly from the `num_parents` best completed trials: best by fitness
    (`selection="fitness"`, the paper's elitist (mu + lambda) rule) or in
    Pareto order (`selection="pareto"`). Failed trials are never parents;
    genotypes are never repeated; invalid genotypes are never emitted.

    Fitness (`trial.score`) is the paper's scalar: for a minimized first
    objective (a loss) `loss * (target_params / num_params) ** size_weight`,
    for a maximized one (an AP) `ap * (target_params / num_params) **
    -size_weight`, so with the default `size_weight=-0.07` a larger model
    always scores worse; its direction is that of the first objective
    (`fitness_direction`). The values used are each objective's best over
    the trial's epochs, in the objective's own direction, and `num_params`
    is read from the trial's metrics (`EvolutionTuner` logs it).

    `get_best_trials` returns completed trials in non-dominated order over
    all objectives (Pareto front first, then fitness within a front), not
    keras-tuner's summed multi-objective. A trial whose objective is not
    finite is marked failed; `max_consecutive_failed_trials` failures in a
    row stop the search with an error naming the trials.

    Args:
        objective: a `keras_tuner.Objective` or a list of them, each with an
            explicit direction; the first is the accuracy objective of the
            fitness. Defaults to `[Objective("val_loss", "min"),
            Objective("num_params", "min")]`.
        search_space: a `keras_evopose.search.SearchSpace`. Defaults to the
            reference space around EfficientNet-B0.
        max_trials: int, trials in total (the ancestor included).
        num_parents: int, size of the parent pool (the paper's mu = 4).
        selection: `"fitness"` or `"pareto"`, how the pool is chosen.
        target_params: float, T of the fitness. Defaults to 5e6.
        size_weight: float, w of the fitness. Defaults to -0.07.
        size_metric: str, the metric holding the parameter count. Defaults
            to `"num_params"`.
        max_mutation_attempts: int, mutations tried per trial before the
            search stops because every nearby genotype was tried.
        seed: int, seeds parent choice and mutation (saved with the state).
        max_retries_per_trial: int, retries of a crashed trial.
        max_consecutive_failed_trials: int, failures in a row that stop the
            search. Defaults to 3.

    Example:

    ```python
    oracle = keras_evopose.search.EvolutionOracle(
        objective=[
            keras_tuner.Objective("val_loss", "min"),
            keras_tuner.Objective("num_params", "min"),
        ],
        search_space=keras_evopose.search.SearchSpace.from_preset("test"),
        max_trials=20,
    )
    tuner = keras_evopose.search.EvolutionTuner(
        oracle, preset="test", directory="runs", project_name="evo"
    )
    tuner.search(train_ds, validation_data=val_ds)
    front = oracle.pareto_front()
    ```
    """

    def __init__(
        self,
        objective=None,
        search_space=None,
        max_trials=None,
        num_parents=4,
        selection="fitness",
        target_params=5e6,
        size_weight=-0.07,
        size_metric="num_params",
        max_mutation_attempts=100,
        seed=None,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
    ):
        if objective is None:
            objective = [
                keras_tuner.Objective("val_loss", "min"),
                keras_tuner.Objective("num_params", "min"),
            ]
        objective = _check_objective(objective)
        if search_space is None:
            search_space = SearchSpace()
        if not isinstance(search_space, SearchSpace):
            raise ValueError(
                "search_space must be a keras_evopose.search.SearchSpace. "
                f"Received: {search_space!r}"
            )
        if (
            isinstance(num_parents, bool)
            or not isinstance(num_parents, int)
            or num_parents < 1
        ):
            raise ValueError(
                f"num_parents={num_parents!r} must be a positive int (the "
                "paper uses 4)."
            )
        if selection not in SELECTIONS:
            raise ValueError(
                f"selection={selection!r} is not allowed; use one of "
                f"{', '.join(repr(s) for s in SELECTIONS)}."
            )
        if not isinstance(target_params, (int, float)) or not (
            target_params > 0 and math.isfinite(target_params)
        ):
            raise ValueError(
                f"target_params={target_params!r} must be a positive number "
                "(the paper uses 5e6)."
            )
        if not isinstance(size_weight, (int, float)) or not math.isfinite(
            size_weight
        ):
            raise ValueError(
                f"size_weight={size_weight!r} must be a finite number (the "
                "paper uses -0.07; 0 ignores the model size)."
            )
        if max_mutation_attempts < 1:
            raise ValueError(
                f"max_mutation_attempts={max_mutation_attempts!r} must be "
                "at least 1."
            )
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self.search_space = search_space
        self.num_parents = num_parents
        self.selection = selection
        self.target_params = float(target_params)
        self.size_weight = float(size_weight)
        self.size_metric = size_metric
        self.max_mutation_attempts = max_mutation_attempts
        self._ancestor_string = genotype_to_string(search_space.ancestor)
        self._objective_cache = {}

    @property
    def objectives(self):
        """The objectives as a list of `keras_tuner.Objective`."""
        return _objectives(self.objective)

    @property
    def fitness_direction(self):
        """`"min"` or `"max"`: how `trial.score` is ranked."""
        return self.objectives[0].direction

    def populate_space(self, trial_id):
        if not self._duplicate({"genotype": self._ancestor_string}):
            return self._running(self._ancestor_string, "", 0, "ancestor")
        parents = self._select_parents()
        if not parents:
            if self.ongoing_trials:
                # Only while a trial runs: its result may yield a parent.
                return {"status": "IDLE"}
            print(
                "EvolutionOracle: no completed trial to mutate and none "
                "running (the ancestor failed); stopping the search."
            )
            return {"status": "STOPPED"}
        rng = random.Random(self._seed_state)
        self._seed_state += 1
        for _ in range(self.max_mutation_attempts):
            parent = parents[rng.randrange(len(parents))]
            values = parent.hyperparameters.values
            child, description = mutate(
                genotype_from_string(values["genotype"]),
                self.search_space,
                rng,
            )
            # `mutate` returns canonical block strings: join, don't re-parse.
            child = GENOTYPE_SEPARATOR.join(child)
            if not self._duplicate({"genotype": child}):
                return self._running(
                    child,
                    parent.trial_id,
                    int(values.get("generation", 0)) + 1,
                    description,
                )
        print(
            "EvolutionOracle: every mutation tried in "
            f"{self.max_mutation_attempts} attempts was already trained; "
            "stopping the search (widen the search space or raise "
            "max_mutation_attempts)."
        )
        return {"status": "STOPPED"}

    @staticmethod
    def _running(genotype, parent_trial_id, generation, mutation):
        return {
            "status": RUNNING,
            "values": {
                "genotype": genotype,
                "parent_trial_id": parent_trial_id,
                "generation": generation,
                "mutation": mutation,
            },
        }

    def _compute_values_hash(self, values):
        # Duplicates are judged by genotype only: the same network reached
        # from another parent is the same individual.
        if "genotype" in values:
            values = {"genotype": values["genotype"]}
        return super()._compute_values_hash(values)

    def objective_values(self, trial):
        """Each objective's best value of `trial` in its own direction.

        Returns:
            A list of floats (one per objective), or `None` if a value is
            missing or not finite.
        """
        if trial.status != COMPLETED:
            return self._objective_values(trial)
        # A completed trial's metrics no longer change (end_trial is
        # idempotent), so its values are computed once per process.
        if trial.trial_id not in self._objective_cache:
            self._objective_cache[trial.trial_id] = self._objective_values(
                trial
            )
        values = self._objective_cache[trial.trial_id]
        return None if values is None else list(values)

    def _objective_values(self, trial):
        values = []
        for objective in self.objectives:
            value = self._best_value(trial, objective.name, objective.direction)
            if value is None:
                return None
            values.append(value)
        return values

    @staticmethod
    def _best_value(trial, name, direction):
        # keras-tuner registers every metric of a multi-objective with
        # direction "min", so the best value is taken here, per objective.
        if not trial.metrics.exists(name):
            return None
        history = [
            value
            for observation in trial.metrics.get_history(name)
            for value in observation.value
        ]
        if not history or not all(math.isfinite(v) for v in history):
            return None
        return float(min(history) if direction == "min" else max(history))

    def fitness(self, trial):
        """The paper's scalar fitness of a trial (NaN if not computable)."""
        primary = self.objectives[0]
        value = self._best_value(trial, primary.name, primary.direction)
        if value is None:
            return float("nan")
        if self.size_weight == 0:
            return value
        num_params = self._best_value(trial, self.size_metric, "min")
        if num_params is None or num_params <= 0:
            return float("nan")
        weight = (
            self.size_weight
            if primary.direction == "min"
            else (-self.size_weight)
        )
        return value * (self.target_params / num_params) ** weight

    def score_trial(self, trial):
        trial.score = self.fitness(trial)
        trial.best_step = 0
        if self.objective_values(trial) is None:
            trial.score = float("nan")

    def _completed(self):
        return [
            trial
            for trial in self.trials.values()
            if trial.status == COMPLETED
            and trial.score is not None
            and math.isfinite(trial.score)
        ]

    def _by_fitness(self, trials):
        sign = 1.0 if self.fitness_direction == "min" else -1.0
        return sorted(trials, key=lambda t: (sign * t.score, t.trial_id))

    def _pareto_order(self, trials):
        trials = self._by_fitness(trials)
        points = [self.objective_values(trial) for trial in trials]
        directions = [objective.direction for objective in self.objectives]
        fronts = non_dominated_sort(points, directions)
        # Indices ascend within a front, i.e. fitness order is kept.
        return [[trials[i] for i in front] for front in fronts]

    def _select_parents(self):
        completed = self._completed()
        if self.selection == "fitness":
            ordered = self._by_fitness(completed)
        else:
            ordered = [
                t for front in self._pareto_order(completed) for t in front
            ]
        return ordered[: self.num_parents]

    def pareto_front(self):
        """The completed trials no other completed trial dominates."""
        fronts = self._pareto_order(self._completed())
        return fronts[0] if fronts else []

    def get_best_trials(self, num_trials=1):
        """Completed trials in non-dominated order (front 0 first).

        Within a front, trials are ordered by fitness. Like keras-tuner's
        default, the list is padded with unfinished trials when fewer than
        `num_trials` trials completed.
        """
        ordered = [
            trial
            for front in self._pareto_order(self._completed())
            for trial in front
        ]
        if len(ordered) < num_trials:
            chosen = {trial.trial_id for trial in ordered}
            ordered += [
                trial
                for trial in self.trials.values()
                if trial.trial_id not in chosen
            ]
        return ordered[:num_trials]

    @keras_tuner.synchronized
    def end_trial(self, trial):
        done = self.trials.get(trial.trial_id)
        if (
            done is not None
            and trial.trial_id in self.end_order
            and done.status in (COMPLETED, FAILED)
        ):
            # Already ended (a re-sent RPC, or a re-run after a chief
            # restart): keep the first result, only release the tuner.
            for tuner_id, ongoing in list(self.ongoing_trials.items()):
                if ongoing.trial_id == trial.trial_id:
                    self.ongoing_trials.pop(tuner_id)
            return
        self._objective_cache.pop(trial.trial_id, None)
        super().end_trial(trial)

    def _check_consecutive_failures(self):
        failed = []
        for trial_id in self.end_order:
            if self.trials[trial_id].status == FAILED:
                failed.append(trial_id)
            else:
                failed = []
            if len(failed) == self.max_consecutive_failed_trials:
                last = self.trials[failed[-1]]
                raise RuntimeError(
                    f"The search stopped: {len(failed)} trials in a row "
                    f"failed (trials {', '.join(failed)}; "
                    f"max_consecutive_failed_trials="
                    f"{self.max_consecutive_failed_trials}). A trial fails "
                    "when its loss or objective is not finite, its model "
                    "exceeds max_model_size, or training raises. Last "
                    f"error: {(last.message or 'none recorded').strip()}"
                )


class _ModelSizeCallback(keras.callbacks.Callback):
    """Writes `num_params` and `flops` (MACs) into every epoch's logs."""

    def on_train_begin(self, logs=None):
        from keras_evopose.utils import count_flops
        from keras_evopose.utils import count_params

        self.num_params = count_params(self.model)
        try:
            self.flops = count_flops(self.model, self.model.input_shape[1:])
        except ValueError:
            # A user model with layers count_flops does not know.
            self.flops = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["num_params"] = float(self.num_params)
        if self.flops is not None:
            logs["flops"] = float(self.flops)


def _tensorflow_without_gpu():
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


class _EvoPose2DHyperModel(keras_tuner.HyperModel):
    """Builds and compiles `EvoPose2D.from_preset(preset, genotype=...)`."""

    def __init__(self, preset, model_kwargs, compile_kwargs):
        super().__init__()
        self.preset = preset
        self.model_kwargs = dict(model_kwargs or {})
        self.compile_kwargs = dict(compile_kwargs or {})

    def build(self, hp):
        from keras_evopose.models import EvoPose2D

        model = EvoPose2D.from_preset(
            self.preset,
            genotype=genotype_from_string(hp.get("genotype")),
            **self.model_kwargs,
        )
        kwargs = copy.deepcopy(self.compile_kwargs)
        optimizer = kwargs.pop("optimizer", "adam")
        if isinstance(optimizer, keras.optimizers.Optimizer):
            # A fresh optimizer per trial: one instance cannot serve two
            # models.
            optimizer = optimizer.__class__.from_config(optimizer.get_config())
        if "loss" not in kwargs:
            from keras_evopose.losses import HeatmapMSE

            kwargs["loss"] = HeatmapMSE()
        if "jit_compile" not in kwargs and _tensorflow_without_gpu():
            # Children train for a few epochs: on CPU, XLA compilation of
            # each new train step costs more than it saves (measured: the
            # first epoch of the `test` preset 2-3x slower).
            kwargs["jit_compile"] = False
        model.compile(optimizer=optimizer, **kwargs)
        return model

    def fit(self, hp, model, *args, **kwargs):
        # Data may depend on the child's heatmap size (a stride mutation
        # changes it): callables receive `(height, width)` of the output.
        heatmap_size = tuple(model.output_shape[1:3])
        args = [a(heatmap_size) if callable(a) else a for a in args]
        for key in ("x", "validation_data"):
            if callable(kwargs.get(key)):
                kwargs[key] = kwargs[key](heatmap_size)
        return model.fit(*args, **kwargs)


@keras_evopose_export("keras_evopose.search.EvolutionTuner")
class EvolutionTuner(keras_tuner.Tuner):
    """Trains the children an `EvolutionOracle` proposes.

    Each trial builds the child from its genotype, transfers its parent's
    best weights (the parent trial's `checkpoint.weights.h5`, found in the
    shared project directory, so it works across keras-tuner workers) with
    `keras_evopose.callbacks.WeightTransferCallback`, trains it for
    `ancestor_epochs` (generation 0) or `child_epochs` epochs and writes
    `num_params` and `flops` into the epoch logs. Any other `model.fit`
    argument, callback or distribution strategy passes through `search`
    as with any keras-tuner `Tuner`. A trial whose training loss is not
    finite fails (it is not retried); so does one whose model has more
    than `max_model_size` parameters.

    By default the model is `EvoPose2D.from_preset(preset, genotype=...,
    **model_kwargs)` compiled with `compile_kwargs` (default optimizer
    `"adam"`, loss `keras_evopose.losses.HeatmapMSE`, and no XLA on a
    TensorFlow CPU, where compiling each child costs more than it saves).
    Training and validation data may then be given as functions of the
    heatmap size `(height, width) -> dataset`, so children whose stride
    mutation changes the heatmap resolution get matching targets. A custom
    `hypermodel` (a function of `hp` returning a compiled model, reading
    `hp.get("genotype")` with `keras_evopose.search.genotype_from_string`)
    replaces all of that.

    Args:
        oracle: an `EvolutionOracle`.
        hypermodel: optional model-building function or `HyperModel`.
        preset: preset whose non-genotype arguments (stem, head, input size)
            every child shares. Defaults to `"small"`.
        model_kwargs: dict of extra `from_preset` overrides.
        compile_kwargs: dict of `model.compile` arguments.
        ancestor_epochs: int, epochs of generation 0 (the paper's 30).
        child_epochs: int, epochs of every child (the paper's 5).
        transfer_weights: bool, inherit the parent's weights. Defaults to
            `True`.
        **kwargs: `keras_tuner.Tuner` arguments (`directory`,
            `project_name`, `overwrite`, `max_model_size`,
            `distribution_strategy`, ...).

    Example:

    ```python
    tuner = keras_evopose.search.EvolutionTuner(
        keras_evopose.search.EvolutionOracle(max_trials=10),
        preset="small", ancestor_epochs=30, child_epochs=5,
        directory="runs", project_name="evopose",
    )
    tuner.search(train_ds, validation_data=val_ds)
    ```
    """

    def __init__(
        self,
        oracle,
        hypermodel=None,
        preset="small",
        model_kwargs=None,
        compile_kwargs=None,
        ancestor_epochs=30,
        child_epochs=5,
        transfer_weights=True,
        **kwargs,
    ):
        if not isinstance(oracle, EvolutionOracle):
            raise ValueError(
                f"EvolutionTuner needs an EvolutionOracle. Received: {oracle!r}"
            )
        for name, value in (
            ("ancestor_epochs", ancestor_epochs),
            ("child_epochs", child_epochs),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or (value < 1)
            ):
                raise ValueError(
                    f"{name}={value!r} must be a positive int (the paper "
                    "trains the ancestor 30 epochs and each child 5)."
                )
        if hypermodel is None:
            hypermodel = _EvoPose2DHyperModel(
                preset, model_kwargs, compile_kwargs
            )
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        self.ancestor_epochs = ancestor_epochs
        self.child_epochs = child_epochs
        self.transfer_weights = transfer_weights
        self._trial_began = True

    def _populate_initial_space(self):
        # keras-tuner builds the hypermodel once with empty values to find
        # its hyperparameters; here the space is the Oracle's SearchSpace
        # and a model cannot be built without a genotype.
        return

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        # keras-tuner imports tensorboard on the TensorFlow backend even
        # without a TensorBoard callback, and TensorFlow 2.21 no longer
        # installs it: only a TensorBoard callback needs it.
        if any(c.__class__.__name__ == "TensorBoard" for c in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)

    def run_trial(self, trial, *args, **kwargs):
        if "epochs" in kwargs:
            raise ValueError(
                "EvolutionTuner sets the epochs per trial: pass "
                "ancestor_epochs and child_epochs to the tuner instead of "
                f"epochs={kwargs['epochs']!r}."
            )
        values = trial.hyperparameters.values
        parent_trial_id = values.get("parent_trial_id", "")
        kwargs["epochs"] = (
            self.child_epochs if parent_trial_id else self.ancestor_epochs
        )
        callbacks = [_ModelSizeCallback()]
        if parent_trial_id and self.transfer_weights:
            from keras_evopose.callbacks import WeightTransferCallback

            parent = self.oracle.get_trial(parent_trial_id)
            callbacks.append(
                WeightTransferCallback(
                    self._get_checkpoint_fname(parent_trial_id),
                    genotype=genotype_from_string(
                        parent.hyperparameters.values["genotype"]
                    ),
                    verbose=0,
                )
            )
        kwargs["callbacks"] = callbacks + list(kwargs.get("callbacks", []))
        histories = super().run_trial(trial, *args, **kwargs)
        for history in histories:
            losses = history.history.get("loss", [])
            for epoch, loss in enumerate(losses, 1):
                if not math.isfinite(loss):
                    raise keras_tuner.errors.FailedTrialError(
                        f"Trial {trial.trial_id}: the training loss is "
                        f"{loss} at epoch {epoch}."
                    )
        return histories

    def on_trial_begin(self, trial):
        self._trial_began = True
        super().on_trial_begin(trial)

    def pre_create_trial(self):
        # keras-tuner asks again at once after an IDLE answer; pause a
        # little so waiting workers do not spin on the Oracle.
        if not self._trial_began:
            time.sleep(0.2)
        self._trial_began = False
        super().pre_create_trial()
