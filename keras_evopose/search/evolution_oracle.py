"""EvolutionOracle: EvoPose2D neuroevolution as a keras-tuner Oracle.

Steady-state by default: every new trial is a one-gene mutant of a parent
chosen among the trials completed so far (the first trial is the ancestor),
so it never waits for a whole generation. `population="generational"` runs
the paper's generations instead (see the class). A trial's values are `genotype`
(one canonical string), `parent_trial_id` (`""` for the ancestor),
`generation` and `mutation` (a description); only `genotype` identifies a
trial (no duplicate genotypes).

Crash safety: the trial files are the record. Every state file is written
to a temporary file and renamed into place, and `reload` rebuilds the tried
genotypes, the ended and the interrupted trials from the trial files, so
no single lost write orphans a trial or lets a genotype run twice; a
completed trial is never run again. The Oracle's own settings are saved and
a resume under different ones is refused, naming the difference.

Distributed search (keras-tuner's chief/worker mode): workers send a
heartbeat while they train; a trial whose worker stays silent for
`heartbeat_timeout` seconds is handed to another worker, and a restarted
chief waits that long for the workers that were running trials before it
gives their trials to anyone else.
"""

import collections
import inspect
import math
import os
import pathlib
import random
import time

import keras_tuner
from keras_tuner.src.distribute import utils as distribute_utils
from keras_tuner.src.engine import trial as trial_module

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.models.genotype import Genotype
from keras_evopose.search.fitness import SIZE_WEIGHT
from keras_evopose.search.fitness import TARGET_PARAMS
from keras_evopose.search.fitness import paper_fitness
from keras_evopose.search.mutation import GENE_WEIGHTINGS
from keras_evopose.search.mutation import mutate
from keras_evopose.search.pareto import fitness_order
from keras_evopose.search.pareto import pareto_order
from keras_evopose.search.search_space import SearchSpace
from keras_evopose.utils.state_files import StateFileError
from keras_evopose.utils.state_files import read_json_state
from keras_evopose.utils.state_files import write_json_atomically

TrialStatus = trial_module.TrialStatus
COMPLETED = TrialStatus.COMPLETED
FAILED = TrialStatus.FAILED
RUNNING = TrialStatus.RUNNING
ENDED = (COMPLETED, FAILED)
SELECTIONS = ("fitness", "pareto")
# Marks a trial that failed because of its environment (a bad or missing
# file, an I/O error), not its network: resuming runs it again.
ENVIRONMENT_FAILURE = "environment error:"


def environment_failure(message):
    """The cause line of a trial message marked `ENVIRONMENT_FAILURE`,
    else `None`."""
    for line in reversed((message or "").splitlines()):
        if ENVIRONMENT_FAILURE in line:
            return line.split(ENVIRONMENT_FAILURE, 1)[1].strip()
    return None


POPULATIONS = ("steady_state", "generational")


@keras_evopose_export("keras_evopose.search.ResumeError")
class ResumeError(StateFileError):
    """A search cannot be resumed as asked; the message says why and how."""


def _objectives(objective):
    # keras-tuner's MultiObjective is not public; it holds `.objectives`.
    return list(getattr(objective, "objectives", [objective]))


def _check_objective(objective):
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


def _check_positive(name, value, hint, integer=False):
    kinds = (int,) if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or not math.isfinite(value)
        or value <= 0
    ):
        kind = "int" if integer else "number"
        raise ValueError(f"{name}={value!r} must be a positive {kind}{hint}.")


def _trial_number(trial_id):
    return int(trial_id) if str(trial_id).isdigit() else -1


@keras_evopose_export("keras_evopose.search.EvolutionOracle")
class EvolutionOracle(keras_tuner.Oracle):
    """Pareto neuroevolution of EvoPose2D genotypes (a keras-tuner Oracle).

    Trial 0 trains the search space's ancestor. Every later trial mutates
    one gene of one stage of a parent (`keras_evopose.search.mutate`), drawn
    uniformly from the `num_parents` best completed trials: best by fitness
    (`selection="fitness"`) or in Pareto order (`selection="pareto"`). This
    is steady-state (mu + 1) evolution: each child's parent pool is chosen
    again from every trial completed so far, so no worker waits for a
    generation to finish (`population="steady_state"`, the default). The
    trial value `generation` is then the parent's plus one. Failed trials
    are never parents; genotypes are never repeated; invalid genotypes are
    never emitted.

    `population="generational"` is the reference's (mu + lambda) loop:
    generation 0 is the ancestor alone; generation 1 is
    `children_per_generation` mutants of it; before each later generation
    the `num_parents` best completed trials of all earlier generations
    (elitist: old parents compete with their children) become the parents
    and each gets `children_per_generation / num_parents` children (the
    paper: 4 parents, 64 children, 16 each; children are spread evenly if
    fewer parents completed). The trial value `generation` is that
    generation. While a generation is not finished and all its children
    are handed out, the Oracle answers IDLE (its workers wait); it never
    does so when nothing runs. The generation state is derived from the
    trial files alone (each trial's `generation` and `parent_trial_id`), so
    a search killed mid-generation resumes in it.

    `gene_weighting` selects how a mutation picks its gene (`"uniform"` or
    the reference's `"reference"`, see `keras_evopose.search.mutate`).

    Fitness (`trial.score`) is the paper's scalar
    (`keras_evopose.search.paper_fitness`) of the first objective's best
    value and the trial's `size_metric`; its direction is the first
    objective's (`fitness_direction`). `get_best_trials` returns completed
    trials in non-dominated order over all objectives (Pareto front first,
    then fitness within a front), not keras-tuner's summed multi-objective.

    A trial whose objective is not finite is marked failed.
    `max_consecutive_failed_trials` failures in a row stop the search: the
    state is saved, `create_trial` answers STOPPED and `stop_reason` names
    the failed trials and the last error.

    The settings that define the search (objectives, search space, parent
    pool, fitness) are saved with the state; `reload` (a resumed search)
    raises `ResumeError` naming every setting that differs. `max_trials`
    may change on resume.

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
        population: `"steady_state"` (default) or `"generational"`.
        children_per_generation: int, children of each generation in
            generational mode (the paper's lambda = 64); unused otherwise.
        gene_weighting: `"uniform"` (default) or `"reference"`, the
            mutation's gene draw.
        target_params: float, T of the fitness. Defaults to 5e6.
        size_weight: float, w of the fitness. Defaults to -0.07.
        size_metric: str, the metric holding the parameter count. Defaults
            to `"num_params"`.
        max_mutation_attempts: int, mutations tried per trial before the
            search stops because every nearby genotype was tried.
        heartbeat_timeout: float, seconds without a word from the worker
            running a trial after which the trial is handed to another
            worker (distributed search only). Defaults to 180.
        seed: int, seeds parent choice and mutation (saved with the state).
        max_retries_per_trial: int, retries of a trial that raised.
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
        population="steady_state",
        children_per_generation=64,
        gene_weighting="uniform",
        target_params=TARGET_PARAMS,
        size_weight=SIZE_WEIGHT,
        size_metric="num_params",
        max_mutation_attempts=100,
        heartbeat_timeout=180.0,
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
        _check_positive("num_parents", num_parents, " (the paper uses 4)", 1)
        if selection not in SELECTIONS:
            raise ValueError(
                f"selection={selection!r} is not allowed; use one of "
                f"{', '.join(repr(s) for s in SELECTIONS)}."
            )
        if population not in POPULATIONS:
            raise ValueError(
                f"population={population!r} is not allowed; use one of "
                f"{', '.join(repr(p) for p in POPULATIONS)}."
            )
        _check_positive(
            "children_per_generation",
            children_per_generation,
            " (the paper uses 64)",
            1,
        )
        if population == "generational" and children_per_generation < (
            num_parents
        ):
            raise ValueError(
                f"children_per_generation={children_per_generation} must be "
                f"at least num_parents={num_parents}, so every parent has a "
                "child (the paper: 64 children of 4 parents)."
            )
        if gene_weighting not in GENE_WEIGHTINGS:
            raise ValueError(
                f"gene_weighting={gene_weighting!r} is not allowed; use one "
                f"of {', '.join(repr(w) for w in GENE_WEIGHTINGS)}."
            )
        _check_positive("target_params", target_params, " (the paper uses 5e6)")
        if (
            isinstance(size_weight, bool)
            or not isinstance(size_weight, (int, float))
            or not math.isfinite(size_weight)
        ):
            raise ValueError(
                f"size_weight={size_weight!r} must be a finite number (the "
                "paper uses -0.07; 0 ignores the model size)."
            )
        _check_positive("max_mutation_attempts", max_mutation_attempts, "", 1)
        _check_positive(
            "heartbeat_timeout", heartbeat_timeout, " (seconds, e.g. 180)"
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
        self.population = population
        self.children_per_generation = children_per_generation
        self.gene_weighting = gene_weighting
        self.target_params = float(target_params)
        self.size_weight = float(size_weight)
        self.size_metric = size_metric
        self.max_mutation_attempts = max_mutation_attempts
        self.heartbeat_timeout = float(heartbeat_timeout)
        self.stop_reason = None
        self.stopped_by_failures = False
        # Set before a resume: re-run every failed trial, not only those
        # failed by their environment. `retried`: (trial_id, cause) of the
        # failed trials the last reload put back in line.
        self.retry_failed = False
        self.retried = []
        self._ancestor_string = Genotype.from_strings(
            search_space.ancestor
        ).to_string()
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
    # Settings saved with the state.

    @property
    def objectives(self):
        """The objectives as a list of `keras_tuner.Objective`."""
        return _objectives(self.objective)

    @property
    def fitness_direction(self):
        """`"min"` or `"max"`: how `trial.score` is ranked."""
        return self.objectives[0].direction

    def get_settings(self):
        """The settings that define this search, as plain JSON values."""
        return {
            "objectives": [[o.name, o.direction] for o in self.objectives],
            "search_space": self.search_space.get_config(),
            "num_parents": self.num_parents,
            "selection": self.selection,
            "population": self.population,
            "children_per_generation": self.children_per_generation,
            "gene_weighting": self.gene_weighting,
            "target_params": self.target_params,
            "size_weight": self.size_weight,
            "size_metric": self.size_metric,
        }

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
        state["ongoing_trials"] = {
            tuner_id: trial.trial_id
            for tuner_id, trial in self.ongoing_trials.items()
        }
        state["interrupted_trials"] = dict(self._interrupted)
        return state

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
                trial = trial_module.Trial.from_state(state)
            except (KeyError, TypeError, ValueError) as error:
                raise ResumeError(
                    f"{path} is not a keras-tuner trial ({error!r}); {remedy}"
                ) from None
            genotype = trial.hyperparameters.values.get("genotype")
            try:
                Genotype.from_string(genotype)
            except (TypeError, ValueError, AttributeError) as error:
                raise ResumeError(
                    f"{path} holds no valid genotype ({genotype!r}: "
                    f"{' '.join(str(error).split())}); {remedy}"
                ) from None
            trials[trial.trial_id] = trial
        return trials

    def reload(self):
        """Rebuilds the search state from the project's files.

        The trial files are the record of what ran: the tried genotypes,
        the ended and the interrupted trials come from them. `oracle.json`
        adds the random state, the order of ended trials and the settings,
        which must equal this Oracle's.
        """
        oracle_file = self._get_oracle_fname()
        trials = self._load_trials()
        if os.path.exists(oracle_file):
            state = read_json_state(
                oracle_file,
                "--resume cannot continue; remove it to rebuild the search "
                "state from the trial files",
            )
        else:
            state = {}
        if "settings" in state:
            self._check_settings(state["settings"], self._project_dir)
        elif trials and state:
            raise ResumeError(
                f"{oracle_file} was not written by EvolutionOracle (no "
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
        self.start_order = ids
        ended = [i for i in ids if trials[i].status in ENDED]
        saved_order = [i for i in state.get("end_order", []) if i in ended]
        self.end_order = saved_order + [
            i for i in ended if i not in saved_order
        ]
        self._run_times = collections.defaultdict(int)
        self._run_times.update(state.get("run_times", {}))
        self.seed = state.get("seed", self.seed)
        self._seed_state = state.get("seed_state", self.seed + len(trials))
        self.stop_reason = state.get("stop_reason")
        self.stopped_by_failures = state.get("stopped_by_failures", False)
        if self.retried:
            # Every stop reason is derived again as the search goes on.
            self.stop_reason = None
            self.stopped_by_failures = False
        self._tried_so_far = set()
        self._id_to_hash = collections.defaultdict(lambda: None)
        for trial in trials.values():
            self._record_values(trial)
        # Unended trials were interrupted. Their workers (if any survive
        # a chief restart) keep the trial; others get it after a timeout.
        owners = {
            trial_id: tuner_id
            for tuner_id, trial_id in state.get("ongoing_trials", {}).items()
        }
        owners.update(
            {
                trial_id: tuner_id
                for trial_id, tuner_id in state.get(
                    "interrupted_trials", {}
                ).items()
                if trial_id not in owners
            }
        )
        self.ongoing_trials = {}
        self._retry_queue = []
        self._interrupted = {}
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
        self.trials[trial_id] = trial_module.Trial(
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
                print(
                    f"EvolutionOracle: worker {tuner_id} has been silent for "
                    f"{now - last:.0f} s; trial {trial.trial_id} goes to "
                    "another worker."
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

    def _ended(self, trial_id):
        # `end_order` (not the status: a local tuner sets that on the
        # Oracle's own trial object before `end_trial`) marks ended trials.
        return trial_id in self.end_order

    def _unended(self):
        return [i for i in self.trials if not self._ended(i)]

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        """Hands `tuner_id` its trial: its own ongoing one, a trial to run
        again, a new mutant, IDLE (wait) or STOPPED (the search is over)."""
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
            trial = trial_module.Trial(
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
                trial = trial_module.Trial(
                    hyperparameters=hyperparameters,
                    trial_id=trial_id,
                    status=RUNNING,
                )
                self.trials[trial_id] = trial
                self.start_order.append(trial_id)
                self._record_values(trial)
                return self._start(tuner_id, trial)
            if response["status"] == TrialStatus.IDLE:
                return trial_module.Trial(
                    self.hyperparameters.copy(), status=TrialStatus.IDLE
                )
        elif self._unended() and self.stop_reason is None:
            # Trials still run: one may come back for another worker.
            return trial_module.Trial(
                self.hyperparameters.copy(), status=TrialStatus.IDLE
            )
        self.tuner_ids.discard(tuner_id)
        return trial_module.Trial(
            self.hyperparameters.copy(), status=TrialStatus.STOPPED
        )

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
            done = full and not self._unended()
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
        if not metrics or self._ended(trial_id):
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
        if not self._ended(trial.trial_id):
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
    # Evolution.

    def populate_space(self, trial_id):
        if not self._duplicate({"genotype": self._ancestor_string}):
            return self._running(self._ancestor_string, "", 0, "ancestor")
        if self.population == "generational":
            return self._populate_generation()
        parents = self.select_parents(self.completed_trials())
        if not parents:
            if self._unended():
                # A running trial's result may yield a parent.
                return {"status": TrialStatus.IDLE}
            self.stop_reason = (
                "no completed trial to mutate and none running (the "
                "ancestor failed)"
            )
            return {"status": TrialStatus.STOPPED}
        rng = random.Random(self._seed_state)
        self._seed_state += 1
        for _ in range(self.max_mutation_attempts):
            parent = parents[rng.randrange(len(parents))]
            values = parent.hyperparameters.values
            child, description = self._mutate(
                Genotype.from_string(values["genotype"]), rng
            )
            if not self._duplicate({"genotype": child}):
                return self._running(
                    child,
                    parent.trial_id,
                    int(values.get("generation", 0)) + 1,
                    description,
                )
        if self._unended():
            # Running trials may become parents with untried neighbours.
            return {"status": TrialStatus.IDLE}
        self.stop_reason = (
            f"every mutation tried in {self.max_mutation_attempts} attempts "
            "was already trained (widen the search space or raise "
            "max_mutation_attempts)"
        )
        return {"status": TrialStatus.STOPPED}

    def _mutate(self, genotype, rng):
        """A child of `genotype` as its trial value (the genotype string)
        and the mutation's description."""
        child, description = mutate(
            genotype.to_strings(),
            self.search_space,
            rng,
            gene_weighting=self.gene_weighting,
        )
        return Genotype.from_strings(child).to_string(), description

    # ----------------------------------------------------------------
    # Generations (population="generational"), derived from the trials.

    @staticmethod
    def generation_of(trial):
        """The trial's `generation` value (0 for the ancestor)."""
        return int(trial.hyperparameters.values.get("generation", 0))

    def current_generation(self):
        """The newest generation that has a trial (0: the ancestor)."""
        return max(
            (self.generation_of(t) for t in self.trials.values()), default=0
        )

    def generation_parents(self, generation):
        """The parents of `generation`: the `num_parents` best completed
        trials of the earlier generations (by fitness, or Pareto order
        with `selection="pareto"`)."""
        return self.select_parents(
            [
                t
                for t in self.completed_trials()
                if self.generation_of(t) < generation
            ]
        )

    def _populate_generation(self):
        generation = self.current_generation()
        members = [
            t
            for t in self.trials.values()
            if self.generation_of(t) == generation
        ]
        if generation > 0 and len(members) < self.children_per_generation:
            response = self._generation_child(generation, members)
            if response is not None:
                return response
            # Every parent's neighbours were tried: the generation ends
            # short once its trials have ended.
        if any(not self._ended(t.trial_id) for t in members):
            # The next parents depend on this generation's results.
            return {"status": TrialStatus.IDLE}
        response = self._generation_child(generation + 1, [])
        if response is not None:
            return response
        self.stop_reason = (
            "no completed trial to mutate (the ancestor failed)"
            if not self.generation_parents(generation + 1)
            else (
                f"every mutation of generation {generation + 1}'s parents "
                f"tried in {self.max_mutation_attempts} attempts each was "
                "already trained (widen the search space or raise "
                "max_mutation_attempts)"
            )
        )
        return {"status": TrialStatus.STOPPED}

    def _generation_child(self, generation, members):
        """A new child of `generation` (its parent: the one with the
        fewest children so far), or `None` if no parent has an untried
        neighbour."""
        parents = self.generation_parents(generation)
        counts = collections.Counter(
            t.hyperparameters.values.get("parent_trial_id") for t in members
        )
        # Fewest children first; ties in parent rank order.
        order = sorted(
            range(len(parents)),
            key=lambda i: (counts[parents[i].trial_id], i),
        )
        rng = random.Random(self._seed_state)
        self._seed_state += 1
        for index in order:
            parent = parents[index]
            genotype = Genotype.from_string(
                parent.hyperparameters.values["genotype"]
            )
            for _ in range(self.max_mutation_attempts):
                # As the reference: the same parent is mutated again until
                # the child is new.
                child, description = self._mutate(genotype, rng)
                if not self._duplicate({"genotype": child}):
                    return self._running(
                        child, parent.trial_id, generation, description
                    )
        return None

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

    # ----------------------------------------------------------------
    # Scores and ranking.

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

    def fitness(self, trial):
        """The paper's scalar fitness of a trial (NaN if not computable)."""
        primary = self.objectives[0]
        return paper_fitness(
            self.metric_value(trial, primary.name, primary.direction),
            self.metric_value(trial, self.size_metric, "min"),
            direction=primary.direction,
            target_params=self.target_params,
            size_weight=self.size_weight,
        )

    def score_trial(self, trial):
        trial.score = self.fitness(trial)
        if self.objective_values(trial) is None:
            trial.score = float("nan")
        # The step the metrics were reported at: the scored epoch, whose
        # weights the tuner kept as the trial's checkpoint.
        primary = self.objectives[0].name
        if trial.metrics.exists(primary):
            history = trial.metrics.get_history(primary)
            trial.best_step = history[-1].step if history else 0

    def completed_trials(self):
        """Completed trials with a finite fitness, in trial order."""
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

    def _ranked(self, trials, selection):
        """`trials` (in trial order) best first: by fitness
        (`selection="fitness"`), or front by front (`"pareto"`)."""
        if selection == "fitness":
            order = fitness_order(
                [t.score for t in trials], self.fitness_direction
            )
        else:
            order = [i for front in self._fronts(trials) for i in front]
        return [trials[i] for i in order]

    def _fronts(self, trials):
        """The Pareto fronts of `trials` as lists of indices into it."""
        return pareto_order(
            [self.objective_values(t) for t in trials],
            [objective.direction for objective in self.objectives],
            [t.score for t in trials],
            self.fitness_direction,
        )

    def select_parents(self, candidates):
        """The `num_parents` best of `candidates` (completed trials in
        trial order), ranked as `selection` says."""
        return self._ranked(candidates, self.selection)[: self.num_parents]

    def best_trial(self):
        """The completed trial with the best fitness, or `None`."""
        ordered = self._ranked(self.completed_trials(), "fitness")
        return ordered[0] if ordered else None

    def pareto_front(self):
        """The completed trials no other completed trial dominates."""
        completed = self.completed_trials()
        fronts = self._fronts(completed)
        return [completed[i] for i in fronts[0]] if fronts else []

    def get_best_trials(self, num_trials=1):
        """Completed trials in non-dominated order (front 0 first).

        Within a front, trials are ordered by fitness. Like keras-tuner's
        default, the list is padded with unfinished trials when fewer than
        `num_trials` trials completed.
        """
        ordered = self._ranked(self.completed_trials(), "pareto")
        if len(ordered) < num_trials:
            chosen = {trial.trial_id for trial in ordered}
            ordered += [
                trial
                for trial in self.trials.values()
                if trial.trial_id not in chosen
            ]
        return ordered[:num_trials]
