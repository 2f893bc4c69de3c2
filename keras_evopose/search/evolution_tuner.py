import logging
import math
import os
import pathlib
import threading
import time

import keras
import keras_tuner
import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.callbacks.interrupt_check import InterruptCheck
from keras_evopose.callbacks.weight_transfer_callback import (
    WeightTransferCallback,
)
from keras_evopose.data.image_files import environment_cause
from keras_evopose.models.genotype import Genotype
from keras_evopose.search.evolution_oracle import EvolutionOracle
from keras_evopose.search.evopose2d_hypermodel import EvoPose2DHyperModel
from keras_evopose.search.resumable_oracle import ENDED
from keras_evopose.search.resumable_oracle import ENVIRONMENT_FAILURE
from keras_evopose.search.resumable_oracle import TunerCallback
from keras_evopose.search.resumable_oracle import add_oracle_service
from keras_evopose.search.resumable_oracle import convert_to_metrics_dict
from keras_evopose.search.resumable_oracle import get_best_step
from keras_evopose.search.resumable_oracle import is_chief_oracle
from keras_evopose.search.resumable_oracle import validate_trial_results
from keras_evopose.search.resumable_tuner import ResumableTuner
from keras_evopose.search.trial_timing import TrialTiming
from keras_evopose.utils.state_files import DiskFullError
from keras_evopose.utils.state_files import StateFileError
from keras_evopose.utils.state_files import write_json_atomically
from keras_evopose.utils.state_files import write_weights_atomically
from keras_evopose.utils.validation import check_positive_int

# Seconds an idle worker waits before asking the Oracle again.
IDLE_POLL_SECONDS = 0.5


class _BestEpochWeights(keras.callbacks.Callback):
    """Keeps (in memory) the weights of the epoch the Oracle will score.

    The rule is keras-tuner's own for the reported metrics: the first
    epoch, then any epoch strictly better in the tuner's objective. The
    tuner writes them to the trial's checkpoint once training is over.
    """

    def __init__(self, objective):
        super().__init__()
        self.objective = objective
        self.best_value = None
        self.best_epoch = None
        self.weights = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = (
            self.objective.get_value(logs)
            if self.objective.has_value(logs)
            else None
        )
        if (
            self.best_epoch is None
            or value is None
            or (
                self.best_value is not None
                and self.objective.better_than(value, self.best_value)
            )
        ):
            self.best_value = value
            self.best_epoch = epoch
            self.weights = [np.array(w) for w in self.model.get_weights()]


class _Heartbeat:
    """Tells the chief Oracle, every `interval` s, that a trial still runs."""

    def __init__(self, oracle, trial_id, interval):
        self._stop = threading.Event()

        def beat():
            warned = False
            while not self._stop.wait(interval):
                try:
                    oracle.update_trial(trial_id, {})
                except Exception as error:  # noqa: BLE001
                    # The chief may be restarting: keep beating, and say
                    # so once (silence here means the trial may be handed
                    # to another worker).
                    if not warned:
                        logging.getLogger(__name__).warning(
                            "trial %s: heartbeat to the chief failed (%s); "
                            "retrying every %.0f s",
                            trial_id,
                            type(error).__name__,
                            interval,
                        )
                        warned = True

        self._thread = threading.Thread(target=beat, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)


def _serve_oracle(oracle):
    """The chief's gRPC service, until the search is over."""
    from concurrent import futures

    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    add_oracle_service(server, oracle)
    address = (
        f"{os.environ['KERASTUNER_ORACLE_IP']}:"
        f"{os.environ['KERASTUNER_ORACLE_PORT']}"
    )
    server.add_insecure_port(address)
    server.start()
    try:
        # keras-tuner's own loop waits for every worker id it ever saw;
        # a dead worker would keep it alive for ever.
        while not oracle.search_finished():
            time.sleep(IDLE_POLL_SECONDS)
    finally:
        # In-flight answers (the last STOPPED) still reach the workers.
        server.stop(grace=5).wait()


class SearchDiskFullError(DiskFullError, keras_tuner.errors.FatalError):
    """A full disk during a trial: ends the search (keras-tuner lets a
    `FatalError` through) instead of failing the trial."""


class DamagedParentError(StateFileError, keras_tuner.errors.FatalError):
    """A parent trial's checkpoint that its child cannot read: ends the
    search (every child of that parent would fail the same way) instead
    of failing the child for good."""


class _ParentCheckpointTransfer(WeightTransferCallback):
    """The transfer from a parent trial's checkpoint file. The genotype
    is the parent's own, so a file that does not load is damaged (or
    gone), not the wrong parent: it says which file and the way out."""

    def __init__(self, path, genotype, parent_trial_id, trial_id, trial_dir):
        super().__init__(path, genotype=genotype, verbose=0)
        self.trial_ids = (parent_trial_id, trial_id)
        self.trial_dir = trial_dir

    def load_parent(self, child):
        try:
            return super().load_parent(child)
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            # h5py raises any of these, by where the damage is.
            parent_id, trial_id = self.trial_ids
            cause = error.__cause__ or error
            lines = str(cause).strip().strip("'").splitlines()
            raise DamagedParentError(
                f"{self.parent}, the checkpoint of trial {parent_id} (the "
                f"parent of trial {trial_id}), is damaged or missing "
                f"({lines[0] if lines else type(cause).__name__}); remove "
                f"{os.path.dirname(self.parent)} and {self.trial_dir}, then "
                f"--resume (the search goes on without trial {parent_id})"
            ) from None


@keras_evopose_export("keras_evopose.search.EvolutionTuner")
class EvolutionTuner(ResumableTuner):
    """Trains the children an `EvolutionOracle` proposes.

    Each trial builds the child from its genotype, transfers its parent's
    weights (the parent trial's `checkpoint.weights.h5`, found in the
    shared project directory, so it works across keras-tuner workers) with
    `keras_evopose.callbacks.WeightTransferCallback`, trains it for
    `ancestor_epochs` (generation 0) or `child_epochs` epochs and writes
    `num_params` and `flops` into the epoch logs
    (`keras_evopose.callbacks.ModelSizeLogger`). Any other `model.fit`
    argument, callback or distribution strategy passes through `search`
    as with any keras-tuner `Tuner`.

    A trial fails (it is not retried) when its training loss is not
    finite, or when its model has more than `max_model_size` parameters
    counted as `num_params` is (`model.count_params()`).

    Crash safety: the trial's checkpoint holds the weights of the epoch
    whose metrics were reported and scored; it is written (through a
    temporary file) only after training, and never over a trial that has
    completed. Every state file is written through a temporary file. A
    tuner made over an existing project resumes it.

    By default the model comes from `EvoPose2DHyperModel(preset,
    model_kwargs, compile_kwargs)`: the paper's recipe (L2 1e-5, a fresh
    optimizer per trial with a cosine to 0 over the trial's own steps, the
    metric `val_heatmap_mse` for the fitness), and training and validation
    data may be functions of the child's heatmap size (see there); pass
    `hypermodel=EvoPose2DHyperModel(...)` for its other settings
    (`trial_optimizer`, `ancestor_weights`). A custom
    `hypermodel` (a function of `hp` returning a compiled model, reading
    `hp.get("genotype")` with `keras_evopose.models.Genotype.from_string`)
    replaces it.

    In keras-tuner's distributed mode the chief serves the Oracle until
    the search is over (then `search` returns); workers send a heartbeat
    while they train, so a dead worker's trial goes to another worker
    after the Oracle's `heartbeat_timeout`.

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
        trial_callbacks: objects whose `on_trial_end(tuner, trial)` is
            called after each trial's state is written (e.g. a
            `keras_evopose.search.search_progress.SearchProgress`).
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
        trial_callbacks=None,
        **kwargs,
    ):
        if not isinstance(oracle, EvolutionOracle):
            raise ValueError(
                f"EvolutionTuner needs an EvolutionOracle. Received: {oracle!r}"
            )
        # (The paper trains the ancestor 30 epochs and each child 5.)
        for name, value in (
            ("ancestor_epochs", ancestor_epochs),
            ("child_epochs", child_epochs),
        ):
            check_positive_int(name, value, "EvolutionTuner")
        if hypermodel is None:
            hypermodel = EvoPose2DHyperModel(
                preset, model_kwargs, compile_kwargs
            )
        self.ancestor_epochs = ancestor_epochs
        self.child_epochs = child_epochs
        self.transfer_weights = transfer_weights
        self.trial_callbacks = list(trial_callbacks or [])
        self._heartbeat_interval = min(30.0, oracle.heartbeat_timeout / 4)
        self._heartbeat = None
        self._timing = None
        self.last_timing = None
        # `(trial_id, model)` of the last trial this process trained, with
        # the weights it checkpointed: a child of it needs no rebuild.
        self._last_trained = None
        self._reloaded = False
        self._trial_began = True
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        # keras-tuner reloads only when this tuner's own file exists: a
        # crash before it was first written must not let a new search
        # overwrite the trials on disk.
        project = pathlib.Path(self.project_dir)
        if (
            not self._reloaded
            and not self.is_worker()
            and (
                (project / "oracle.json").exists()
                or any(project.glob("trial_*/trial.json"))
            )
        ):
            self.reload()

    # ----------------------------------------------------------------
    # State files.

    def save(self):
        if not self.is_worker():
            self.oracle.save()
        write_json_atomically(self.tuner_state_path(), self.get_state())

    def reload(self):
        self._reloaded = True
        if not self.is_worker():
            self.oracle.reload()
        # The tuner's own state is empty: a damaged tuner file loses
        # nothing, so it is not read.

    def populate_initial_space(self):
        # keras-tuner builds the hypermodel once with empty values to find
        # its hyperparameters; here the space is the Oracle's SearchSpace
        # and a model cannot be built without a genotype.
        return

    # ----------------------------------------------------------------
    # The search loop.

    def search(self, *fit_args, **fit_kwargs):
        if is_chief_oracle():
            if "verbose" in fit_kwargs:
                self.oracle.verbose = fit_kwargs["verbose"]
            self.save()
            _serve_oracle(self.oracle)
            return
        super().search(*fit_args, **fit_kwargs)

    def pre_create_trial(self):
        # keras-tuner asks again at once after an IDLE answer; pause so
        # waiting workers do not spin on the Oracle.
        if not self._trial_began:
            time.sleep(IDLE_POLL_SECONDS)
        self._trial_began = False
        # A trial's wall time starts when it is asked for.
        self._timing = TrialTiming()
        super().pre_create_trial()

    def on_trial_begin(self, trial):
        self._trial_began = True
        if self.is_worker():
            self._heartbeat = _Heartbeat(
                self.oracle, trial.trial_id, self._heartbeat_interval
            )
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        timing = self._timing or TrialTiming()
        with timing.phase("state_writes"):
            super().on_trial_end(trial)
        # With the end-of-trial writes, which trial.json cannot hold.
        self.last_timing = timing.summary()
        self._timing = None
        for callback in self.trial_callbacks:
            callback.on_trial_end(self, trial)

    # ----------------------------------------------------------------
    # One trial.

    def try_build(self, hp):
        # (It collects garbage too: a second gc.collect costs ~1 s.)
        keras.backend.clear_session()
        model = self.build_hypermodel(hp)
        if not isinstance(model, keras.Model):
            raise keras_tuner.errors.FatalTypeError(
                "The hypermodel must return a Keras Model; received "
                f"{model!r} of type {type(model)}."
            )
        if self.max_model_size:
            # The same count as the `num_params` the Oracle scores.
            size = model.count_params()
            if size > self.max_model_size:
                raise keras_tuner.errors.FailedTrialError(
                    f"Oversized model: {size:,} parameters (count_params) "
                    f"> max_model_size={self.max_model_size:,}."
                )
        return model

    def build_and_fit_model(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        timing = self._timing
        with timing.phase("build"):
            model = self.try_build(hp)
        # In the strategy's scope: the hypermodel may compile the trial's
        # own optimizer (its variables belong to the strategy).
        with self.distribution_scope():
            timing.fit_began()
            results = self.hypermodel.fit(hp, model, *args, **kwargs)
        with timing.phase("state_writes"):
            write_json_atomically(
                self.build_config_path(trial.trial_id),
                model.get_build_config(),
            )
        validate_trial_results(
            results, self.oracle.objective, "HyperModel.fit()"
        )
        return results

    def run_and_update_trial(self, trial, *args, **kwargs):
        # What keras-tuner calls for a trial (it marks the trial failed on
        # any error): a full disk stops the search instead, and a bad file
        # fails the trial naming it, marked to re-run on resume.
        try:
            return self._run_and_report_trial(trial, *args, **kwargs)
        except DiskFullError as error:
            # Not the trial's fault: stop the search (keras-tuner would
            # fail the trial for good and go on to fail the next ones).
            # The trial stays RUNNING on disk, so a resume re-runs it.
            raise SearchDiskFullError(error.path) from None
        except keras_tuner.errors.FatalError:
            raise
        except Exception as error:
            cause = environment_cause(error)
            if cause is None:
                raise
            # Failed, named, and marked so that `--resume` re-runs it once
            # the file is fixed.
            raise keras_tuner.errors.FailedTrialError(
                f"{ENVIRONMENT_FAILURE} {cause}; fix it, then --resume "
                "re-runs this trial"
            ) from error

    def run_trial(self, trial, *args, **kwargs):
        if "epochs" in kwargs:
            raise ValueError(
                "EvolutionTuner sets the epochs per trial: pass "
                "ancestor_epochs and child_epochs to the tuner instead of "
                f"epochs={kwargs['epochs']!r}."
            )
        from keras_evopose.callbacks import ModelSizeLogger

        values = trial.hyperparameters.values
        parent_trial_id = values.get("parent_trial_id", "")
        kwargs["epochs"] = (
            self.child_epochs if parent_trial_id else self.ancestor_epochs
        )
        if self._timing is None:
            # run_trial called on its own, outside `search`.
            self._timing = TrialTiming()
        timing = self._timing
        own_callbacks = [
            InterruptCheck(),
            timing.mark("setup"),
            ModelSizeLogger(),
            timing.mark("model_size"),
        ]
        if parent_trial_id and self.transfer_weights:
            parent = self.oracle.get_trial(parent_trial_id)
            genotype = Genotype.from_string(
                parent.hyperparameters.values["genotype"]
            )
            last = self._last_trained
            own_callbacks.append(
                # The parent still in memory, or rebuilt from its
                # checkpoint (a resumed search, another worker's trial).
                WeightTransferCallback(last[1], genotype=genotype, verbose=0)
                if last is not None and last[0] == parent_trial_id
                else _ParentCheckpointTransfer(
                    self.checkpoint_path(parent_trial_id),
                    genotype,
                    parent_trial_id,
                    trial.trial_id,
                    self.get_trial_dir(trial.trial_id),
                )
            )
            own_callbacks.append(timing.mark("weight_transfer"))
        user_callbacks = kwargs.pop("callbacks", [])
        best = _BestEpochWeights(self.oracle.objective)
        histories = []
        for execution in range(self.executions_per_trial):
            callbacks = self.copy_callbacks(user_callbacks)
            self.configure_tensorboard(callbacks, trial, execution)
            fit_kwargs = dict(kwargs)
            fit_kwargs["callbacks"] = (
                own_callbacks
                + callbacks
                + [TunerCallback(self, trial), best, timing]
            )
            histories.append(
                self.build_and_fit_model(trial, *args, **fit_kwargs)
            )
        for history in histories:
            losses = getattr(history, "history", {}).get("loss", [])
            for epoch, loss in enumerate(losses, 1):
                if not math.isfinite(loss):
                    raise keras_tuner.errors.FailedTrialError(
                        f"Trial {trial.trial_id}: the training loss is "
                        f"{loss} at epoch {epoch}."
                    )
        with timing.phase("state_writes"):
            self._write_checkpoint(trial, best)
        return histories

    def _run_and_report_trial(self, trial, *fit_args, **fit_kwargs):
        # keras-tuner's, with the trial's time split reported beside its
        # metrics (trial.json, the results): seconds per phase up to here,
        # the end-of-trial writes follow.
        results = self.run_trial(trial, *fit_args, **fit_kwargs)
        validate_trial_results(
            results, self.oracle.objective, "Tuner.run_trial()"
        )
        metrics = convert_to_metrics_dict(results, self.oracle.objective)
        metrics.update(
            {
                f"time_{name}": value
                for name, value in self._timing.summary().items()
            }
        )
        self.oracle.update_trial(
            trial.trial_id,
            metrics,
            step=get_best_step(results, self.oracle.objective),
        )

    def _write_checkpoint(self, trial, best):
        if best.weights is None:
            return
        if self.oracle.get_trial(trial.trial_id).status in ENDED:
            # Another worker finished this trial first (it was handed on
            # when this one went silent): its checkpoint is the record.
            return
        model = best.model
        model.set_weights(best.weights)
        write_weights_atomically(self.checkpoint_path(trial.trial_id), model)
        self._last_trained = (trial.trial_id, model)

    def load_model(self, trial):
        """The trial's model with the weights of its scored epoch."""
        path = self.checkpoint_path(trial.trial_id)
        if not os.path.exists(path):
            raise StateFileError(
                f"trial {trial.trial_id} has no checkpoint ({path} is "
                "missing); remove its folder to re-run it"
            )
        try:
            return super().load_model(trial)
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            # h5py's 30-line traceback says "truncated file" (or, for a
            # garbled one, "wrong B-tree signature") but not which.
            lines = str(error).strip().strip("'").splitlines()
            raise StateFileError(
                f"{path} is damaged ({lines[0] if lines else error!r}); "
                f"remove {os.path.dirname(path)} to re-run trial "
                f"{trial.trial_id}, then --resume"
            ) from None
