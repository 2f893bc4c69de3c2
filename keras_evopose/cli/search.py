"""`keras-evopose search`: EvoPose2D neuroevolution on COCO keypoints.

With no arguments it runs the README's main job: a small search over the
`test` preset's genotype on the bundled real COCO images
(`data/coco_kpt_mini`, 43 val2017 images). Only a val split is bundled, so
it is split by image id: every fourth image in ascending id order goes to
`search-val`, the rest to `search-train` (written as two COCO JSONs into
`OUTPUT/split/`). Results: `pareto.json`, `pareto.png`, `fitness.png` and
the best model (by fitness) as `best_model.keras` in `OUTPUT`.
"""

import json
import os
import pathlib
import shutil
import warnings

from keras_evopose.cli import UsageError
from keras_evopose.cli import parse_size
from keras_evopose.distribute import add_distribution_arguments
from keras_evopose.distribute import strategy_from_flags

# The bundled images sit in the repository, next to the package (editable
# install); from a regular install, the current directory's `data/`.
REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
BUNDLED = REPOSITORY / "data" / "coco_kpt_mini"
if not BUNDLED.exists():
    BUNDLED = pathlib.Path("data") / "coco_kpt_mini"
CONFIG_FILE = "search_config.json"
PROJECT = "tuner"

# Every setting, its default and its help. A config file (YAML or JSON)
# holds the same keys; flags given on the command line win.
SETTINGS = {
    "annotations": (
        str(BUNDLED / "annotations" / "person_keypoints_val2017_mini.json"),
        "COCO keypoints JSON to search on (split by image id)",
    ),
    "images": (str(BUNDLED / "val2017"), "its image folder"),
    "val_fraction": (
        0.25,
        "fraction of the images (every 1/f-th by id) held out for validation",
    ),
    "preset": ("test", "preset whose stem, head and input size all share"),
    "ancestor": (
        "preset",
        "generation-0 genotype: 'preset' (the preset's), 'efficientnet-b0' "
        "or comma-joined block strings",
    ),
    "image_size": (None, "input HEIGHTxWIDTH, default: the preset's"),
    "max_trials": (8, "trials in total, the ancestor included"),
    "ancestor_epochs": (6, "epochs of generation 0 (the paper: 30)"),
    "child_epochs": (2, "epochs of each child (the paper: 5)"),
    "batch_size": (16, "batch size"),
    "passes_per_epoch": (3, "passes over search-train per epoch"),
    "learning_rate": (5e-3, "Adam learning rate"),
    "num_parents": (4, "parent pool size (the paper's mu)"),
    "selection": ("fitness", "parent pool: 'fitness' or 'pareto'"),
    "target_params": (5e6, "T of the fitness loss * (T / params) ** w"),
    "size_weight": (-0.07, "w of the fitness"),
    "max_model_size": (None, "fail trials with more parameters"),
    "seed": (0, "seed of the oracle and the data"),
    "output": ("evopose_search", "output directory"),
}


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "search",
        help="evolve EvoPose2D networks (Pareto: loss vs parameters)",
        description=(
            "Runs an EvoPose2D neuroevolution search on keras-tuner: each "
            "child mutates one gene of a parent, inherits its weights and "
            "trains briefly; writes pareto.json, pareto.png, fitness.png "
            "and best_model.keras. Without arguments: a small search on "
            "the bundled COCO images (a few minutes on 2 CPU cores)."
        ),
    )
    parser.add_argument(
        "--config", default=None, help="YAML or JSON file of settings"
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the search in DIR with its saved settings",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start over even if OUTPUT already holds a search",
    )
    parser.add_argument(
        "--verbose", type=int, default=1, help="0: quiet, 1: progress bars"
    )
    for name, (default, help_text) in SETTINGS.items():
        kind = type(default) if default is not None else str
        if name in ("max_model_size",):
            kind = int
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=kind,
            default=None,
            help=f"{help_text} (default: {default})",
        )
    add_distribution_arguments(parser)
    parser.set_defaults(func=run)


def load_config_file(path):
    """Reads a YAML or JSON settings file into a dict of known keys."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        config = yaml.safe_load(text) or {}
    else:
        config = json.loads(text)
    if not isinstance(config, dict):
        raise UsageError(f"{path} must hold a mapping of settings")
    config = {key.replace("-", "_"): value for key, value in config.items()}
    unknown = sorted(set(config) - set(SETTINGS))
    if unknown:
        raise UsageError(
            f"unknown setting(s) in {path}: {', '.join(unknown)}; known: "
            + ", ".join(SETTINGS)
        )
    return config


def resolve_settings(args):
    """Defaults < saved settings (--resume) < config file < flags."""
    settings = {name: default for name, (default, _) in SETTINGS.items()}
    if args.resume:
        saved = pathlib.Path(args.resume) / CONFIG_FILE
        if not saved.exists():
            raise FileNotFoundError(
                f"{args.resume} holds no search to resume ({CONFIG_FILE} "
                "is missing)"
            )
        settings.update(json.loads(saved.read_text()))
        settings["output"] = str(args.resume)
    if args.config:
        settings.update(load_config_file(args.config))
    for name in SETTINGS:
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    if args.resume:
        settings["output"] = str(args.resume)
    for name in (
        "max_trials",
        "ancestor_epochs",
        "child_epochs",
        "batch_size",
        "passes_per_epoch",
    ):
        if not isinstance(settings[name], int) or settings[name] < 1:
            raise UsageError(
                f"{name} must be a positive int; got {settings[name]!r}"
            )
    if not 0 < float(settings["val_fraction"]) < 1:
        raise UsageError(
            "val_fraction must be between 0 and 1; got "
            f"{settings['val_fraction']!r}"
        )
    return settings


def split_annotations(annotations, output_dir, val_fraction):
    """Splits a COCO keypoints JSON by image id into train and val files.

    Images sorted by id; every `round(1 / val_fraction)`-th one (the last of
    each group) is a validation image. Returns the two paths.
    """
    data = json.loads(pathlib.Path(annotations).read_text())
    period = max(2, round(1 / val_fraction))
    image_ids = sorted(image["id"] for image in data["images"])
    val_ids = {i for n, i in enumerate(image_ids) if n % period == period - 1}
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, keep in (
        ("search_train", lambda i: i not in val_ids),
        ("search_val", lambda i: i in val_ids),
    ):
        part = dict(data)
        part["images"] = [im for im in data["images"] if keep(im["id"])]
        part["annotations"] = [
            a for a in data["annotations"] if keep(a["image_id"])
        ]
        paths[split] = output_dir / f"{split}.json"
        paths[split].write_text(json.dumps(part))
    return paths["search_train"], paths["search_val"]


def ancestor_genotype(settings):
    from keras_evopose.models import presets
    from keras_evopose.models.evopose2d_presets import ANCESTOR_GENOTYPE
    from keras_evopose.search import genotype_from_string

    ancestor = settings["ancestor"]
    if ancestor == "preset":
        return list(
            presets.preset_arguments(settings["preset"], "backbone")["genotype"]
        )
    if ancestor == "efficientnet-b0":
        return list(ANCESTOR_GENOTYPE)
    return genotype_from_string(ancestor)


def parse_image_size(text):
    if text is None:
        return None
    return parse_size(text, "image_size")


class _DatasetFactory:
    """`heatmap_size -> tf.data.Dataset`, cached per size."""

    def __init__(self, annotations, images, input_size, training, settings):
        self.annotations = str(annotations)
        self.images = str(images)
        self.input_size = tuple(input_size)
        self.training = training
        self.batch_size = settings["batch_size"]
        self.passes = settings["passes_per_epoch"] if training else 1
        self.seed = settings["seed"]
        self._cache = {}

    def __call__(self, heatmap_size):
        from keras_evopose.data import coco_keypoints_dataset

        key = tuple(heatmap_size)
        if key not in self._cache:
            dataset = coco_keypoints_dataset(
                self.annotations,
                self.images,
                input_size=self.input_size,
                heatmap_size=key,
                training=self.training,
                batch_size=self.batch_size,
                seed=self.seed,
            )
            # Validation crops never change: decode them once. Several
            # passes per epoch amortize each trial's tracing over more steps.
            self._cache[key] = (
                dataset.repeat(self.passes)
                if self.training
                else dataset.cache()
            )
        return self._cache[key]


def _trial_record(oracle, trial):
    from keras_evopose.search import genotype_from_string

    values = trial.hyperparameters.values
    objectives = oracle.objective_values(trial)
    return {
        "trial_id": trial.trial_id,
        "genotype": genotype_from_string(values["genotype"]),
        "parent_trial_id": values.get("parent_trial_id", ""),
        "generation": values.get("generation", 0),
        "mutation": values.get("mutation", ""),
        "objectives": {
            objective.name: value
            for objective, value in zip(oracle.objectives, objectives)
        },
        "num_params": oracle._best_value(trial, "num_params", "min"),
        "flops": oracle._best_value(trial, "flops", "min"),
        "fitness": trial.score,
    }


def write_results(oracle, output_dir):
    """Writes pareto.json, pareto.png and fitness.png; returns the records."""
    completed = oracle.get_best_trials(len(oracle.trials))
    completed = [t for t in completed if t.status == "COMPLETED"]
    front_ids = {t.trial_id for t in oracle.pareto_front()}
    records = [_trial_record(oracle, t) for t in completed]
    for record in records:
        record["pareto_optimal"] = record["trial_id"] in front_ids
    failed = [
        t.trial_id for t in oracle.trials.values() if t.status == "FAILED"
    ]
    result = {
        "objectives": [
            {"name": o.name, "direction": o.direction}
            for o in oracle.objectives
        ],
        "fitness": {
            "direction": oracle.fitness_direction,
            "target_params": oracle.target_params,
            "size_weight": oracle.size_weight,
        },
        "front": [r for r in records if r["pareto_optimal"]],
        "trials": records,
        "failed_trials": failed,
    }
    output_dir = pathlib.Path(output_dir)
    (output_dir / "pareto.json").write_text(json.dumps(result, indent=2))
    plot_pareto(result, output_dir / "pareto.png")
    plot_fitness(result, output_dir / "fitness.png")
    return result


def plot_pareto(result, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    name = result["objectives"][0]["name"]
    by_id = {r["trial_id"]: r for r in result["trials"]}
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for record in result["trials"]:
        parent = by_id.get(record["parent_trial_id"])
        if parent is not None:
            axes.plot(
                [parent["num_params"], record["num_params"]],
                [parent["objectives"][name], record["objectives"][name]],
                color="0.8",
                linewidth=0.8,
                zorder=1,
            )
    axes.scatter(
        [r["num_params"] for r in result["trials"]],
        [r["objectives"][name] for r in result["trials"]],
        c=[r["generation"] for r in result["trials"]],
        cmap="viridis",
        s=22,
        zorder=2,
        label="trials (colour: generation)",
    )
    front = sorted(result["front"], key=lambda r: r["num_params"])
    axes.plot(
        [r["num_params"] for r in front],
        [r["objectives"][name] for r in front],
        "o-",
        color="crimson",
        markerfacecolor="none",
        markersize=9,
        zorder=3,
        label="Pareto front",
    )
    axes.set_xlabel("parameters")
    axes.set_ylabel(name)
    axes.set_title("EvoPose2D search: lines join each child to its parent")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_fitness(result, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    better = min if result["fitness"]["direction"] == "min" else max
    by_generation = {}
    for record in result["trials"]:
        by_generation.setdefault(record["generation"], []).append(
            record["fitness"]
        )
    generations = sorted(by_generation)
    best = [better(by_generation[g]) for g in generations]
    running = [better(best[: i + 1]) for i in range(len(best))]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(generations, best, "o-", label="best of the generation")
    axes.plot(generations, running, "--", label="best so far")
    axes.set_xlabel("generation (mutations from the ancestor)")
    axes.set_ylabel("fitness")
    axes.set_title("EvoPose2D search: fitness per generation")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _tuner_class():
    """`EvolutionTuner` with a progress bar over the search's trials."""
    from keras_evopose.search import EvolutionTuner

    class ProgressTuner(EvolutionTuner):
        progress = None

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            if self.progress is not None:
                status = self.oracle.get_trial(trial.trial_id).status
                self.progress.set_postfix_str(
                    f"trial {trial.trial_id} {status.lower()}"
                )
                self.progress.update(1)

    return ProgressTuner


def _epoch_bar_callback(verbose):
    import keras

    class EpochProgress(keras.callbacks.Callback):
        """One progress bar per trial, over its epochs."""

        def on_train_begin(self, logs=None):
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.params.get("epochs"),
                desc="  trial",
                unit="epoch",
                leave=False,
                disable=not verbose,
            )

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.bar.set_postfix(
                {
                    key: f"{logs[key]:.4g}"
                    for key in ("loss", "val_loss")
                    if key in logs
                }
            )
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return EpochProgress()


def run(args):
    settings = resolve_settings(args)
    # --tpu / --mirrored: a tf.distribute strategy keras-tuner builds,
    # compiles and fits every child in (TensorFlow backend).
    strategy = None
    if args.tpu or args.mirrored:
        strategy = strategy_from_flags(tpu=args.tpu, mirrored=args.mirrored)
    output = pathlib.Path(settings["output"])
    project = output / PROJECT
    # In keras-tuner's distributed mode only the chief may clear the shared
    # project: a worker that did would delete trials already running.
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "chief")
    is_worker = "chief" not in tuner_id
    if project.exists() and not args.resume and not is_worker:
        if not args.overwrite:
            raise UsageError(
                f"{output} already holds a search: continue it with "
                f"--resume {output}, or start over with --overwrite"
            )
        shutil.rmtree(project)
    return run_search(
        settings,
        resume=bool(args.resume),
        verbose=args.verbose,
        distribution_strategy=strategy,
    )


def run_search(settings, resume=False, verbose=1, distribution_strategy=None):
    """Runs (or resumes) a search; returns 0. Used by the CLI and tests."""
    import time

    import keras
    import keras_tuner
    from tqdm.auto import tqdm

    from keras_evopose.models import EvoPose2D
    from keras_evopose.search import EvolutionOracle
    from keras_evopose.search import SearchSpace

    start = time.time()
    output = pathlib.Path(settings["output"])
    output.mkdir(parents=True, exist_ok=True)
    # Rewritten on resume too: flags given then (e.g. --max-trials) hold
    # for the next resume as well.
    (output / CONFIG_FILE).write_text(json.dumps(settings, indent=2))
    keras.utils.set_random_seed(settings["seed"])
    ancestor = ancestor_genotype(settings)
    space = SearchSpace(ancestor=ancestor)
    model_kwargs = {}
    image_size = parse_image_size(settings["image_size"])
    if image_size is not None:
        model_kwargs["image_shape"] = [*image_size, 3]
    input_size = image_size or tuple(
        EvoPose2D.from_preset(settings["preset"]).input_shape[1:3]
    )
    train_json, val_json = split_annotations(
        settings["annotations"], output / "split", settings["val_fraction"]
    )
    oracle = EvolutionOracle(
        objective=[
            keras_tuner.Objective("val_loss", "min"),
            keras_tuner.Objective("num_params", "min"),
        ],
        search_space=space,
        max_trials=settings["max_trials"],
        num_parents=settings["num_parents"],
        selection=settings["selection"],
        target_params=settings["target_params"],
        size_weight=settings["size_weight"],
        seed=settings["seed"] + 1,
    )
    train_data = _DatasetFactory(
        train_json, settings["images"], input_size, True, settings
    )
    val_data = _DatasetFactory(
        val_json, settings["images"], input_size, False, settings
    )
    tuner = _tuner_class()(
        oracle,
        preset=settings["preset"],
        model_kwargs=model_kwargs,
        compile_kwargs={
            "optimizer": {
                "class_name": "Adam",
                "config": {"learning_rate": settings["learning_rate"]},
            },
        },
        ancestor_epochs=settings["ancestor_epochs"],
        child_epochs=settings["child_epochs"],
        max_model_size=settings["max_model_size"],
        directory=str(output),
        project_name=PROJECT,
        # `run` cleared the project when asked to; never let keras-tuner
        # delete a directory other processes may share.
        overwrite=False,
        distribution_strategy=distribution_strategy,
    )
    oracle.verbose = 0
    num_done = sum(
        1 for t in oracle.trials.values() if t.status in ("COMPLETED", "FAILED")
    )
    with tqdm(
        total=settings["max_trials"],
        initial=num_done,
        desc="search",
        unit="trial",
        disable=not verbose,
    ) as progress:
        tuner.progress = progress
        tuner.search(
            train_data,
            validation_data=val_data,
            callbacks=[_epoch_bar_callback(verbose)],
            verbose=0,
        )
    result = write_results(oracle, output)
    best = min(
        result["trials"],
        key=lambda r: (
            r["fitness"]
            if result["fitness"]["direction"] == "min"
            else -r["fitness"]
        ),
    )
    with warnings.catch_warnings():
        # The checkpoint also holds the optimizer, which is not needed here.
        warnings.filterwarnings(
            "ignore", message="Skipping variable loading for optimizer"
        )
        model = tuner.load_model(oracle.get_trial(best["trial_id"]))
    model.save(output / "best_model.keras")
    if verbose:
        print(
            f"{len(result['trials'])} trials completed, "
            f"{len(result['failed_trials'])} failed, "
            f"{len(result['front'])} on the Pareto front "
            f"({time.time() - start:.0f} s). Best fitness "
            f"{best['fitness']:.4g}: trial {best['trial_id']}, "
            f"{best['num_params']:,.0f} params, val_loss "
            f"{best['objectives']['val_loss']:.4g}."
        )
        print(
            "Wrote "
            + ", ".join(
                str(output / name)
                for name in (
                    "pareto.json",
                    "pareto.png",
                    "fitness.png",
                    "best_model.keras",
                )
            )
        )
    return 0
