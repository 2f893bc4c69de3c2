"""ResumableOracle: a keras-tuner Oracle whose search survives crashes,
restarts and dead workers; the package's one door to keras-tuner's
internals.

Crash safety: the trial files are the record. Every state file is written
to a temporary file and renamed into place, and `reload` rebuilds the tried
values, the ended and the interrupted trials from the trial files, so no
single lost write orphans a trial or lets a trial's values run twice; a
completed trial is never run again. The Oracle's settings are saved and a
resume under different ones is refused, naming the difference.

Distributed search (keras-tuner's chief/worker mode): workers send a
heartbeat while they train; a trial whose worker stays silent for
`heartbeat_timeout` seconds is handed to another worker, and a restarted
chief waits that long for the workers that were running trials before it
gives their trials to anyone else.

This is the only module that imports `keras_tuner.src` or touches the base
Oracle's private members (`resumable_tuner.py` is the one for the base
Tuner's; `resumable_tuner_test.py` checks both); the others use the names
defined here, so a keras-tuner release that moves them changes this file
alone.
"""

import inspect
import logging
import math
import os
import pathlib
import random
import time

import keras_tuner
from keras_tuner.src import config as keras_tuner_config
from keras_tuner.src.distribute import utils as distribute_utils
from keras_tuner.src.engine import tuner_utils

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.utils.state_files import StateFileError
from keras_evopose.utils.state_files import read_json_state
from keras_evopose.utils.state_files import write_json_atomically

logger = logging.getLogger(__name__)

Trial = keras_tuner.engine.trial.Trial
TrialStatus = keras_tuner.engine.trial.TrialStatus
COMPLETED = TrialStatus.COMPLETED
FAILED = TrialStatus.FAILED
RUNNING = TrialStatus.RUNNING
ENDED = (COMPLETED, FAILED)
# Marks a trial that failed because of its environment (a bad or missing
# file, an I/O error), not its network: resuming runs it again.
ENVIRONMENT_FAILURE = "environment error:"

# keras-tuner internals the tuner needs, named here (see the docstring).
is_chief_oracle = distribute_utils.is_chief_oracle
TunerCallback = tuner_utils.TunerCallback
validate_trial_results = tuner_utils.validate_trial_results
convert_to_metrics_dict = tuner_utils.convert_to_metrics_dict
get_best_step = tuner_utils.get_best_step


def show_trial_tracebacks(show):
    """Whether keras-tuner prints a failed trial's stack trace (its
    `trial.json` keeps it either way)."""
    keras_tuner_config.DEBUG = bool(show)


def add_oracle_service(server, oracle):
    """Serves `oracle` to the workers on the gRPC `server` (the chief)."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    protos.get_service_grpc().add_OracleServicer_to_server(
        OracleServicer(oracle), server
    )


def environment_failure(message):
    """The cause line of a trial message marked `ENVIRONMENT_FAILURE`,
    else `None`."""
    for line in reversed((message or "").splitlines()):
        if ENVIRONMENT_FAILURE in line:
            return line.split(ENVIRONMENT_FAILURE, 1)[1].strip()
    return None


@keras_evopose_export("keras_evopose.search.ResumeError")
class ResumeError(StateFileError):
    """A search cannot be resumed as asked; the message says why and how."""


def _objectives(objective):
    # keras-tuner's MultiObjective is not public; it holds `.objectives`.
    return list(getattr(objective, "objectives", [objective]))


def _trial_number(trial_id):
    return int(trial_id) if str(trial_id).isdigit() else -1


class ResumableOracle(keras_tuner.Oracle):
    """A keras-tuner Oracle that resumes, retries and outlives its workers.

    A subclass implements `populate_space(trial_id)` (keras-tuner's
    contract: a `RUNNING` status with the trial's values, `IDLE` or
    `STOPPED`) and may extend `get_settings` (saved, and compared on
    resume), `trial_identity` (the values that make two trials the same)
    and `check_values` (a trial file's values, on resume). `get_state` and
    `set_state` extend keras-tuner's through `super()`; `reload` rebuilds
    the state from the trial files and passes it to `set_state`.

    A trial whose score is not finite is marked failed.
    `max_consecutive_failed_trials` failures in a row stop the search: the
    state is saved, `create_trial` answers STOPPED and `stop_reason` names
    the failed trials and the last error.

    Args:
        heartbeat_timeout: float, seconds without a word from the worker
            running a trial after which the trial is handed to another
            worker (distributed search only).
        **kwargs: `keras_tuner.Oracle`'s arguments (`objective`,
            `max_trials`, `seed`, ...).
    """

    def __init__(self, heartbeat_timeout=180.0, **kwargs):
        super().__init__(**kwargs)
        self.heartbeat_timeout = float(heartbeat_timeout)
        self.stop_reason = None
        self.stopped_by_failures = False
        # Set before a resume: re-run every failed trial, not only those
        # failed by their environment. `retried`: (trial_id, cause) of the
        # failed trials the last reload put back in line.
        self.retry_failed = False
        self.retried = []
        self._objective_cache = {}
        # When each running trial was last heard of (a heartbeat, a metric
        # report, its start), in this process's clock.
        self._last_seen = {}
        # Trials that were running when this Oracle was reloaded and whose
        # worker has not spoken since: trial_id -> tuner_id or None.
        self._interrupted = {}
        # When each worker last asked for a trial.
        self._tuner_seen = {}

    # ----------------------------------------------------------------
    # Hooks of a subclass.

    def trial_identity(self, values):
        """The part of a trial's values that identifies it: values seen
        before are never run again."""
        return values

    def check_values(self, values):
        """Raises `ValueError` (its message completes "FILE ...") if a trial
        file's values cannot be resumed."""

    # ----------------------------------------------------------------
    # Settings saved with the state.

    @property
    def objectives(self):
        """The objectives as a list of `keras_tuner.Objective`."""
        return _objectives(self.objective)

    def get_settings(self):
        """The settings that define this search, as plain JSON values."""
        return {"objectives": [[o.name, o.direction] for o in self.objectives]}

    def _check_settings(self, saved, path):
        current = self.get_settings()
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(
                type(self).__init__
            ).parameters.items()
        }
        for key in set(current) - set(saved):
            # Saved by a version without this setting: it ran with the
            # setting's default.
            if key in defaults and current[key] == defaults[key]:
                saved = {**saved, key: current[key]}
        differences = []
        for key in sorted(set(saved) | set(current)):
            old, new = saved.get(key), current.get(key)
            if isinstance(old, dict) and isinstance(new, dict):
                differences += [
                    f"{key}.{k}: saved {old.get(k)!r}, now {new.get(k)!r}"
                    for k in sorted(set(old) | set(new))
                    if old.get(k) != new.get(k)
                ]
            elif old != new:
                differences.append(f"{key}: saved {old!r}, now {new!r}")
        if differences:
            raise ResumeError(
                f"cannot resume the search in {path}: its settings differ "
                f"({'; '.join(differences)}). Resume with the saved "
                "settings, or start a new search in another directory."
            )

    def get_state(self):
        state = super().get_state()
        state["settings"] = self.get_settings()
        state["stop_reason"] = self.stop_reason
        state["stopped_by_failures"] = self.stopped_by_failures
        state["interrupted_trials"] = dict(self._interrupted)
        return state

    def set_state(self, state):
        super().set_state(state)
        self.stop_reason = state.get("stop_reason")
        self.stopped_by_failures = state.get("stopped_by_failures", False)
        self._interrupted = dict(state.get("interrupted_trials", {}))

    # ----------------------------------------------------------------
    # Saving and reloading.

    def save(self):
        write_json_atomically(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        write_json_atomically(
            f"{self._get_trial_dir(trial.trial_id)}/trial.json",
            trial.get_state(),
        )

    def _load_trials(self):
        trials = {}
        for folder in sorted(pathlib.Path(self._project_dir).glob("trial_*")):
            path = folder / "trial.json"
            if not path.exists():
                # Created for a trial that was never recorded (a crash
                # between creating the folder and writing the trial).
                continue
            remedy = (
                f"--resume cannot continue; remove {folder} to re-run "
                "that trial"
            )
            state = read_json_state(path, remedy)
            try:
                trial = Trial.from_state(state)
            except (KeyError, TypeError, ValueError) as error:
                raise ResumeError(
                    f"{path} is not a keras-tuner trial ({error!r}); {remedy}"
                ) from None
            try:
                self.check_values(trial.hyperparameters.values)
            except ValueError as error:
                raise ResumeError(f"{path} {error}; {remedy}") from None
            trials[trial.trial_id] = trial
        return trials

    def reload(self):
        """Rebuilds the search state from the project's files.

        The trial files are the record of what ran: the tried values, the
        ended and the interrupted trials come from them. `oracle.json`
        adds the random state, the order of ended trials and the settings,
        which must equal this Oracle's.
        """
        oracle_file = self._get_oracle_fname()
        trials = self._load_trials()
        if os.path.exists(oracle_file):
            saved = read_json_state(
                oracle_file,
                "--resume cannot continue; remove it to rebuild the search "
                "state from the trial files",
            )
        else:
            saved = {}
        if "settings" in saved:
            self._check_settings(saved["settings"], self._project_dir)
        elif trials and saved:
            raise ResumeError(
                f"{oracle_file} was not written by {type(self).__name__} (no "
                "saved settings); resume it with the tuner that made it."
            )
        self.retried = []
        for trial_id, trial in trials.items():
            cause = environment_failure(trial.message)
            if trial.status == FAILED and (cause or self.retry_failed):
                lines = (trial.message or "").strip().splitlines()
                self.retried.append(
                    (trial_id, cause or (lines[-1] if lines else "unknown"))
                )
                # Unended again: it re-runs (same id and genotype).
                trial.status = RUNNING
        self.trials = trials
        ids = sorted(trials, key=_trial_number)
        ended = [i for i in ids if trials[i].status in ENDED]
        saved_order = [i for i in saved.get("end_order", []) if i in ended]
        seed = saved.get("seed", self.seed)
        # With failed trials back in line, every stop reason is derived
        # again as the search goes on.
        keep_stop = not self.retried
        self.set_state(
            {
                "ongoing_trials": {},
                # The space is the trials' values; nothing adds to it.
                "hyperparameters": self.hyperparameters.get_config(),
                "start_order": ids,
                "end_order": saved_order
                + [i for i in ended if i not in saved_order],
                "run_times": saved.get("run_times", {}),
                "retry_queue": [],
                "seed": seed,
                "seed_state": saved.get("seed_state", seed + len(trials)),
                # Rebuilt below from the trials.
                "tried_so_far": [],
                "id_to_hash": {},
                "display": self._display.get_state(),
                "stop_reason": saved.get("stop_reason") if keep_stop else None,
                "stopped_by_failures": keep_stop
                and saved.get("stopped_by_failures", False),
                "interrupted_trials": {},
            }
        )
        for trial in trials.values():
            self._record_values(trial)
        # Unended trials were interrupted. Their workers (if any survive
        # a chief restart) keep the trial; others get it after a timeout.
        owners = {
            trial_id: tuner_id
            for tuner_id, trial_id in saved.get("ongoing_trials", {}).items()
        }
        owners.update(
            {
                trial_id: tuner_id
                for trial_id, tuner_id in saved.get(
                    "interrupted_trials", {}
                ).items()
                if trial_id not in owners
            }
        )
        self._last_seen = {}
        now = time.time()
        distributed = distribute_utils.has_chief_oracle()
        retried = {trial_id for trial_id, _ in self.retried}
        for trial_id in ids:
            if trial_id in ended:
                continue
            if distributed and trial_id not in retried:
                self._interrupted[trial_id] = owners.get(trial_id)
                self._last_seen[trial_id] = now
            else:
                # Nothing else can be running it: run it again at once.
                self._requeue(trial_id)

    def _requeue(self, trial_id, reason=None):
        """Puts an unfinished trial back in line with its results cleared."""
        self.trials[trial_id] = Trial(
            hyperparameters=self.trials[trial_id].hyperparameters,
            trial_id=trial_id,
            status=TrialStatus.IDLE,
            message=reason,
        )
        self._interrupted.pop(trial_id, None)
        self._last_seen.pop(trial_id, None)
        if trial_id not in self._retry_queue:
            self._retry_queue.append(trial_id)

    # ----------------------------------------------------------------
    # Trials: create, heartbeat, end.

    def _next_trial_id(self):
        # Never reuse an id: a removed trial folder must not make a new
        # trial overwrite another one.
        used = [_trial_number(i) for i in self.trials]
        number = max(used, default=-1) + 1
        width = max(
            len(str(self.max_trials or 0)),
            max((len(i) for i in self.trials), default=1),
        )
        return f"{number:0{width}d}"

    def _expire_silent_workers(self):
        now = time.time()
        for tuner_id, trial in list(self.ongoing_trials.items()):
            last = self._last_seen.get(trial.trial_id, now)
            if now - last > self.heartbeat_timeout:
                self.ongoing_trials.pop(tuner_id)
                self.tuner_ids.discard(tuner_id)
                logger.warning(
                    "%s: worker %s has been silent for %.0f s; trial %s "
                    "goes to another worker.",
                    type(self).__name__,
                    tuner_id,
                    now - last,
                    trial.trial_id,
                )
                self._requeue(
                    trial.trial_id, f"worker {tuner_id} stopped reporting"
                )
        for trial_id, tuner_id in list(self._interrupted.items()):
            if (
                now - self._last_seen.get(trial_id, now)
                > self.heartbeat_timeout
            ):
                if tuner_id is not None:
                    self.tuner_ids.discard(tuner_id)
                self._requeue(
                    trial_id, "its worker did not report after a restart"
                )

    def ended(self, trial_id):
        """Whether the trial has ended (its result is recorded)."""
        # `end_order` (not the status: a local tuner sets that on the
        # Oracle's own trial object before `end_trial`) marks ended trials.
        return trial_id in self.end_order

    def unended(self):
        """The ids of the trials not ended yet (running or in line)."""
        return [i for i in self.trials if not self.ended(i)]

    def was_tried(self, values):
        """Whether a trial with these values (`trial_identity`) exists."""
        return self._duplicate(values)

    def next_rng(self):
        """A `random.Random` from the saved random state, which it
        advances (a resumed search draws what it would have drawn)."""
        rng = random.Random(self._seed_state)
        self._seed_state += 1
        return rng

    def _compute_values_hash(self, values):
        return super()._compute_values_hash(self.trial_identity(values))

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        """Hands `tuner_id` its trial: its own ongoing one, a trial to run
        again, a new one (`populate_space`), IDLE (wait) or STOPPED (the
        search is over)."""
        self._expire_silent_workers()
        self._tuner_seen[tuner_id] = time.time()
        if tuner_id in self.ongoing_trials:
            return self.ongoing_trials[tuner_id]
        for trial_id, owner in list(self._interrupted.items()):
            if owner == tuner_id:
                # A restarted worker asks again under its own id: it runs
                # its interrupted trial again.
                self._requeue(trial_id)
                self._retry_queue.remove(trial_id)
                self._retry_queue.append(trial_id)
        self.tuner_ids.add(tuner_id)
        if self._retry_queue and self.stop_reason is None:
            trial_id = self._retry_queue.pop()
            # Run again from scratch: no metrics of the interrupted run.
            trial = Trial(
                hyperparameters=self.trials[trial_id].hyperparameters,
                trial_id=trial_id,
                status=RUNNING,
            )
            self.trials[trial_id] = trial
            return self._start(tuner_id, trial)
        if self.stop_reason is None and not (
            self.max_trials and len(self.trials) >= self.max_trials
        ):
            trial_id = self._next_trial_id()
            response = self.populate_space(trial_id)
            if response["status"] == RUNNING:
                hyperparameters = self.hyperparameters.copy()
                hyperparameters.values = response["values"]
                trial = Trial(
                    hyperparameters=hyperparameters,
                    trial_id=trial_id,
                    status=RUNNING,
                )
                self.trials[trial_id] = trial
                self.start_order.append(trial_id)
                self._record_values(trial)
                return self._start(tuner_id, trial)
            if response["status"] == TrialStatus.IDLE:
                return Trial(
                    self.hyperparameters.copy(), status=TrialStatus.IDLE
                )
        elif self.unended() and self.stop_reason is None:
            # Trials still run: one may come back for another worker.
            return Trial(self.hyperparameters.copy(), status=TrialStatus.IDLE)
        self.tuner_ids.discard(tuner_id)
        return Trial(self.hyperparameters.copy(), status=TrialStatus.STOPPED)

    def _start(self, tuner_id, trial):
        self.ongoing_trials[tuner_id] = trial
        self._last_seen[trial.trial_id] = time.time()
        self._save_trial(trial)
        self.save()
        self._display.on_trial_begin(trial)
        return trial

    @keras_tuner.synchronized
    def search_finished(self):
        """True once no trial runs, none will be created, and every live
        worker has been told to stop (distributed search: the chief may
        exit)."""
        self._expire_silent_workers()
        if self.stop_reason is not None:
            done = not self.ongoing_trials and not self._interrupted
        else:
            full = bool(self.max_trials) and (
                len(self.trials) >= self.max_trials
            )
            done = full and not self.unended()
        now = time.time()
        live = [
            tuner_id
            for tuner_id in self.tuner_ids
            if now - self._tuner_seen.get(tuner_id, now)
            <= self.heartbeat_timeout
        ]
        return done and not live

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        """Records a trial's metrics; empty `metrics` is a heartbeat."""
        trial = self.trials[trial_id]
        self._last_seen[trial_id] = time.time()
        if trial_id in self._interrupted:
            # Its worker survived a chief restart: it keeps the trial.
            owner = self._interrupted.pop(trial_id)
            if owner is not None:
                self.ongoing_trials[owner] = trial
                self.tuner_ids.add(owner)
        if not metrics or self.ended(trial_id):
            return trial
        return super().update_trial(trial_id, metrics, step=step)

    @keras_tuner.synchronized
    def end_trial(self, trial):
        """Ends a trial once; later calls for the same trial id only
        release the caller (a re-sent request, or a trial that was handed
        to a second worker after its first went silent)."""
        old = self.trials[trial.trial_id]
        self._interrupted.pop(trial.trial_id, None)
        # Released first, so the state saved with the result no longer
        # lists the trial as running.
        for tuner_id, ongoing in list(self.ongoing_trials.items()):
            if ongoing.trial_id == trial.trial_id:
                self.ongoing_trials.pop(tuner_id)
        self._last_seen.pop(trial.trial_id, None)
        if not self.ended(trial.trial_id):
            self._record_end(old, trial)

    def _record_end(self, old, trial):
        old.hyperparameters = trial.hyperparameters
        old.status = trial.status
        old.message = trial.message
        self._objective_cache.pop(old.trial_id, None)
        if old.trial_id in self._retry_queue:
            self._retry_queue.remove(old.trial_id)
        if old.status == COMPLETED:
            self.score_trial(old)
            if not math.isfinite(old.score):
                old.status = TrialStatus.INVALID
                old.message = (
                    "an objective is missing or not finite: "
                    f"{self.objective_values(old)!r}"
                )
        self._record_values(old)
        self._run_times[old.trial_id] += 1
        if not self._retry(old):
            self.end_order.append(old.trial_id)
            self._check_consecutive_failures()
        self._save_trial(old)
        self.save()
        self._display.on_trial_end(old)

    def _check_consecutive_failures(self):
        failed = []
        for trial_id in self.end_order:
            failed = (
                failed + [trial_id]
                if self.trials[trial_id].status == FAILED
                else []
            )
        if len(failed) >= self.max_consecutive_failed_trials:
            last = self.trials[failed[-1]]
            message = (last.message or "none recorded").strip().splitlines()
            self.stopped_by_failures = True
            self.stop_reason = (
                f"{len(failed)} trials in a row failed (trials "
                f"{', '.join(failed)}; max_consecutive_failed_trials="
                f"{self.max_consecutive_failed_trials}). A trial fails when "
                "its loss or objective is not finite, its model exceeds "
                "max_model_size, or training raises. Last error: "
                f"{message[-1] if message else 'none recorded'}"
            )

    # ----------------------------------------------------------------
    # What the trials reported.

    @staticmethod
    def metric_value(trial, name, direction="min"):
        """The best value of metric `name` over `trial`'s reports.

        Args:
            trial: a `keras_tuner.engine.trial.Trial`.
            name: the metric name, e.g. `"val_loss"` or `"num_params"`.
            direction: `"min"` or `"max"`, which value is best.

        Returns:
            float, or `None` if the metric is missing or not finite.
        """
        # keras-tuner registers every metric of a multi-objective with
        # direction "min", so the best value is taken here.
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

    def objective_values(self, trial):
        """Each objective's best value of `trial` in its own direction.

        Returns:
            A list of floats (one per objective), or `None` if a value is
            missing or not finite.
        """
        if trial.status != COMPLETED:
            return self._objective_values(trial)
        # A completed trial's metrics no longer change (end_trial ends a
        # trial once), so its values are computed once per process.
        if trial.trial_id not in self._objective_cache:
            self._objective_cache[trial.trial_id] = self._objective_values(
                trial
            )
        values = self._objective_cache[trial.trial_id]
        return None if values is None else list(values)

    def _objective_values(self, trial):
        values = [
            self.metric_value(trial, o.name, o.direction)
            for o in self.objectives
        ]
        return None if None in values else values

    def completed_trials(self):
        """Completed trials with a finite score, in trial order."""
        return [
            self.trials[trial_id]
            for trial_id in sorted(self.trials, key=_trial_number)
            if self.trials[trial_id].status == COMPLETED
            and self.trials[trial_id].score is not None
            and math.isfinite(self.trials[trial_id].score)
        ]

    def failed_trials(self):
        """Failed trials, in trial order: those that raised and those
        whose objectives came back not finite (keras-tuner's INVALID)."""
        return [
            trial
            for trial_id, trial in sorted(
                self.trials.items(), key=lambda item: _trial_number(item[0])
            )
            if trial.status in (FAILED, TrialStatus.INVALID)
        ]
