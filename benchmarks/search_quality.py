"""Search quality at equal compute: EvolutionOracle vs random search, NSGA-II.

Does the EvoPose2D search earn its compute? Every method searches the same
space for the same proxy pose task with the same total budget of training
steps, and is scored by the hypervolume of its (validation loss,
parameters) front and of its (validation loss, LiteRT latency) front.

Task: the main job's own data and per-trial recipe
(`keras_evopose.search.coco_search.trial_data` and `trial_hypermodel` of a
`COCOSearchConfig(preset="test", passes_per_epoch=1)`): every trial trains
on `data/coco_kpt_extra` (191 people, 12 steps of 16 per epoch, the
search's augmentation) and is scored on the 80 people of
`data/coco_kpt_mini/val2017`, whom it never sees; 64x48 input, a fresh
Adam per trial from 1e-2 with a cosine to 0 over the trial's own steps,
L2 1e-5. The objective is the best epoch's `val_heatmap_mse` (the search's
fitness metric, keras-tuner's best-epoch rule). The space is
`SearchSpace.from_preset("test")` (4 stages; kernel 3/5, repeats 1-2,
channels in steps of 8 up to the ancestor's; no stride genes).

Trials learn here: a trial trained from scratch for `--baseline-epochs`
(default: the ancestor's 8 epochs, 96 steps) ends well below the untrained
loss (docs/benchmarks.md has the numbers).

Methods (each over `--seeds` seeds, the same budget in training steps):

- `evolution`: `EvolutionOracle` (steady state) + `EvolutionTuner` with
  weight transfer: the ancestor trains `--ancestor-epochs`, each child
  `--child-epochs`.
- `restart_control`: the same oracle, parent selection and steps, but the
  child keeps its parent's genotype: it continues the parent's weights
  with a fresh optimizer and learning-rate schedule (the restart) and no
  mutation. What `evolution` gains over it is the mutations' doing.
- `evolution_generational`: `population="generational"` (not run by
  default).
- `evolution_no_transfer`: steady state, children trained from scratch
  (`EvolutionTuner(transfer_weights=False)`) for the same child epochs
  (not run by default).
- `random_search`: keras-tuner `RandomSearch` over the same genes
  (`Genotype.from_hyperparameters`), every trial from scratch for
  `--baseline-epochs`.
- `nsga2`: optuna's `NSGAIISampler` over the same genes, two objectives
  (validation loss, parameters), every trial like random search.
- `ancestor_full_budget`: no search: the ancestor alone trained for the
  whole budget (what any search has to beat).

A method runs trials until the next one would exceed `--budget-steps`.
Each trial's parameters are `model.count_params()` and its latency is
`keras_evopose.callbacks.LiteRTLatency`'s (float32, 1 thread, the CPU
clock of the timing thread, which other jobs on a shared machine inflate
least), cached per architecture in `OUTPUT/latency_cache.json`. Both
hypervolumes use one fixed reference point: the validation loss of the
all-zero prediction (what a network that learned nothing scores) and the
parameters / latency of the largest genotype of the space; each is
reported normalized by the box from the origin to that point.

Writes `search_quality.json` (every trial) and `search_quality.png`
(hypervolume vs budget per method, final fronts) to `--output`.

    python benchmarks/search_quality.py [--quick] [--seeds 0 1 2] \
        [--methods evolution restart_control ...] [--budget-steps 960] \
        [--output search_quality_results]
    python benchmarks/search_quality.py --merge DIR [DIR ...] \
        [--remeasure-latency] --output merged

Results and reading: docs/benchmarks.md, "Search quality at equal
compute".
"""

import argparse
import inspect
import json
import math
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = pathlib.Path(__file__).resolve().parents[1]
PRESET = "test"
OBJECTIVE = "val_heatmap_mse"
METHODS = (
    "evolution",
    "restart_control",
    "evolution_generational",
    "evolution_no_transfer",
    "random_search",
    "nsga2",
    "ancestor_full_budget",
)
DEFAULT_METHODS = (
    "evolution",
    "restart_control",
    "random_search",
    "nsga2",
    "ancestor_full_budget",
)


# --------------------------------------------------------------------
# The task.


class Task:
    """The main job's data and trial recipe for one seed."""

    def __init__(self, output, seed, quick):
        from keras_evopose.search.coco_search import COCOSearchConfig
        from keras_evopose.search.coco_search import trial_data
        from keras_evopose.search.coco_search import trial_hypermodel

        settings = {"passes_per_epoch": 1, "seed": seed}
        if quick:
            # The smallest input the ancestor's stride divides; 1-step
            # epochs of 4 images.
            settings["input_size"] = COCOSearchConfig.parse(
                "input_size", "32x32"
            )
            settings["batch_size"] = 4
        self.config = COCOSearchConfig(
            preset=PRESET, output=str(output), **settings
        )
        self.train_data, self.val_data, self.validation = trial_data(
            self.config, output
        )
        self.steps_per_epoch = 1 if quick else self.train_data.steps()
        self.validation_steps = 1 if quick else self.val_data.steps()
        self.hypermodel = trial_hypermodel(self.config)
        if quick:
            # Tracing a child's functions costs more than its one step.
            self.hypermodel.compile_kwargs["run_eagerly"] = True

    def fit_kwargs(self):
        """What every method passes to `search`/`fit` besides epochs."""
        return {
            "validation_data": self.val_data,
            "steps_per_epoch": self.steps_per_epoch,
            "validation_steps": self.validation_steps,
            "shuffle": False,  # the pipeline shuffles
            "verbose": 0,
        }

    def zero_prediction_loss(self, heatmap_size):
        """`val_heatmap_mse` of an all-zero prediction (the metric the
        trials are scored by, over the same validation batches)."""
        import keras

        from keras_evopose.metrics import HeatmapMSE

        metric = HeatmapMSE()
        batches = self.val_data(heatmap_size).take(self.validation_steps)
        for _, heatmaps, weights in batches:
            metric.update_state(
                heatmaps, keras.ops.zeros_like(heatmaps), weights
            )
        return float(metric.result())


def largest_genotype(space):
    """The genotype of `space` with the most parameters."""
    from keras_evopose.models import genotype as genotype_lib

    specs = genotype_lib.Genotype.from_strings(space.ancestor).blocks
    return [
        spec.replace(
            kernel_size=max(space.kernel_sizes),
            num_repeats=space.max_repeats,
            filters=space.channel_choices(stage)[-1],
        ).to_string()
        for stage, spec in enumerate(specs, 1)
    ]


class Sizes:
    """Parameters and LiteRT latency of a genotype, built by the task's
    hypermodel (cached: params in memory, latency in a JSON file that
    every process of a run shares through `LiteRTLatency`)."""

    def __init__(self, hypermodel, cache_path, quick):
        from keras_evopose.callbacks import LiteRTLatency

        self.hypermodel = hypermodel
        self.params = {}
        self.latency_callback = LiteRTLatency(
            clock="cpu",
            num_rounds=2 if quick else 5,
            num_invokes=2 if quick else 20,
            cache_path=cache_path,
        )

    def build(self, genotype):
        """The genotype's network, built as its trials are."""
        import keras
        import keras_tuner

        from keras_evopose.models import Genotype

        keras.backend.clear_session()
        hp = keras_tuner.HyperParameters()
        hp.Fixed("genotype", Genotype.from_strings(genotype).to_string())
        return self.hypermodel.build(hp)

    def num_params(self, genotype):
        key = ",".join(genotype)
        if key not in self.params:
            self.params[key] = float(self.build(genotype).count_params())
        return self.params[key]

    def latency_ms(self, genotype):
        self.latency_callback.set_model(self.build(genotype))
        self.latency_callback.on_train_begin()
        return self.latency_callback.latency_ms


# --------------------------------------------------------------------
# Metrics.

# The two fronts: validation loss against each size measure.
SIZE_MEASURES = ("num_params", "latency_ms")


def hypervolume(points, reference):
    """2-D hypervolume (both objectives minimized) dominated by `points`
    inside the box below `reference`."""
    inside = sorted(
        (loss, size)
        for loss, size in points
        if loss < reference[0] and size < reference[1]
    )
    volume, best_size = 0.0, reference[1]
    for loss, size in inside:
        if size < best_size:
            volume += (reference[0] - loss) * (best_size - size)
            best_size = size
    return volume


def pareto_points(points):
    from keras_evopose.search import non_dominated_sort

    if not points:
        return []
    front = non_dominated_sort(points, ["min", "min"])[0]
    return sorted(points[i] for i in front)


def trial_points(trials, size_measure, budget=None):
    """(loss, size) of the scored trials (within `budget` steps)."""
    return [
        (t[OBJECTIVE], t[size_measure])
        for t in trials
        if t[OBJECTIVE] is not None
        and t.get(size_measure) is not None
        and (budget is None or t["cumulative_steps"] <= budget)
    ]


def hypervolume_curve(trials, reference, checkpoints):
    """Normalized hypervolume of the trials done within each budget."""
    box = reference[0] * reference[1]
    return [
        hypervolume(trial_points(trials, reference[2], budget), reference) / box
        for budget in checkpoints
    ]


# --------------------------------------------------------------------
# Methods.


def _gene_hypermodel_class():
    import keras_tuner

    from keras_evopose.models import Genotype

    class GeneHyperModel(keras_tuner.HyperModel):
        """The task's hypermodel, from `hp["genotype"]` (evolution) or
        from the gene hyperparameters (keras-tuner's tuners, optuna)."""

        def __init__(self, hypermodel, space):
            super().__init__()
            self.hypermodel, self.space = hypermodel, space

        def _with_genotype(self, hp):
            if "genotype" in hp.values:
                return hp
            genotype = Genotype.from_hyperparameters(hp, self.space)
            fixed = keras_tuner.HyperParameters()
            fixed.Fixed("genotype", genotype.to_string())
            return fixed

        def build(self, hp):
            return self.hypermodel.build(self._with_genotype(hp))

        def fit(self, hp, model, *args, **kwargs):
            return self.hypermodel.fit(
                self._with_genotype(hp), model, *args, **kwargs
            )

    return GeneHyperModel


def _restart_oracle_class():
    from keras_evopose.search import EvolutionOracle

    class RestartOracle(EvolutionOracle):
        """`EvolutionOracle` whose children keep their parent's genotype:
        the same parent selection, weight transfer and steps, no
        mutation."""

        def populate_space(self, trial_id):
            parents = self.select_parents(self.completed_trials())
            if not self.was_tried({"genotype": self._ancestor_string}) or (
                not parents
            ):
                # The ancestor first; waiting or stopping as evolution.
                return super().populate_space(trial_id)
            parent = parents[self.next_rng().randrange(len(parents))]
            values = parent.hyperparameters.values
            return self._running(
                values["genotype"],
                parent.trial_id,
                int(values.get("generation", 0)) + 1,
                "restart (no mutation)",
            )

    return RestartOracle


def _timed(tuner_class):
    """`tuner_class` recording when each trial ended."""

    class Timed(tuner_class):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            self.ended_at = getattr(self, "ended_at", {})
            self.ended_at[trial.trial_id] = time.perf_counter()

        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            # keras-tuner 1.4.8 imports tensorboard on the TensorFlow
            # backend for every trial; TensorFlow 2.21 no longer installs it.
            return

    return Timed


def generational_available():
    from keras_evopose.search import EvolutionOracle

    return "population" in inspect.signature(EvolutionOracle).parameters


def run_evolution(method, seed, setup, directory):
    import keras
    import keras_tuner

    from keras_evopose.models import Genotype
    from keras_evopose.search import EvolutionOracle
    from keras_evopose.search import EvolutionTuner

    args, task, space = setup["args"], setup["task"], setup["space"]
    steps_per_epoch = task.steps_per_epoch
    ancestor_epochs = args.ancestor_epochs
    ancestor_steps = ancestor_epochs * steps_per_epoch
    child_steps = args.child_epochs * steps_per_epoch
    max_trials = 1 + max(0, (args.budget_steps - ancestor_steps) // child_steps)
    if method == "ancestor_full_budget":
        ancestor_epochs = max(1, args.budget_steps // steps_per_epoch)
        ancestor_steps = ancestor_epochs * steps_per_epoch
        max_trials = 1
    oracle_kwargs = {}
    if method == "evolution_generational":
        oracle_kwargs = {
            "population": "generational",
            "children_per_generation": args.children_per_generation,
        }
    oracle_class = (
        _restart_oracle_class()
        if method == "restart_control"
        else EvolutionOracle
    )
    keras.utils.set_random_seed(seed)
    oracle = oracle_class(
        objective=[
            keras_tuner.Objective(OBJECTIVE, "min"),
            keras_tuner.Objective("num_params", "min"),
        ],
        search_space=space,
        max_trials=max_trials,
        num_parents=args.num_parents,
        seed=seed,
        **oracle_kwargs,
    )
    oracle.verbose = 0
    tuner = _timed(EvolutionTuner)(
        oracle,
        hypermodel=setup["hypermodel"],
        ancestor_epochs=ancestor_epochs,
        child_epochs=args.child_epochs,
        transfer_weights=method != "evolution_no_transfer",
        directory=str(directory),
        project_name=method,
        overwrite=True,
    )
    started = time.perf_counter()
    tuner.search(task.train_data, **task.fit_kwargs())
    trials = []
    for trial in sorted(oracle.trials.values(), key=lambda t: int(t.trial_id)):
        values = trial.hyperparameters.values
        is_child = bool(values.get("parent_trial_id"))
        trials.append(
            {
                "trial_id": trial.trial_id,
                "status": trial.status,
                "genotype": Genotype.from_string(
                    values["genotype"]
                ).to_strings(),
                "parent_trial_id": values.get("parent_trial_id", ""),
                "mutation": values.get("mutation", ""),
                "generation": values.get("generation", 0),
                "steps": child_steps if is_child else ancestor_steps,
                OBJECTIVE: oracle.metric_value(trial, OBJECTIVE),
                "ended_s": tuner.ended_at.get(trial.trial_id, started)
                - started,
            }
        )
    return trials


def run_random_search(seed, setup, directory):
    import keras
    import keras_tuner

    from keras_evopose.models import Genotype
    from keras_evopose.search import EvolutionOracle

    args, task = setup["args"], setup["task"]
    trial_steps = args.baseline_epochs * task.steps_per_epoch
    max_trials = max(1, args.budget_steps // trial_steps)
    keras.utils.set_random_seed(seed)
    tuner = _timed(keras_tuner.RandomSearch)(
        setup["hypermodel"],
        objective=keras_tuner.Objective(OBJECTIVE, "min"),
        max_trials=max_trials,
        seed=seed,
        directory=str(directory),
        project_name="random_search",
        overwrite=True,
    )
    started = time.perf_counter()
    tuner.search(
        task.train_data, epochs=args.baseline_epochs, **task.fit_kwargs()
    )
    trials = []
    for trial in sorted(
        tuner.oracle.trials.values(), key=lambda t: int(t.trial_id)
    ):
        trials.append(
            {
                "trial_id": trial.trial_id,
                "status": trial.status,
                "genotype": Genotype.from_hyperparameters(
                    dict(trial.hyperparameters.values), setup["space"]
                ).to_strings(),
                "steps": trial_steps,
                OBJECTIVE: EvolutionOracle.metric_value(trial, OBJECTIVE),
                "ended_s": tuner.ended_at.get(trial.trial_id, started)
                - started,
            }
        )
    return trials


def run_nsga2(seed, setup):
    import keras
    import keras_tuner
    import optuna

    from keras_evopose.models import Genotype

    args, task, space = setup["args"], setup["task"], setup["space"]
    trial_steps = args.baseline_epochs * task.steps_per_epoch
    max_trials = max(1, args.budget_steps // trial_steps)
    definitions = space.to_hyperparameters().space
    hypermodel = setup["hypermodel"]
    trials = []
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)

    def objective(study_trial):
        values = {}
        for definition in definitions:
            if isinstance(definition, keras_tuner.engine.hyperparameters.Int):
                values[definition.name] = study_trial.suggest_int(
                    definition.name, definition.min_value, definition.max_value
                )
            else:
                values[definition.name] = study_trial.suggest_categorical(
                    definition.name, list(definition.values)
                )
        genotype = Genotype.from_hyperparameters(values, space).to_strings()
        hp = keras_tuner.HyperParameters()
        hp.values.update(values)
        keras_clear()
        model = hypermodel.build(hp)
        history = hypermodel.fit(
            hp,
            model,
            task.train_data,
            epochs=args.baseline_epochs,
            **task.fit_kwargs(),
        )
        losses = [v for v in history.history[OBJECTIVE] if math.isfinite(v)]
        loss = min(losses) if losses else None
        num_params = float(model.count_params())
        trials.append(
            {
                "trial_id": str(study_trial.number),
                "status": "COMPLETED" if loss is not None else "FAILED",
                "genotype": genotype,
                "steps": trial_steps,
                OBJECTIVE: loss,
                "ended_s": time.perf_counter() - started,
            }
        )
        if loss is None:
            raise optuna.TrialPruned()
        return loss, num_params

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=optuna.samplers.NSGAIISampler(
            population_size=args.nsga2_population, seed=seed
        ),
    )
    study.optimize(objective, n_trials=max_trials)
    return trials


def run_method(method, seed, setup, directory, measure_latency):
    keras_clear()
    if method.startswith(("evolution", "ancestor", "restart")):
        trials = run_evolution(method, seed, setup, directory)
    elif method == "random_search":
        trials = run_random_search(seed, setup, directory)
    else:
        trials = run_nsga2(seed, setup)
    total = 0
    sizes = setup["sizes"]
    for trial in trials:
        total += trial["steps"]
        trial["cumulative_steps"] = total
        trial["num_params"] = sizes.num_params(trial["genotype"])
        trial["latency_ms"] = (
            sizes.latency_ms(trial["genotype"]) if measure_latency else None
        )
    return trials


def keras_clear():
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


# --------------------------------------------------------------------
# Analysis.


def references(result):
    """`{size_measure: (loss, size, size_measure)}` of `result`."""
    point = result["reference_point"]
    return {
        measure: (point[OBJECTIVE], point[measure], measure)
        for measure in SIZE_MEASURES
    }


def summarize_run(trials, result):
    from keras_evopose.search import paper_fitness

    checkpoints = result["checkpoints"]
    done = [t for t in trials if t[OBJECTIVE] is not None]
    summary = {
        "num_trials": len(trials),
        "num_completed": len(done),
        "steps_used": trials[-1]["cumulative_steps"] if trials else 0,
        "best_fitness": min(
            (paper_fitness(t[OBJECTIVE], t["num_params"]) for t in done),
            default=None,
        ),
        "best_val_heatmap_mse": min((t[OBJECTIVE] for t in done), default=None),
    }
    for measure, reference in references(result).items():
        points = trial_points(trials, measure)
        measured = len(points) == len(done) and done
        curve = (
            hypervolume_curve(trials, reference, checkpoints)
            if measured
            else None
        )
        suffix = "" if measure == "num_params" else "_latency"
        summary[f"hypervolume{suffix}"] = curve[-1] if curve else None
        summary[f"hypervolume{suffix}_curve"] = curve
        summary[f"front{suffix}"] = [list(p) for p in pareto_points(points)]
        summary[f"outside_reference{suffix}"] = sum(
            size >= reference[1] for _, size in points
        )
    return summary


def mutation_report(trials):
    """Per mutated gene: children, children fitter than their parent, and
    children on the run's final front (an evolution run's trials)."""
    from keras_evopose.search import paper_fitness

    by_id = {t["trial_id"]: t for t in trials}
    done = [t for t in trials if t[OBJECTIVE] is not None]
    front = set(pareto_points(trial_points(done, "num_params")))
    report = {}
    for trial in done:
        if not trial.get("parent_trial_id"):
            continue
        parent = by_id[trial["parent_trial_id"]]
        words = trial["mutation"].split()
        gene = words[2] if len(words) > 2 else (trial["mutation"] or "?")
        row = report.setdefault(
            gene, {"children": 0, "fitter_than_parent": 0, "on_front": 0}
        )
        row["children"] += 1
        if parent[OBJECTIVE] is not None and paper_fitness(
            trial[OBJECTIVE], trial["num_params"]
        ) < paper_fitness(parent[OBJECTIVE], parent["num_params"]):
            row["fitter_than_parent"] += 1
        if (trial[OBJECTIVE], trial["num_params"]) in front:
            row["on_front"] += 1
    return report


def aggregate(runs):
    def stats(values):
        values = [v for v in values if v is not None]
        if not values:
            return None
        return {
            "mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
        }

    return {
        key: stats([r.get(key) for r in runs])
        for key in (
            "hypervolume",
            "hypervolume_latency",
            "best_fitness",
            "best_val_heatmap_mse",
            "num_trials",
            "wall_s",
        )
    }


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 8.4))
    checkpoints = result["checkpoints"]
    untrained = result["reference_point"].get("untrained_val_heatmap_mse")
    for row, (measure, suffix, unit, scale) in enumerate(
        (
            ("num_params", "", "parameters (thousands)", 1e3),
            ("latency_ms", "_latency", "LiteRT latency (ms, CPU clock)", 1),
        )
    ):
        left, right = axes[row]
        for index, (method, runs) in enumerate(result["runs"].items()):
            color = f"C{index}"
            curves = [
                run[f"hypervolume{suffix}_curve"]
                for run in runs.values()
                if run.get(f"hypervolume{suffix}_curve")
            ]
            if curves:
                mean = [statistics.mean(c) for c in zip(*curves)]
                left.plot(
                    checkpoints,
                    [v * 1e3 for v in mean],
                    color=color,
                    label=method,
                )
                if len(curves) > 1:
                    left.fill_between(
                        checkpoints,
                        [min(c) * 1e3 for c in zip(*curves)],
                        [max(c) * 1e3 for c in zip(*curves)],
                        color=color,
                        alpha=0.15,
                    )
            for number, run in enumerate(runs.values()):
                front = run.get(f"front{suffix}")
                if front:
                    # By size: the staircase of the region it dominates.
                    sizes, losses = zip(*sorted((p[1], p[0]) for p in front))
                    right.step(
                        [s / scale for s in sizes],
                        losses,
                        where="post",
                        color=color,
                        marker="o",
                        markersize=3,
                        alpha=0.8,
                        label=method if number == 0 else None,
                    )
        if untrained is not None:
            right.axhline(
                untrained, color="grey", linestyle=":", label="untrained"
            )
        left.set_xlabel("training steps spent")
        left.set_ylabel(
            "normalized hypervolume x 1000\n(mean, min-max band over seeds; "
            "higher is better)"
        )
        left.set_title(f"Hypervolume of (val loss, {measure}) vs budget")
        if left.get_legend_handles_labels()[0]:
            left.legend(fontsize=8)
        right.set_xlabel(unit)
        right.set_ylabel("val heatmap MSE (lower is better)")
        right.set_title("Final fronts, every seed")
        right.legend(fontsize=8)
    figure.tight_layout()
    temporary = path.with_name(path.stem + ".tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, path)


def machine():
    load = os.getloadavg()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "keras_evopose"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "platform": f"{platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average": [round(v, 2) for v in load],
        "commit": commit,
        "uncommitted_library_files": dirty.splitlines(),
    }


def remeasure_latency(result, output, num_rounds=15, num_invokes=50):
    """Every genotype of `result` (its trials' and the reference's) timed
    again in ONE interleaved measurement, and the summaries recomputed.

    The per-run latencies come from `LiteRTLatency`, one genotype at a
    time as the trials end: on a machine whose load changes (other runs
    side by side), even the CPU clock drifts between genotypes measured
    minutes apart. Here the same export (`export_litert`, float32) of
    every genotype is timed by `measure_litert_latency` over all files at
    once: each round calls every file in turn, so a load change touches
    all of them alike. Exports are kept in `OUTPUT/tflite` (by genotype)
    and reused by a later merge."""
    import hashlib

    from keras_evopose.export import export_litert
    from keras_evopose.export import measure_litert_latency

    genotypes = {tuple(result["reference_point"]["genotype"])}
    for by_seed in result["trials"].values():
        for trials in by_seed.values():
            genotypes.update(tuple(t["genotype"]) for t in trials)
    folder = output / "tflite"
    folder.mkdir(parents=True, exist_ok=True)
    task = Task(output, result["seeds"][0], result["quick"])
    sizes = Sizes(task.hypermodel, None, result["quick"])
    paths = {}
    for number, genotype in enumerate(sorted(genotypes), 1):
        name = hashlib.sha256(",".join(genotype).encode()).hexdigest()[:20]
        path = folder / f"{name}.tflite"
        if not path.exists():
            temporary = folder / f"{name}.tmp.tflite"
            export_litert(sizes.build(list(genotype)), temporary, None)
            os.replace(temporary, path)
            print(f"exported {number}/{len(genotypes)} {path.name}", flush=True)
        paths[genotype] = str(path)
    print(
        f"timing {len(paths)} genotypes, {num_rounds} interleaved rounds of "
        f"{num_invokes} calls each",
        flush=True,
    )
    latencies = dict(
        zip(
            paths,
            measure_litert_latency(
                list(paths.values()),
                num_threads=1,
                num_rounds=num_rounds,
                num_invokes=num_invokes,
                clock="cpu",
            ),
        )
    )
    point = result["reference_point"]
    point["latency_ms"] = latencies[tuple(point["genotype"])]
    point["latency"] = (
        f"measure_litert_latency of the float32 export, 1 thread, CPU clock, "
        f"all {len(paths)} genotypes interleaved: {num_rounds} rounds of "
        f"{num_invokes} calls (remeasure_latency)"
    )
    for method, by_seed in result["trials"].items():
        for seed, trials in by_seed.items():
            for trial in trials:
                trial["latency_ms"] = latencies[tuple(trial["genotype"])]
            run = result["runs"][method][seed]
            run.update(summarize_run(trials, result))
    return result


def _in_repository(path):
    """`path` from the repository root (`data/...`), if it is in one."""
    parts = pathlib.Path(path).parts
    return "/".join(parts[parts.index("data") :]) if "data" in parts else path


def merge(paths, output, latency=False):
    """One result from the JSONs of several runs (other seeds or
    methods, the same settings); with `latency`, every genotype timed
    again together (`remeasure_latency`)."""
    results = []
    for path in paths:
        file = pathlib.Path(path, "search_quality.json")
        if not file.exists():
            raise SystemExit(f"--merge: {file} is missing (run it first)")
        results.append(json.loads(file.read_text()))
    merged = results[0]

    def settings(result, key):
        # Each process times the reference on its own: its latency may
        # differ (the merged runs are scored against the first's, or all
        # are timed again with `latency`); the untrained network is each
        # seed's own initialisation.
        value = result[key]
        if key == "task":
            # The same bundled files, read from another checkout.
            value = dict(
                value,
                train=_in_repository(value["train"]),
                validation=[_in_repository(v) for v in value["validation"]],
            )
        if key == "reference_point":
            value = {
                k: v
                for k, v in value.items()
                if k
                not in ("latency", "latency_ms", "untrained_val_heatmap_mse")
            }
        return value

    for path, other in zip(paths[1:], results[1:]):
        for key in ("task", "budget", "reference_point", "checkpoints"):
            if settings(other, key) != settings(merged, key):
                raise SystemExit(
                    f"--merge: {path} was run with another {key}: "
                    f"{other[key]} (first: {merged[key]})"
                )
        merged["seeds"] = sorted({*merged["seeds"], *other["seeds"]})
        for part in ("runs", "trials"):
            for method, by_seed in other[part].items():
                merged[part].setdefault(method, {}).update(by_seed)
    merged["merged_from"] = [
        {"path": str(path), "machine_before": r["machine_before"]}
        for path, r in zip(paths, results)
    ]
    output.mkdir(parents=True, exist_ok=True)
    if latency:
        remeasure_latency(merged, output)
    else:
        for method, by_seed in merged["trials"].items():
            for seed, trials in by_seed.items():
                merged["runs"][method][seed].update(
                    summarize_run(trials, merged)
                )
    return finish(merged, output)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--budget-steps", type=int, default=960)
    parser.add_argument("--ancestor-epochs", type=int, default=8)
    parser.add_argument("--child-epochs", type=int, default=4)
    parser.add_argument(
        "--baseline-epochs",
        type=int,
        default=None,
        help="epochs of each random search / NSGA-II trial (default: "
        "--ancestor-epochs, so they learn as the ancestor does)",
    )
    parser.add_argument("--num-parents", type=int, default=4)
    parser.add_argument("--children-per-generation", type=int, default=4)
    parser.add_argument("--nsga2-population", type=int, default=4)
    parser.add_argument(
        "--latency-methods",
        nargs="+",
        default=None,
        help="methods whose trials get a LiteRT latency (default: all)",
    )
    parser.add_argument(
        "--latency-cache",
        default=None,
        help="LiteRTLatency's cache file, shared by processes run side by "
        "side (default: OUTPUT/latency_cache.json)",
    )
    parser.add_argument("--output", default="search_quality_results")
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        help="combine the results of runs made with the same settings "
        "(other seeds or methods, e.g. one process each) into --output",
    )
    parser.add_argument(
        "--remeasure-latency",
        action="store_true",
        help="with --merge: time every genotype again in one interleaved "
        "measurement (fair across runs made under different loads)",
    )
    args = parser.parse_args(argv)
    if args.merge:
        return merge(
            args.merge, pathlib.Path(args.output), args.remeasure_latency
        )
    if args.quick:
        # One step per epoch and trial: two trials per method; latency
        # (an export per genotype) for one method's one trial.
        args.seeds = args.seeds[:1]
        args.ancestor_epochs, args.child_epochs = 1, 1
        args.baseline_epochs, args.budget_steps = 1, 2
        args.latency_methods = ["ancestor_full_budget"]
    if args.baseline_epochs is None:
        args.baseline_epochs = args.ancestor_epochs
    if min(args.ancestor_epochs, args.child_epochs, args.baseline_epochs) < 1:
        parser.error("the epochs must be positive")
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {list(METHODS)}")
    latency_methods = set(
        args.methods if args.latency_methods is None else args.latency_methods
    )

    from keras_evopose.search import SearchSpace
    from keras_evopose.search.evopose2d_hypermodel import heatmap_size_of

    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    space = SearchSpace.from_preset(PRESET)
    methods = list(args.methods)
    skipped = {}
    if "evolution_generational" in methods and not generational_available():
        methods.remove("evolution_generational")
        skipped["evolution_generational"] = (
            "EvolutionOracle has no population argument in this checkout"
        )
    result = None
    work = output / "work"
    for seed in args.seeds:
        task = Task(output, seed, args.quick)
        sizes = Sizes(
            task.hypermodel,
            args.latency_cache or output / "latency_cache.json",
            args.quick,
        )
        setup = {
            "args": args,
            "task": task,
            "space": space,
            "sizes": sizes,
            "hypermodel": _gene_hypermodel_class()(task.hypermodel, space),
        }
        if result is None:
            result = start_result(args, task, space, sizes, skipped)
            reference_model = sizes.build(space.ancestor)
            result["reference_point"][OBJECTIVE] = task.zero_prediction_loss(
                heatmap_size_of(reference_model)
            )
            result["reference_point"]["untrained_val_heatmap_mse"] = float(
                reference_model.evaluate(
                    task.val_data(heatmap_size_of(reference_model)),
                    steps=task.validation_steps,
                    return_dict=True,
                    verbose=0,
                )["heatmap_mse"]
            )
        for method in methods:
            started = time.perf_counter()
            trials = run_method(
                method, seed, setup, work, method in latency_methods
            )
            run = summarize_run(trials, result)
            run["wall_s"] = round(time.perf_counter() - started, 1)
            if method.startswith("evolution"):
                run["mutations"] = mutation_report(trials)
            result["runs"].setdefault(method, {})[str(seed)] = run
            result["trials"].setdefault(method, {})[str(seed)] = trials
            latency = run["hypervolume_latency"]
            print(
                f"seed {seed} {method:24s} trials {run['num_trials']:3d} "
                f"steps {run['steps_used']:5d} hv(params) "
                f"{run['hypervolume']:.4f} hv(latency) "
                + ("-" if latency is None else f"{latency:.4f}")
                + f" best {OBJECTIVE} {run['best_val_heatmap_mse']:.3f} "
                f"wall {run['wall_s']} s",
                flush=True,
            )
            # Written after every run: an interrupted benchmark keeps them.
            finish(result, output, report=False)
    shutil.rmtree(work, ignore_errors=True)
    return finish(result, output)


def start_result(args, task, space, sizes, skipped):
    largest = largest_genotype(space)
    config = task.config
    steps = task.steps_per_epoch
    return {
        "task": {
            "train": _in_repository(config.annotations),
            "validation": [_in_repository(v) for v in task.validation],
            "input_size": list(config.resolve().input_size),
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "schedule": config.learning_rate_schedule,
            "objective": OBJECTIVE,
            "search_space": space.get_config(),
            "steps_per_epoch": steps,
            "validation_steps": task.validation_steps,
        },
        "budget": {
            "steps": args.budget_steps,
            "ancestor_steps": args.ancestor_epochs * steps,
            "child_steps": args.child_epochs * steps,
            "baseline_trial_steps": args.baseline_epochs * steps,
            "num_parents": args.num_parents,
            "children_per_generation": args.children_per_generation,
            "nsga2_population": args.nsga2_population,
        },
        "reference_point": {
            "genotype": largest,
            "num_params": sizes.num_params(largest),
            "latency_ms": sizes.latency_ms(largest),
            "latency": "LiteRTLatency float32, 1 thread, CPU clock, "
            f"{sizes.latency_callback.num_rounds} rounds of "
            f"{sizes.latency_callback.num_invokes} calls",
            "meaning": f"{OBJECTIVE} of the all-zero prediction; parameters "
            "and latency of the largest genotype of the space",
        },
        "quick": args.quick,
        "seeds": args.seeds,
        "machine_before": machine(),
        "skipped": skipped,
        "checkpoints": sorted(
            {
                *range(
                    0, args.budget_steps + 1, max(1, args.budget_steps // 20)
                ),
                args.budget_steps,
            }
        ),
        "runs": {},
        "trials": {},
    }


def finish(result, output, report=True):
    """Summary, JSON and plot of `result` in `output`; prints the table."""
    from keras_evopose.utils.state_files import write_json_atomically

    result["summary"] = {
        method: aggregate(list(runs.values()))
        for method, runs in result["runs"].items()
    }
    result["machine_after"] = machine()
    write_json_atomically(output / "search_quality.json", result, indent=1)
    plot(result, output / "search_quality.png")
    if not report:
        return result
    point = result["reference_point"]
    print(
        f"reference point: {OBJECTIVE} {point[OBJECTIVE]:.3f}, params "
        f"{point['num_params']:.0f}, latency {point['latency_ms']:.4f} ms"
    )

    def cell(stats, scale=1.0, digits=4):
        if stats is None:
            return "-"
        return (
            f"{stats['mean'] * scale:.{digits}f} +- "
            f"{stats['std'] * scale:.{digits}f}"
        )

    for method, summary in result["summary"].items():
        print(
            f"{method:24s} hv(params) x1000 "
            f"{cell(summary['hypervolume'], 1e3, 2)}  hv(latency) x1000 "
            f"{cell(summary['hypervolume_latency'], 1e3, 2)}  best "
            f"{OBJECTIVE} {cell(summary['best_val_heatmap_mse'], 1, 3)}"
        )
    return result


if __name__ == "__main__":
    main()
