"""EvolutionOracle: EvoPose2D neuroevolution as a keras-tuner Oracle.

Steady-state by default: every new trial is a one-gene mutant of a parent
chosen among the trials completed so far (the first trial is the ancestor),
so it never waits for a whole generation. `population="generational"` runs
the paper's generations instead (see the class). A trial's values are `genotype`
(one canonical string), `parent_trial_id` (`""` for the ancestor),
`generation` and `mutation` (a description); only `genotype` identifies a
trial (no duplicate genotypes).

Resuming, retries and worker liveness are its base's
(`keras_evopose.search.resumable_oracle.ResumableOracle`); this module
holds the evolution: settings, new trials, parents and fitness.
"""

import collections
import math

# Re-exported (with the names below marked F401) since the base Oracle
# moved to `resumable_oracle`: importers and tests still find them here.
import time  # noqa: F401

import keras_tuner

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.models.genotype import Genotype
from keras_evopose.search.fitness import SIZE_WEIGHT
from keras_evopose.search.fitness import TARGET_PARAMS
from keras_evopose.search.fitness import paper_fitness
from keras_evopose.search.mutation import GENE_WEIGHTINGS
from keras_evopose.search.mutation import mutate
from keras_evopose.search.pareto import fitness_order
from keras_evopose.search.pareto import pareto_order
from keras_evopose.search.resumable_oracle import ENVIRONMENT_FAILURE  # noqa: F401
from keras_evopose.search.resumable_oracle import RUNNING
from keras_evopose.search.resumable_oracle import ResumableOracle
from keras_evopose.search.resumable_oracle import ResumeError  # noqa: F401
from keras_evopose.search.resumable_oracle import TrialStatus
from keras_evopose.search.resumable_oracle import write_json_atomically  # noqa: F401
from keras_evopose.search.search_space import SearchSpace
from keras_evopose.utils.validation import check_positive_int

SELECTIONS = ("fitness", "pareto")
POPULATIONS = ("steady_state", "generational")


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


def _check_positive(name, value, hint):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name}={value!r} must be a positive number{hint}.")


@keras_evopose_export("keras_evopose.search.EvolutionOracle")
class EvolutionOracle(ResumableOracle):
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
        # (The paper: 4 parents, 64 children per generation.)
        check_positive_int("num_parents", num_parents, "EvolutionOracle")
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
        check_positive_int(
            "children_per_generation",
            children_per_generation,
            "EvolutionOracle",
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
        check_positive_int(
            "max_mutation_attempts", max_mutation_attempts, "EvolutionOracle"
        )
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
        self.heartbeat_timeout = float(heartbeat_timeout)
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
        self._ancestor_string = Genotype.from_strings(
            search_space.ancestor
        ).to_string()

    # ----------------------------------------------------------------
    # Settings saved with the state.

    @property
    def fitness_direction(self):
        """`"min"` or `"max"`: how `trial.score` is ranked."""
        return self.objectives[0].direction

    def get_settings(self):
        """The settings that define this search, as plain JSON values."""
        return {
            **super().get_settings(),
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

    def check_values(self, values):
        genotype = values.get("genotype")
        try:
            Genotype.from_string(genotype)
        except (TypeError, ValueError, AttributeError) as error:
            raise ValueError(
                f"holds no valid genotype ({genotype!r}: "
                f"{' '.join(str(error).split())})"
            ) from None

    def trial_identity(self, values):
        # Duplicates are judged by genotype only: the same network reached
        # from another parent is the same individual.
        if "genotype" in values:
            return {"genotype": values["genotype"]}
        return values

    # ----------------------------------------------------------------
    # Evolution.

    def populate_space(self, trial_id):
        if not self.was_tried({"genotype": self._ancestor_string}):
            return self._running(self._ancestor_string, "", 0, "ancestor")
        if self.population == "generational":
            return self._populate_generation()
        parents = self.select_parents(self.completed_trials())
        if not parents:
            if self.unended():
                # A running trial's result may yield a parent.
                return {"status": TrialStatus.IDLE}
            self.stop_reason = (
                "no completed trial to mutate and none running (the "
                "ancestor failed)"
            )
            return {"status": TrialStatus.STOPPED}
        rng = self.next_rng()
        for _ in range(self.max_mutation_attempts):
            parent = parents[rng.randrange(len(parents))]
            values = parent.hyperparameters.values
            child, description = self._mutate(
                Genotype.from_string(values["genotype"]), rng
            )
            if not self.was_tried({"genotype": child}):
                return self._running(
                    child,
                    parent.trial_id,
                    int(values.get("generation", 0)) + 1,
                    description,
                )
        if self.unended():
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
        if any(not self.ended(t.trial_id) for t in members):
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
        rng = self.next_rng()
        for index in order:
            parent = parents[index]
            genotype = Genotype.from_string(
                parent.hyperparameters.values["genotype"]
            )
            for _ in range(self.max_mutation_attempts):
                # As the reference: the same parent is mutated again until
                # the child is new.
                child, description = self._mutate(genotype, rng)
                if not self.was_tried({"genotype": child}):
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

    # ----------------------------------------------------------------
    # Scores and ranking.

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
