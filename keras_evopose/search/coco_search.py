"""The whole EvoPose2D search on COCO keypoints, as one call.

`run_coco_search(COCOSearchConfig(...))` is what `keras-evopose search`
runs: it splits the annotations by image, builds the data as functions of
each child's heatmap size, the `EvolutionOracle` and `EvolutionTuner`,
searches (or serves, or works, in keras-tuner's distributed mode), and
writes the results and the best model. Everything a search needs to
resume is in its output folder.
"""

import dataclasses
import json
import math
import os
import pathlib
import shutil
import warnings

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.search.coco_search_config import BUNDLED_TRAIN
from keras_evopose.search.coco_search_config import BUNDLED_VAL
from keras_evopose.search.coco_search_config import COCOSearchConfig
from keras_evopose.search.evolution_oracle import ResumeError
from keras_evopose.utils.folder_lock import FolderLock
from keras_evopose.utils.state_files import read_json_state
from keras_evopose.utils.state_files import remove_partial_files
from keras_evopose.utils.state_files import write_atomically
from keras_evopose.utils.state_files import write_json_atomically

CONFIG_FILE = "search_config.json"
PROJECT = "tuner"
BEST_MODEL = "best_model.keras"
UNTRAINED_FILE = "untrained.json"


def validation_source(config):
    """`(annotations, images)` the children are scored on, or `None`:
    split `config.annotations` by image id."""
    if config.val_annotations is not None:
        return (
            config.val_annotations,
            config.val_images or config.images,
        )
    bundled = [str(path) for path in BUNDLED_TRAIN]
    if [config.annotations, config.images] == bundled:
        return tuple(str(path) for path in BUNDLED_VAL)
    return None


# Views of `config.resolve()`, in the forms callers used before it.


def input_size_of(config):
    """`(height, width)` of the search's input."""
    return config.derive().input_size


def head_genes_of(config):
    """`SearchSpace`'s `head_filter_choices` and `head_steps` as lists;
    `None` where not given."""
    return {
        name: None if value is None else list(value)
        for name, value in config.derive().head_genes().items()
    }


def ancestor_genotype(config):
    """The generation-0 genotype the config names, as block strings."""
    return config.derive().ancestor.to_strings()


def ancestor_stride(config):
    """The output stride of the config's ancestor genotype."""
    return config.derive().stride


def _trial_data_options():
    import tensorflow as tf

    options = tf.data.Options()
    # A trial deletes its iterators (each validation pass, the end of
    # `fit`), and deleting one waits for tf.data's autotuning thread to
    # wake up, which it does late, at the end of its optimization period
    # (doubling up to a minute): measured 10 to 30 s at the end of most
    # trials, ~1 s per validation pass. Without autotuning, AUTOTUNE
    # parallelism is every core and prefetching keeps its own tuning;
    # batches came as fast (30-45 ms per batch either way, 2 cores).
    options.autotune.enabled = False
    return options


class _DatasetFactory:
    """`heatmap_size -> tf.data.Dataset`, cached per size (picklable for
    keras-tuner's deep copies: it holds paths and numbers)."""

    def __init__(self, annotations, images, input_size, training, config):
        self.annotations = str(annotations)
        self.images = str(images)
        self.input_size = tuple(input_size)
        self.training = training
        self.batch_size = config.batch_size
        self.passes = config.passes_per_epoch if training else 1
        self.seed = config.seed
        # The search's augmentation (training only; validation crops are
        # never augmented).
        self.augmentation = (
            {
                "rotation_probability": config.rotation_probability,
                "scale_factor": config.scale_factor,
                "half_body_probability": config.half_body_probability,
            }
            if training
            else {}
        )
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
                **self.augmentation,
            )
            # Validation crops never change: decode them once. Repeated
            # for ever, with `steps()` per epoch: Keras then keeps one
            # iterator through a trial's epochs instead of making one per
            # epoch.
            dataset = (
                dataset.repeat() if self.training else dataset.cache().repeat()
            )
            self._cache[key] = dataset.with_options(_trial_data_options())
        return self._cache[key]

    def steps(self):
        """Batches per epoch: every person once per pass."""
        from keras_evopose.data.coco_instances import load_coco_instances

        people = len(load_coco_instances(self.annotations, self.images))
        return self.passes * math.ceil(people / self.batch_size)


def trial_hypermodel(config):
    """The `EvoPose2DHyperModel` that builds, compiles and trains every
    trial of `config`'s search (the ancestor's and each child's recipe)."""
    from keras_evopose.data import KeypointLayout
    from keras_evopose.search.evopose2d_hypermodel import EvoPose2DHyperModel
    from keras_evopose.search.trial_optimizer import TrialOptimizer
    from keras_evopose.training import evopose2d_regularizer

    model_kwargs = {
        "kernel_regularizer": evopose2d_regularizer(config.weight_decay),
        "batch_norm_momentum": config.batch_norm_momentum,
    }
    if config.input_size is not None:
        model_kwargs["image_shape"] = [*config.resolve().input_size, 3]
    # Every child carries its data contract: the data's keypoint layout
    # (any skeleton) and the search's augmentation.
    layout = KeypointLayout.from_json(config.annotations)
    model_kwargs["keypoint_layout"] = layout.get_config()
    model_kwargs["sample_options"] = {
        "rotation_probability": config.rotation_probability,
        "scale_factor": config.scale_factor,
        "half_body_probability": config.half_body_probability,
    }
    return EvoPose2DHyperModel(
        config.preset,
        model_kwargs,
        trial_optimizer=TrialOptimizer(
            config.learning_rate, config.learning_rate_schedule
        ),
        ancestor_weights=config.ancestor_weights,
    )


def trial_data(config, output):
    """`(train_data, val_data, (val_annotations, val_images))` of
    `config`'s search: the data as functions of a child's heatmap size
    (with `.steps()` batches per epoch). Without a validation set, the
    annotations are split by image id into `output/split`."""
    from keras_evopose.data.coco_split import split_coco_by_image

    input_size = config.resolve().input_size
    validation = validation_source(config)
    if validation is None:
        # Every process writes the same split (atomically): workers may
        # start before the chief.
        train_json, val_json = split_coco_by_image(
            config.annotations,
            pathlib.Path(output) / "split",
            config.val_fraction,
        )
        val_images = config.images
    else:
        train_json = config.annotations
        val_json, val_images = validation
    train_data = _DatasetFactory(
        train_json, config.images, input_size, True, config
    )
    val_data = _DatasetFactory(val_json, val_images, input_size, False, config)
    return train_data, val_data, (val_json, val_images)


def search_role():
    """`"single"`, `"chief"` or `"worker"` (keras-tuner's environment)."""
    if not os.environ.get("KERASTUNER_ORACLE_IP"):
        return "single"
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    return "chief" if "chief" in tuner_id else "worker"


@keras_evopose_export("keras_evopose.search.SearchOutcome")
@dataclasses.dataclass
class SearchOutcome:
    """What `run_coco_search` did.

    Attributes:
        role: `"single"`, `"chief"` or `"worker"`.
        output: the output folder.
        result: the `search_results` value (`None` on a worker, which
            leaves results to the chief).
        stop_reason: why the search stopped before `max_trials`, or `None`.
        stopped_by_failures: whether that was failed trials in a row.
        best_model: path of the saved best model, or `None`.
    """

    role: str
    output: pathlib.Path
    result: dict = None
    stop_reason: str = None
    stopped_by_failures: bool = False
    best_model: pathlib.Path = None


# Settings that name places, not the search: a worker on another host may
# see the shared files under other paths.
PLACES = ("annotations", "images", "output")


def wait_for_saved_config(output, timeout=3600.0, poll=1.0, verbose=1):
    """A worker's settings: the `COCOSearchConfig` its chief saved in
    `output`, once the chief has written it (up to `timeout` seconds,
    keras-tuner's own wait for a chief)."""
    import time

    path = pathlib.Path(output) / CONFIG_FILE
    deadline = time.monotonic() + timeout
    if not path.exists() and verbose:
        print(f"worker: waiting for the chief to write {path}", flush=True)
    while not path.exists():
        if time.monotonic() > deadline:
            raise ResumeError(
                f"no chief wrote {path} within {timeout:.0f} s: start the "
                "chief (KERASTUNER_TUNER_ID=chief) with the same --output"
            )
        time.sleep(poll)
    return load_saved_config(output)


def check_worker_config(config, verbose=1):
    """Refuses a worker whose settings differ from its chief's saved
    ones (`ResumeError` naming each difference): one search would
    otherwise mix training recipes. Waits for the chief to save them."""
    saved = wait_for_saved_config(config.output, verbose=verbose)
    differences = [
        f"{name} {getattr(config, name)!r} (chief: {getattr(saved, name)!r})"
        for name in sorted(config.to_dict())
        if name not in PLACES and getattr(config, name) != getattr(saved, name)
    ]
    if differences:
        raise ResumeError(
            "this worker's settings differ from its chief's "
            f"({pathlib.Path(config.output) / CONFIG_FILE}): "
            f"{'; '.join(differences)}; start the worker with only --output "
            "(it adopts the chief's settings)"
        )


def _ended_trials(project):
    ended = 0
    for path in pathlib.Path(project).glob("trial_*/trial.json"):
        try:
            status = json.loads(path.read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            continue  # The resume names a damaged trial file itself.
        ended += status in ("COMPLETED", "FAILED")
    return ended


def _check_max_trials(config, project):
    ended = _ended_trials(project)
    if config.max_trials < ended:
        raise ResumeError(
            f"--max-trials {config.max_trials} is below the {ended} trials "
            f"{config.output} has already run: give --max-trials {ended} or "
            "more"
        )


def load_saved_config(output):
    """The `COCOSearchConfig` saved in a search's output folder."""
    path = pathlib.Path(output) / CONFIG_FILE
    if not path.exists():
        trials = len(list((pathlib.Path(output) / PROJECT).glob("trial_*")))
        if trials:
            raise ResumeError(
                f"{path} is missing, but {pathlib.Path(output) / PROJECT} "
                f"holds {trials} trial(s): continue with --resume {output} "
                "--rebuild-config and the settings it was started with "
                "(--config FILE or flags; the Oracle's saved settings are "
                "checked against them)"
            )
        raise ResumeError(
            f"{output} holds no search to resume ({CONFIG_FILE} is missing)"
        )
    saved = read_json_state(
        path, "restore it, or start a new search in another folder"
    )
    try:
        return COCOSearchConfig.from_dict(saved, str(path))
    except ValueError as error:
        raise ResumeError(
            f"{path}: {error}; correct it (it holds the search's settings)"
        ) from None


@keras_evopose_export("keras_evopose.search.run_coco_search")
def run_coco_search(
    config=None,
    resume=False,
    overwrite=False,
    verbose=1,
    distribution_strategy=None,
    callbacks=None,
    retry_failed=False,
):
    """Runs, resumes, serves or works on an EvoPose2D search on COCO.

    Single process (the default): the whole search, then
    `OUTPUT/pareto.json`, `pareto.png`, `fitness.png` and the best trial
    by fitness as `best_model.keras`. In keras-tuner's distributed mode
    (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`,
    the output folder on shared storage) the chief serves the Oracle and
    writes the results once every trial has ended; a worker trains the
    trials it is given and returns when the chief says the search is over.

    Args:
        config: a `COCOSearchConfig` (default: the README's main job).
        resume: continue the search in `config.output`. Its trials are
            kept; an interrupted trial runs again; the saved Oracle settings
            must equal `config`'s (`ResumeError` names any difference).
        overwrite: delete a search already in `config.output` first.
        verbose: 0 silent, 1 progress bars and a summary line.
        distribution_strategy: a `tf.distribute` strategy every child is
            built and trained in.
        callbacks: extra Keras callbacks for every child's `fit`.
        retry_failed: on resume, run every failed trial again. Without
            it, only trials failed by their environment (a bad or missing
            file, an I/O error: their message says so) run again.

    Returns:
        A `SearchOutcome`.

    Raises:
        ResumeError: `config.output` already holds a search and neither
            `resume` nor `overwrite` was given, or it cannot be resumed.
        FolderLockedError: another process runs a search (single or
            chief) in `config.output`.
    """
    config = COCOSearchConfig() if config is None else config
    role = search_role()
    arguments = (config, role, resume, overwrite, verbose)
    arguments += (distribution_strategy, callbacks, retry_failed)
    if role == "worker":
        # Workers share the chief's folder; the chief holds its lock.
        check_worker_config(config, verbose)
        return _run_coco_search(*arguments)
    with FolderLock(
        config.output,
        "search",
        hint="wait for it to end, or stop it and continue with "
        f"--resume {config.output}",
    ):
        return _run_coco_search(*arguments)


def _run_coco_search(
    config,
    role,
    resume,
    overwrite,
    verbose,
    distribution_strategy,
    callbacks,
    retry_failed,
):
    import keras
    import keras_tuner

    from keras_evopose.search.evolution_oracle import EvolutionOracle
    from keras_evopose.search.evolution_tuner import EvolutionTuner
    from keras_evopose.search.evopose2d_hypermodel import FITNESS_METRIC
    from keras_evopose.search.results import describe
    from keras_evopose.search.results import write_search_results
    from keras_evopose.search.search_progress import SearchProgress

    output = pathlib.Path(config.output)
    project = output / PROJECT
    holds_search = (project / "oracle.json").exists() or any(
        project.glob("trial_*/trial.json")
    )
    # (Workers starting first may already have made an empty project.)
    if role != "worker" and holds_search and not resume:
        # Only the chief may clear a shared project: a worker that did
        # would delete trials already running.
        if not overwrite:
            raise ResumeError(
                f"{output} already holds a search: continue it with "
                f"--resume {output} (resume=True), or start over with "
                "--overwrite (overwrite=True)"
            )
        shutil.rmtree(project)
    output.mkdir(parents=True, exist_ok=True)
    if role == "single":
        # This process holds the folder's lock, so nothing else writes
        # here: a killed write's temporary file goes.
        remove_partial_files(output)
    elif role == "chief":
        # Workers write here too, but none holds a temporary file still
        # for a whole heartbeat timeout: older ones are a killed worker's.
        remove_partial_files(output, older_than=config.heartbeat_timeout)
    if resume and role != "worker":
        _check_max_trials(config, project)
    if role != "worker":
        # Rewritten on resume: flags given then (e.g. a larger max_trials)
        # hold for the next resume too.
        write_json_atomically(output / CONFIG_FILE, config.to_dict(), indent=2)
    keras.utils.set_random_seed(config.seed)
    resolved = config.resolve()
    space = resolved.search_space()
    hypermodel = trial_hypermodel(config)
    train_data, val_data, (val_json, val_images) = trial_data(config, output)
    oracle = EvolutionOracle(
        # The paper's fitness reads the validation heatmap error without
        # the L2 terms that Keras' val_loss includes.
        objective=[
            keras_tuner.Objective(FITNESS_METRIC, "min"),
            keras_tuner.Objective("num_params", "min"),
        ],
        search_space=space,
        max_trials=config.max_trials,
        num_parents=config.num_parents,
        selection=config.selection,
        population=config.population,
        children_per_generation=config.children_per_generation,
        gene_weighting=config.gene_weighting,
        target_params=config.target_params,
        size_weight=config.size_weight,
        heartbeat_timeout=config.heartbeat_timeout,
        seed=config.seed + 1,
    )
    oracle.verbose = 0
    # Read when the tuner below reloads the project.
    oracle.retry_failed = retry_failed
    done = (
        0
        if role == "worker"
        else sum(
            1
            for trial in oracle.trials.values()
            if trial.status in ("COMPLETED", "FAILED")
        )
    )
    progress = SearchProgress(
        config.max_trials, done, verbose=verbose, bars=role == "single"
    )
    tuner = EvolutionTuner(
        oracle,
        trial_callbacks=[progress],
        hypermodel=hypermodel,
        ancestor_epochs=config.ancestor_epochs,
        child_epochs=config.child_epochs,
        max_model_size=config.max_model_size,
        directory=str(output),
        project_name=PROJECT,
        # Cleared above when asked to; never let keras-tuner delete a
        # directory other processes may share.
        overwrite=False,
        distribution_strategy=distribution_strategy,
    )
    if verbose:
        for trial_id, cause in oracle.retried:
            print(f"re-running trial {trial_id}, which failed: {cause}")
    with progress:
        tuner.search(
            train_data,
            validation_data=val_data,
            steps_per_epoch=train_data.steps(),
            validation_steps=val_data.steps(),
            callbacks=[progress.epoch_callback(), *(callbacks or [])],
            # The training data is shuffled by the pipeline.
            shuffle=False,
            verbose=0,
        )
    outcome = SearchOutcome(role=role, output=output)
    if role == "worker":
        return outcome
    best = oracle.best_trial()
    model = None
    if best is not None:
        with warnings.catch_warnings():
            # The checkpoint has no optimizer state; none is needed here.
            warnings.filterwarnings(
                "ignore", message="Skipping variable loading for optimizer"
            )
            model = tuner.load_model(best)
    # Nothing to compare with the untrained network without a trial.
    held_out = (
        None
        if model is None
        else _held_out_report(
            config, output, hypermodel, val_data, (val_json, val_images), model
        )
    )
    if model is not None:
        # Before pareto.json, which names it with its hash: a kill between
        # the two writes leaves a pareto.json whose check says so.
        outcome.best_model = write_atomically(
            output / BEST_MODEL, lambda path: save_model(model, path)
        )
    result = write_search_results(
        oracle, output, held_out=held_out, best_model=outcome.best_model
    )
    outcome.result = result
    outcome.stop_reason = oracle.stop_reason
    outcome.stopped_by_failures = oracle.stopped_by_failures
    if verbose:
        print(describe(result))
    return outcome


def _held_out_report(config, output, hypermodel, val_data, validation, model):
    """What the results say about the validation people: how many, the
    untrained ancestor's `val_heatmap_mse` (what learning is measured
    against) and the best model's COCO AP on them."""
    import keras
    import keras_tuner

    from keras_evopose.data.coco_instances import load_coco_instances
    from keras_evopose.metrics import evaluate_coco
    from keras_evopose.search.evopose2d_hypermodel import FITNESS_METRIC
    from keras_evopose.search.evopose2d_hypermodel import heatmap_size_of

    annotations, images = (str(path) for path in validation)
    report = {
        "annotations": annotations,
        "images": images,
        "people": len(load_coco_instances(annotations, images)),
    }
    # Computed once per search folder (it does not change on resume).
    path = output / UNTRAINED_FILE
    saved = (
        read_json_state(path, "delete it to measure it again")
        if path.exists()
        else {}
    )
    if saved.get("annotations") == annotations:
        report["untrained"] = saved["untrained"]
    else:
        hp = keras_tuner.HyperParameters()
        hp.Fixed("genotype", config.derive().ancestor.to_string())
        keras.utils.set_random_seed(config.seed)
        untrained = hypermodel.build(hp)
        logs = untrained.evaluate(
            val_data(heatmap_size_of(untrained)),
            steps=val_data.steps(),
            return_dict=True,
            verbose=0,
        )
        report["untrained"] = {FITNESS_METRIC: float(logs["heatmap_mse"])}
        write_json_atomically(
            path, {"annotations": annotations, "untrained": report["untrained"]}
        )
    if model is not None:
        ap = evaluate_coco(model, annotations, images)
        report["best_coco_ap"] = {
            key: float(ap[key]) for key in ("ap", "ap50", "ap75", "ar")
        }
    return report


def save_model(model, path):
    """`model.save(path)` such that `keras.saving.load_model` restores it
    without warnings: an optimizer that never stepped is built first
    (unbuilt it saves 2 variables, and the loaded model's builds all its
    slots, so Keras would warn that it skipped them)."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.save(path)
