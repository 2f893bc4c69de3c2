"""Search quality at equal compute: EvolutionOracle vs random search, NSGA-II.

Does the EvoPose2D search earn its compute? Every method searches the same
space for the same proxy pose task with the same total budget of training
steps, and is scored by the hypervolume of its (validation loss,
parameters) front.

Task: real COCO crops of the bundled `data/coco_kpt_mini` (80 people in 43
val2017 images), split by image with `keras_evopose.data.split_coco_by_image`
(every 4th image by id held out), 64x48 input, no augmentation, Gaussian
heatmaps of peak 255 at each child's output size, the paper's
target-weighted heatmap MSE (`HeatmapMSE`), Adam at `--learning-rate`.
The space is `SearchSpace.from_preset("test")` (4 stages; kernel 3/5,
repeats 1-2, channels in steps of 8 up to the ancestor's; its stride
stages are none, so every child has 32x24 heatmaps).

Methods (each over `--seeds` seeds, the same budget in training steps):

- `evolution`: `EvolutionOracle` (steady state) + `EvolutionTuner` with
  weight transfer: the ancestor trains `--ancestor-epochs`, each child
  `--child-epochs`.
- `evolution_generational`: the same with `population="generational"`
  (only if this checkout's `EvolutionOracle` has it).
- `evolution_no_transfer`: steady state, children trained from scratch
  (`EvolutionTuner(transfer_weights=False)`) for the same child epochs.
- `random_search`: keras-tuner `RandomSearch` over the same genes
  (`Genotype.from_hyperparameters`), every trial from scratch for
  `--baseline-epochs` (default: the child epochs).
- `nsga2`: optuna's `NSGAIISampler` over the same genes, two objectives
  (validation loss, parameters), every trial like random search.
- `ancestor_full_budget`: no search: the ancestor alone trained for the
  whole budget (what any search has to beat).

A trial's score is its best epoch's validation loss (keras-tuner's rule)
and its parameter count (`model.count_params()`). A method
runs trials until the next one would exceed `--budget-steps`. The
hypervolume is computed against one fixed reference point: the validation
loss of the all-zero prediction (what a network that learned nothing
scores) and the parameter count of the largest genotype of the space,
and reported normalized by the box from (0, 0) to that point.

Writes `search_quality.json` and `search_quality.png` (hypervolume vs
budget per method, final fronts overlaid) to `--output`.

    python benchmarks/search_quality.py [--quick] [--seeds 0 1 2] \
        [--budget-steps 400] [--output search_quality_results]
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
MINI = ROOT / "data" / "coco_kpt_mini"
PRESET = "test"
INPUT_SIZE = (64, 48)
HEATMAP_PEAK = 255.0
VAL_FRACTION = 0.25
METHODS = (
    "evolution",
    "evolution_generational",
    "evolution_no_transfer",
    "random_search",
    "nsga2",
    "ancestor_full_budget",
)


# --------------------------------------------------------------------
# The task.


class Task:
    """Train/val crops as numpy arrays, per heatmap size (cached)."""

    def __init__(self, output, batch_size, max_crops=None):
        from keras_evopose.data import split_coco_by_image

        self.batch_size = batch_size
        self.max_crops = max_crops
        self.train_json, self.val_json = split_coco_by_image(
            MINI / "annotations" / "person_keypoints_val2017_mini.json",
            output / "split",
            VAL_FRACTION,
        )
        self._arrays = {}

    def arrays(self, annotations, heatmap_size):
        import numpy as np

        from keras_evopose.data import coco_keypoints_dataset

        key = (str(annotations), tuple(heatmap_size))
        if key not in self._arrays:
            dataset = coco_keypoints_dataset(
                annotations,
                MINI / "val2017",
                input_size=INPUT_SIZE,
                heatmap_size=tuple(heatmap_size),
                training=False,
                batch_size=256,
                heatmap_peak=HEATMAP_PEAK,
            )
            parts = zip(*[[t.numpy() for t in batch] for batch in dataset])
            self._arrays[key] = tuple(
                np.concatenate(p)[: self.max_crops] for p in parts
            )
        return self._arrays[key]

    def steps_per_epoch(self, heatmap_size=(32, 24)):
        count = len(self.arrays(self.train_json, heatmap_size)[0])
        return math.ceil(count / self.batch_size)

    def zero_prediction_loss(self, heatmap_size=(32, 24)):
        """HeatmapMSE of an all-zero prediction on the validation crops."""
        import numpy as np

        _, heatmaps, weights = self.arrays(self.val_json, heatmap_size)
        return float(np.mean(weights * heatmaps.astype("float64") ** 2))

    def data(self, training, seed):
        """`heatmap_size -> tf.data.Dataset` (EvoPose2DHyperModel's form)."""
        return _DataFunction(
            self, self.train_json if training else self.val_json, training, seed
        )


class _DataFunction:
    # keras-tuner deep-copies fit arguments' containers, not this: the task
    # (and its cached arrays) is shared by reference.
    def __init__(self, task, annotations, training, seed):
        self.task, self.annotations = task, annotations
        self.training, self.seed = training, seed

    def __deepcopy__(self, memo):
        return self

    def __call__(self, heatmap_size):
        import tensorflow as tf

        arrays = self.task.arrays(self.annotations, heatmap_size)
        dataset = tf.data.Dataset.from_tensor_slices(arrays)
        if self.training:
            dataset = dataset.shuffle(len(arrays[0]), seed=self.seed)
        return dataset.batch(self.task.batch_size)


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


def params_of(genotype):
    import keras

    from keras_evopose.models import EvoPose2D

    keras.backend.clear_session()
    return EvoPose2D.from_preset(PRESET, genotype=genotype).count_params()


# --------------------------------------------------------------------
# Metrics.


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


def hypervolume_curve(trials, reference, checkpoints):
    """Normalized hypervolume of the trials done within each budget."""
    box = reference[0] * reference[1]
    curve = []
    for budget in checkpoints:
        points = [
            (t["val_loss"], t["num_params"])
            for t in trials
            if t["cumulative_steps"] <= budget and t["val_loss"] is not None
        ]
        curve.append(hypervolume(points, reference) / box)
    return curve


# --------------------------------------------------------------------
# Methods.


def _hypermodel_class():
    from keras_evopose.models import Genotype
    from keras_evopose.search import EvoPose2DHyperModel

    class GeneHyperModel(EvoPose2DHyperModel):
        """Builds from `hp["genotype"]` (evolution) or from the gene
        hyperparameters (keras-tuner's tuners, optuna)."""

        def __init__(self, space, **kwargs):
            super().__init__(**kwargs)
            self.space = space

        def build(self, hp):
            import keras_tuner

            if "genotype" not in hp.values:
                genotype = Genotype.from_hyperparameters(hp, self.space)
                hp = keras_tuner.HyperParameters()
                hp.Fixed("genotype", genotype.to_string())
            return super().build(hp)

    return GeneHyperModel


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
    steps_per_epoch = setup["steps_per_epoch"]
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
    keras.utils.set_random_seed(seed)
    oracle = EvolutionOracle(
        objective=[
            keras_tuner.Objective("val_loss", "min"),
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
    tuner.search(
        task.data(True, seed),
        validation_data=task.data(False, seed),
        shuffle=False,  # the dataset shuffles itself
        verbose=0,
    )
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
                "val_loss": oracle.metric_value(trial, "val_loss"),
                "num_params": oracle.metric_value(trial, "num_params"),
                "ended_s": tuner.ended_at.get(trial.trial_id, started)
                - started,
            }
        )
    return trials


def run_random_search(seed, setup, directory):
    import keras
    import keras_tuner

    args, task = setup["args"], setup["task"]
    trial_steps = args.baseline_epochs * setup["steps_per_epoch"]
    max_trials = max(1, args.budget_steps // trial_steps)
    keras.utils.set_random_seed(seed)
    tuner = _timed(keras_tuner.RandomSearch)(
        setup["hypermodel"],
        objective="val_loss",
        max_trials=max_trials,
        seed=seed,
        directory=str(directory),
        project_name="random_search",
        overwrite=True,
    )
    started = time.perf_counter()
    tuner.search(
        task.data(True, seed),
        validation_data=task.data(False, seed),
        epochs=args.baseline_epochs,
        shuffle=False,  # the dataset shuffles itself
        verbose=0,
    )
    from keras_evopose.models import Genotype
    from keras_evopose.search import EvolutionOracle

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
                "val_loss": EvolutionOracle.metric_value(trial, "val_loss"),
                "num_params": None,
                "ended_s": tuner.ended_at.get(trial.trial_id, started)
                - started,
            }
        )
    # RandomSearch logs no size: count it from the genotype (cached).
    for trial in trials:
        trial["num_params"] = setup["params_of"](trial["genotype"])
    return trials


def run_nsga2(seed, setup):
    import keras
    import keras_tuner
    import optuna

    from keras_evopose.models import Genotype

    args, task, space = setup["args"], setup["task"], setup["space"]
    trial_steps = args.baseline_epochs * setup["steps_per_epoch"]
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
        model = hypermodel.build(hp)
        history = hypermodel.fit(
            hp,
            model,
            task.data(True, seed),
            validation_data=task.data(False, seed),
            epochs=args.baseline_epochs,
            shuffle=False,  # the dataset shuffles itself
            verbose=0,
        )
        losses = [v for v in history.history["val_loss"] if math.isfinite(v)]
        val_loss = min(losses) if losses else None
        num_params = model.count_params()
        trials.append(
            {
                "trial_id": str(study_trial.number),
                "status": "COMPLETED" if val_loss is not None else "FAILED",
                "genotype": genotype,
                "steps": trial_steps,
                "val_loss": val_loss,
                "num_params": float(num_params),
                "ended_s": time.perf_counter() - started,
            }
        )
        if val_loss is None:
            raise optuna.TrialPruned()
        return val_loss, float(num_params)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=optuna.samplers.NSGAIISampler(
            population_size=args.nsga2_population, seed=seed
        ),
    )
    study.optimize(objective, n_trials=max_trials)
    return trials


def run_method(method, seed, setup, directory):
    keras_clear()
    if method.startswith(("evolution", "ancestor")):
        trials = run_evolution(method, seed, setup, directory)
    elif method == "random_search":
        trials = run_random_search(seed, setup, directory)
    else:
        trials = run_nsga2(seed, setup)
    total = 0
    for trial in trials:
        total += trial["steps"]
        trial["cumulative_steps"] = total
        if trial["num_params"] is not None:
            trial["num_params"] = float(trial["num_params"])
    return trials


def keras_clear():
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


# --------------------------------------------------------------------
# Analysis.


def summarize_run(trials, reference, checkpoints):
    from keras_evopose.search import paper_fitness

    done = [t for t in trials if t["val_loss"] is not None]
    points = [(t["val_loss"], t["num_params"]) for t in done]
    fitnesses = [paper_fitness(t["val_loss"], t["num_params"]) for t in done]
    curve = hypervolume_curve(trials, reference, checkpoints)
    return {
        "num_trials": len(trials),
        "num_completed": len(done),
        "steps_used": trials[-1]["cumulative_steps"] if trials else 0,
        "hypervolume": curve[-1],
        "hypervolume_curve": curve,
        "best_fitness": min(fitnesses) if fitnesses else None,
        "best_val_loss": min(p[0] for p in points) if points else None,
        "front": [list(p) for p in pareto_points(points)],
    }


def mutation_report(trials):
    """Per mutated gene: children, children fitter than their parent, and
    children on the run's final front (an evolution run's trials)."""
    from keras_evopose.search import paper_fitness

    by_id = {t["trial_id"]: t for t in trials}
    done = [t for t in trials if t["val_loss"] is not None]
    front = set(pareto_points([(t["val_loss"], t["num_params"]) for t in done]))
    report = {}
    for trial in done:
        if not trial.get("parent_trial_id"):
            continue
        parent = by_id[trial["parent_trial_id"]]
        gene = trial["mutation"].split()[2] if trial["mutation"] else "?"
        row = report.setdefault(
            gene, {"children": 0, "fitter_than_parent": 0, "on_front": 0}
        )
        row["children"] += 1
        if parent["val_loss"] is not None and paper_fitness(
            trial["val_loss"], trial["num_params"]
        ) < paper_fitness(parent["val_loss"], parent["num_params"]):
            row["fitter_than_parent"] += 1
        if (trial["val_loss"], trial["num_params"]) in front:
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
        "hypervolume": stats([r["hypervolume"] for r in runs]),
        "best_fitness": stats([r["best_fitness"] for r in runs]),
        "best_val_loss": stats([r["best_val_loss"] for r in runs]),
        "num_trials": stats([r["num_trials"] for r in runs]),
        "wall_s": stats([r["wall_s"] for r in runs]),
    }


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    checkpoints = result["checkpoints"]
    for index, (method, runs) in enumerate(result["runs"].items()):
        color = f"C{index}"
        curves = [run["hypervolume_curve"] for run in runs.values()]
        mean = [statistics.mean(c) for c in zip(*curves)]
        left.plot(checkpoints, mean, color=color, label=method)
        if len(curves) > 1:
            left.fill_between(
                checkpoints,
                [min(c) for c in zip(*curves)],
                [max(c) for c in zip(*curves)],
                color=color,
                alpha=0.15,
            )
        for number, run in enumerate(runs.values()):
            front = run["front"]
            if front:
                losses, sizes = zip(*front)
                right.step(
                    [s / 1e3 for s in sizes],
                    losses,
                    where="post",
                    color=color,
                    marker="o",
                    markersize=3,
                    alpha=0.8,
                    label=method if number == 0 else None,
                )
    left.set_xlabel("training steps spent")
    left.set_ylabel("normalized hypervolume (mean, min-max band)")
    left.set_title("Hypervolume vs budget")
    left.legend(fontsize=8)
    right.set_xlabel("parameters (thousands)")
    right.set_ylabel("validation loss (HeatmapMSE)")
    right.set_title("Final fronts, every seed")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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


def merge(paths, output):
    """One result from the JSONs of several runs (one per seed)."""
    results = [
        json.loads(pathlib.Path(path, "search_quality.json").read_text())
        for path in paths
    ]
    merged = results[0]
    for other in results[1:]:
        for key in ("task", "budget", "reference_point", "checkpoints"):
            if other[key] != merged[key]:
                raise ValueError(
                    f"Cannot merge runs with different {key}: {merged[key]} "
                    f"vs {other[key]}"
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
    return finish(merged, output)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--budget-steps", type=int, default=400)
    parser.add_argument("--ancestor-epochs", type=int, default=10)
    parser.add_argument("--child-epochs", type=int, default=3)
    parser.add_argument(
        "--baseline-epochs",
        type=int,
        default=None,
        help="epochs of each random search / NSGA-II trial (default: "
        "--child-epochs)",
    )
    parser.add_argument("--num-parents", type=int, default=4)
    parser.add_argument("--children-per-generation", type=int, default=4)
    parser.add_argument("--nsga2-population", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--output", default="search_quality_results")
    parser.add_argument(
        "--merge",
        nargs="+",
        help="combine the JSONs of runs made with the same settings and "
        "other seeds (e.g. one process per seed) into --output",
    )
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, pathlib.Path(args.output))
    if args.quick:
        # One step per epoch: the ancestor 2 steps, each other trial 1.
        args.seeds = args.seeds[:1]
        args.ancestor_epochs, args.child_epochs = 2, 1
        args.batch_size = 16
        args.budget_steps = 3
    if args.baseline_epochs is None:
        args.baseline_epochs = args.child_epochs
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {list(METHODS)}")

    from keras_evopose.search import SearchSpace

    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    task = Task(output, args.batch_size, 16 if args.quick else None)
    space = SearchSpace.from_preset(PRESET)
    steps_per_epoch = task.steps_per_epoch()
    methods = list(args.methods)
    skipped = {}
    if "evolution_generational" in methods and not generational_available():
        methods.remove("evolution_generational")
        skipped["evolution_generational"] = (
            "EvolutionOracle has no population argument in this checkout"
        )
    sizes = {}

    def cached_params(genotype):
        key = ",".join(genotype)
        if key not in sizes:
            sizes[key] = params_of(genotype)
        return sizes[key]

    reference = (
        task.zero_prediction_loss(),
        float(cached_params(largest_genotype(space))),
    )
    setup = {
        "args": args,
        "task": task,
        "space": space,
        "steps_per_epoch": steps_per_epoch,
        "params_of": cached_params,
        "hypermodel": _hypermodel_class()(
            space,
            preset=PRESET,
            compile_kwargs={
                "optimizer": {
                    "class_name": "Adam",
                    "config": {"learning_rate": args.learning_rate},
                },
                # Measured on the loaded 2-core machine: tracing a child's
                # train and test functions costs more than its few steps.
                "run_eagerly": True,
            },
        ),
    }
    checkpoints = sorted(
        {
            *range(0, args.budget_steps + 1, max(1, args.budget_steps // 20)),
            args.budget_steps,
        }
    )
    result = {
        "task": {
            "data": "data/coco_kpt_mini split by image (every 4th image "
            "by id held out)",
            "num_train_crops": len(task.arrays(task.train_json, (32, 24))[0]),
            "num_val_crops": len(task.arrays(task.val_json, (32, 24))[0]),
            "input_size": list(INPUT_SIZE),
            "heatmap_peak": HEATMAP_PEAK,
            "search_space": space.get_config(),
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "steps_per_epoch": steps_per_epoch,
        },
        "budget": {
            "steps": args.budget_steps,
            "ancestor_steps": args.ancestor_epochs * steps_per_epoch,
            "child_steps": args.child_epochs * steps_per_epoch,
            "baseline_trial_steps": args.baseline_epochs * steps_per_epoch,
            "num_parents": args.num_parents,
            "children_per_generation": args.children_per_generation,
            "nsga2_population": args.nsga2_population,
        },
        "reference_point": {
            "val_loss": reference[0],
            "num_params": reference[1],
            "meaning": "val loss of the all-zero prediction; parameters of "
            "the largest genotype of the space",
        },
        "quick": args.quick,
        "seeds": args.seeds,
        "machine_before": machine(),
        "skipped": skipped,
        "checkpoints": checkpoints,
        "runs": {},
        "trials": {},
    }
    work = output / "work"
    for seed in args.seeds:
        for method in methods:
            started = time.perf_counter()
            trials = run_method(method, seed, setup, work)
            run = summarize_run(trials, reference, checkpoints)
            run["wall_s"] = round(time.perf_counter() - started, 1)
            if method.startswith("evolution"):
                run["mutations"] = mutation_report(trials)
            result["runs"].setdefault(method, {})[str(seed)] = run
            result["trials"].setdefault(method, {})[str(seed)] = trials
            print(
                f"seed {seed} {method:24s} trials {run['num_trials']:3d} "
                f"steps {run['steps_used']:5d} hv {run['hypervolume']:.4f} "
                f"best fitness {run['best_fitness']} wall {run['wall_s']} s",
                flush=True,
            )
            # Written after every run: an interrupted benchmark keeps them.
            finish(result, output, report=False)
    shutil.rmtree(work, ignore_errors=True)
    return finish(result, output)


def finish(result, output, report=True):
    """Summary, JSON and plot of `result` in `output`; prints the table."""
    reference = (
        result["reference_point"]["val_loss"],
        result["reference_point"]["num_params"],
    )
    result["summary"] = {
        method: aggregate(list(runs.values()))
        for method, runs in result["runs"].items()
    }
    result["machine_after"] = machine()
    (output / "search_quality.json").write_text(json.dumps(result, indent=1))
    plot(result, output / "search_quality.png")
    if not report:
        return result
    print(
        f"reference point: val_loss {reference[0]:.3f}, "
        f"params {reference[1]:.0f}"
    )
    for method, summary in result["summary"].items():
        hv, fit = summary["hypervolume"], summary["best_fitness"]
        print(
            f"{method:24s} hv {hv['mean']:.4f} +- {hv['std']:.4f} "
            f"[{hv['min']:.4f}, {hv['max']:.4f}]  best fitness "
            f"{fit['mean']:.3f} +- {fit['std']:.3f}"
        )
    return result


if __name__ == "__main__":
    main()
