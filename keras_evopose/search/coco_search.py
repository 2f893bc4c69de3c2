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


def _bundled_data():
    # The bundled images sit in the repository, next to the package
    # (editable install); from a regular install, `./data`.
    repository = pathlib.Path(__file__).resolve().parents[2]
    bundled = repository / "data"
    if not (bundled / "coco_kpt_mini").exists():
        bundled = pathlib.Path("data")
    return bundled


BUNDLED_DATA = _bundled_data()
BUNDLED_COCO = BUNDLED_DATA / "coco_kpt_mini"
# The main job trains on one set of genuine COCO images and validates on
# people it never sees (another set).
BUNDLED_TRAIN = (
    BUNDLED_DATA
    / "coco_kpt_extra"
    / "annotations"
    / "person_keypoints_extra.json",
    BUNDLED_DATA / "coco_kpt_extra" / "images",
)
BUNDLED_VAL = (
    BUNDLED_COCO / "annotations" / "person_keypoints_val2017_mini.json",
    BUNDLED_COCO / "val2017",
)


def _setting(default, help_text):
    return dataclasses.field(default=default, metadata={"help": help_text})


@keras_evopose_export("keras_evopose.search.COCOSearchConfig")
@dataclasses.dataclass(frozen=True)
class COCOSearchConfig:
    """Every setting of a COCO keypoints search (`keras-evopose search`).

    The defaults are the README's main job: a small search over the
    `test` preset's genotype on the bundled COCO images, trained with the
    paper's per-trial recipe (cosine to 0 over each trial, L2 1e-5, the
    reference search's augmentation) at a demo's scale. A config file
    (YAML or JSON) of the command line holds the same keys; the saved
    `search_config.json` of a search is one too, and
    `configs/evopose2d_paper_search.yaml` is the paper's search.
    """

    annotations: str = _setting(
        str(BUNDLED_TRAIN[0]),
        "COCO keypoints JSON the children train on",
    )
    images: str = _setting(str(BUNDLED_TRAIN[1]), "its image folder")
    val_annotations: str = _setting(
        None,
        "COCO keypoints JSON the children are scored on; default: the "
        "bundled val2017 images with the bundled training set, else "
        "--annotations split by image id (--val-fraction)",
    )
    val_images: str = _setting(None, "its image folder (default: --images)")
    val_fraction: float = _setting(
        0.25,
        "without --val-annotations: fraction of the images (every 1/f-th "
        "by id) held out for validation",
    )
    preset: str = _setting(
        "test", "preset whose stem, head and input size all share"
    )
    ancestor: str = _setting(
        "preset",
        "generation-0 genotype: 'preset' (the preset's), 'efficientnet-b0' "
        "or comma-joined block strings",
    )
    input_size: str = _setting(
        None, "input HEIGHTxWIDTH, default: the preset's"
    )
    max_trials: int = _setting(5, "trials in total, the ancestor included")
    ancestor_epochs: int = _setting(6, "epochs of generation 0 (paper: 30)")
    child_epochs: int = _setting(6, "epochs of each child (the paper: 5)")
    batch_size: int = _setting(16, "batch size")
    passes_per_epoch: int = _setting(8, "passes over search-train per epoch")
    learning_rate: float = _setting(
        1e-2,
        "each trial's first Adam learning rate (paper: 2.5e-4 x batch / 32, "
        "4e-3 at batch 512)",
    )
    learning_rate_schedule: str = _setting(
        "cosine",
        "'cosine': to 0 over each trial's own steps, no warm-up (the "
        "paper's); 'constant'",
    )
    weight_decay: float = _setting(
        1e-5, "L2 on the conv kernels as the paper (0: none)"
    )
    batch_norm_momentum: float = _setting(
        0.99, "BN moving-statistics momentum (Keras' and the paper's 0.99)"
    )
    ancestor_weights: str = _setting(
        None,
        "'imagenet': the ancestor starts from ImageNet EfficientNet weights "
        "(downloaded; the paper's); default random",
    )
    num_parents: int = _setting(4, "parent pool size (the paper's mu)")
    selection: str = _setting("fitness", "parent pool: 'fitness' or 'pareto'")
    population: str = _setting(
        "steady_state",
        "'steady_state' (never waits) or 'generational' (the paper's)",
    )
    children_per_generation: int = _setting(
        64, "generational: children per generation (the paper's lambda)"
    )
    gene_weighting: str = _setting(
        "uniform",
        "mutation's gene draw: 'uniform' or 'reference' (by chance to change)",
    )
    head_filter_choices: str = _setting(
        None,
        "head genes (beyond the paper): comma-joined widths an upsampling "
        "step of the head may take, e.g. '8,16,32'; default: the head is "
        "not searched",
    )
    head_steps: str = _setting(
        None,
        "head genes: MIN-MAX upsampling steps of the head, e.g. '1-3' "
        "(each doubles the heatmap side); default: the head is not searched",
    )
    # The reference's search (all of COCO) neither rotates nor scales;
    # on the main job's 191 people, 576 steps per child overfit without
    # them (measured: every child's training loss fell, its validation
    # loss ended above its ancestor's).
    rotation_probability: float = _setting(
        0.6,
        "chance of a rotated training crop (the reference search's: 0)",
    )
    scale_factor: float = _setting(
        0.3, "scale augmentation 1 +- f (the reference search's: 0)"
    )
    half_body_probability: float = _setting(
        0.5,
        "chance of a half-body crop, people with > 8 visible joints (the "
        "reference applies it to about half)",
    )
    target_params: float = _setting(
        5e6, "T of the fitness loss * (T / params) ** w"
    )
    size_weight: float = _setting(-0.07, "w of the fitness")
    max_model_size: int = _setting(
        None, "fail trials with more parameters (count_params)"
    )
    heartbeat_timeout: float = _setting(
        180.0,
        "distributed: seconds of silence after which a worker's trial goes "
        "to another worker",
    )
    seed: int = _setting(0, "seed of the oracle and the data")
    output: str = _setting("evopose_search", "output directory")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                if field.default is not None:
                    raise ValueError(f"{field.name} must be given")
                continue
            kind = type(field.default) if field.default is not None else None
            if field.name == "max_model_size":
                kind = int
            elif field.name in (
                "val_annotations",
                "val_images",
                "input_size",
                "ancestor_weights",
                "head_filter_choices",
                "head_steps",
            ):
                kind = str
            if kind is float and isinstance(value, int):
                object.__setattr__(self, field.name, float(value))
            elif isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError(
                    f"{field.name} must be a {kind.__name__}; received "
                    f"{value!r}"
                )
        for name in (
            "max_trials",
            "ancestor_epochs",
            "child_epochs",
            "batch_size",
            "passes_per_epoch",
            "children_per_generation",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be a positive int; received "
                    f"{getattr(self, name)!r}"
                )
        if not 0 < self.val_fraction < 1:
            raise ValueError(
                "val_fraction must be between 0 and 1; received "
                f"{self.val_fraction!r}"
            )
        self._check_choices()
        from keras_evopose.models import presets

        if self.preset not in presets.list_presets():
            raise ValueError(
                f"preset must be one of "
                f"{', '.join(repr(p) for p in presets.list_presets())}; "
                f"received {self.preset!r}"
            )
        head_genes = head_genes_of(self)
        if any(value is not None for value in head_genes.values()):
            from keras_evopose.search.search_space import SearchSpace

            # Bad bounds fail here, before anything is written.
            SearchSpace(ancestor=ancestor_genotype(self), **head_genes)
        if not self.heartbeat_timeout > 0:
            raise ValueError(
                "heartbeat_timeout must be positive seconds; received "
                f"{self.heartbeat_timeout!r}"
            )

    def _check_choices(self):
        from keras_evopose.search.evolution_oracle import POPULATIONS
        from keras_evopose.search.mutation import GENE_WEIGHTINGS
        from keras_evopose.search.trial_optimizer import SCHEDULES

        for name, choices in (
            ("learning_rate_schedule", SCHEDULES),
            ("population", POPULATIONS),
            ("gene_weighting", GENE_WEIGHTINGS),
            ("ancestor_weights", (None, "imagenet")),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"{name} must be one of "
                    f"{', '.join(repr(c) for c in choices)}; received "
                    f"{getattr(self, name)!r}"
                )
        ranges = {
            "learning_rate": (self.learning_rate > 0, "positive"),
            "weight_decay": (self.weight_decay >= 0, ">= 0"),
            "scale_factor": (0 <= self.scale_factor < 1, "in [0, 1)"),
            "batch_norm_momentum": (
                0 <= self.batch_norm_momentum < 1,
                "in [0, 1)",
            ),
            "rotation_probability": (
                0 <= self.rotation_probability <= 1,
                "in [0, 1]",
            ),
            "half_body_probability": (
                0 <= self.half_body_probability <= 1,
                "in [0, 1]",
            ),
        }
        for name, (valid, expected) in ranges.items():
            if not valid:
                raise ValueError(
                    f"{name} must be {expected}; received "
                    f"{getattr(self, name)!r}"
                )

    @classmethod
    def from_dict(cls, values, source="settings"):
        """A config from a mapping; unknown keys raise naming `source`.
        Dashes in keys are read as underscores."""
        if not isinstance(values, dict):
            raise ValueError(f"{source} must hold a mapping of settings")
        values = {key.replace("-", "_"): v for key, v in values.items()}
        known = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"unknown setting(s) in {source}: {', '.join(unknown)}; "
                f"known: {', '.join(known)}"
            )
        return cls(**values)

    def to_dict(self):
        return dataclasses.asdict(self)


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


def input_size_of(config):
    """`(height, width)` of the search's input."""
    if config.input_size is None:
        from keras_evopose.models import presets

        shape = presets.preset_arguments(config.preset, "backbone")[
            "image_shape"
        ]
        return tuple(shape[:2])
    try:
        height, width = (
            int(side) for side in config.input_size.lower().split("x")
        )
    except ValueError:
        raise ValueError(
            "input_size must be HEIGHTxWIDTH, e.g. 256x192; received "
            f"{config.input_size!r}"
        ) from None
    return height, width


def head_genes_of(config):
    """`SearchSpace`'s `head_filter_choices` and `head_steps` from the
    config's strings (`"8,16,32"`, `"1-3"`); `None` where not given."""
    genes = {"head_filter_choices": None, "head_steps": None}
    for name, separator, example in (
        ("head_filter_choices", ",", "8,16,32"),
        ("head_steps", "-", "1-3"),
    ):
        text = getattr(config, name)
        if text is None:
            continue
        try:
            values = [int(part) for part in text.split(separator)]
        except ValueError:
            values = []
        if not values or (name == "head_steps" and len(values) != 2):
            raise ValueError(
                f"{name} must be like {example!r}; received {text!r}"
            )
        genes[name] = values
    return genes


def ancestor_genotype(config):
    """The generation-0 genotype the config names; with head genes, it
    ends with the preset's head steps (unless the ancestor names its own)."""
    from keras_evopose.models import presets
    from keras_evopose.models.evopose2d_presets import ANCESTOR_GENOTYPE
    from keras_evopose.models.genotype import Genotype

    if config.ancestor == "preset":
        genotype = Genotype.from_strings(
            presets.preset_arguments(config.preset, "backbone")["genotype"]
        )
    elif config.ancestor == "efficientnet-b0":
        genotype = Genotype.from_strings(ANCESTOR_GENOTYPE)
    else:
        genotype = Genotype.from_string(config.ancestor)
    searches_head = any(v is not None for v in head_genes_of(config).values())
    if searches_head and genotype.head_filters is None:
        head = presets.preset_arguments(config.preset, "head")
        genotype = genotype.replace(head_filters=head["head_filters"])
    return genotype.to_strings()


def ancestor_stride(config):
    """The output stride of the config's ancestor genotype."""
    from keras_evopose.models.genotype import Genotype

    return Genotype.from_strings(ancestor_genotype(config)).output_stride


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
            self._cache[key] = (
                dataset.repeat() if self.training else dataset.cache().repeat()
            )
        return self._cache[key]

    def steps(self):
        """Batches per epoch: every person once per pass."""
        from keras_evopose.data.coco_instances import load_coco_instances

        people = len(load_coco_instances(self.annotations, self.images))
        return self.passes * math.ceil(people / self.batch_size)


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

    from keras_evopose.data.coco_split import split_coco_by_image
    from keras_evopose.search.evolution_oracle import EvolutionOracle
    from keras_evopose.search.evolution_tuner import EvolutionTuner
    from keras_evopose.search.evopose2d_hypermodel import FITNESS_METRIC
    from keras_evopose.search.evopose2d_hypermodel import EvoPose2DHyperModel
    from keras_evopose.search.results import describe
    from keras_evopose.search.results import write_search_results
    from keras_evopose.search.search_space import SearchSpace
    from keras_evopose.search.trial_optimizer import TrialOptimizer
    from keras_evopose.training import evopose2d_regularizer

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
    space = SearchSpace(
        ancestor=ancestor_genotype(config), **head_genes_of(config)
    )
    input_size = input_size_of(config)
    stride = ancestor_stride(config)
    if input_size[0] % stride or input_size[1] % stride:
        raise ValueError(
            f"input_size {input_size[0]}x{input_size[1]} must have sides "
            f"divisible by {stride}, the ancestor's output stride"
        )
    model_kwargs = {
        "kernel_regularizer": evopose2d_regularizer(config.weight_decay),
        "batch_norm_momentum": config.batch_norm_momentum,
    }
    if config.input_size is not None:
        model_kwargs["image_shape"] = [*input_size, 3]
    # Every child carries its data contract: the data's keypoint layout
    # (any skeleton) and the search's augmentation.
    from keras_evopose.data import KeypointLayout

    layout = KeypointLayout.from_json(config.annotations)
    model_kwargs["keypoint_layout"] = layout.get_config()
    model_kwargs["sample_options"] = {
        "rotation_probability": config.rotation_probability,
        "scale_factor": config.scale_factor,
        "half_body_probability": config.half_body_probability,
    }
    validation = validation_source(config)
    if validation is None:
        # Every process writes the same split (atomically): workers may
        # start before the chief.
        train_json, val_json = split_coco_by_image(
            config.annotations, output / "split", config.val_fraction
        )
        val_images = config.images
    else:
        train_json = config.annotations
        val_json, val_images = validation
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
    hypermodel = EvoPose2DHyperModel(
        config.preset,
        model_kwargs,
        trial_optimizer=TrialOptimizer(
            config.learning_rate, config.learning_rate_schedule
        ),
        ancestor_weights=config.ancestor_weights,
    )
    tuner = _progress_tuner_class(EvolutionTuner)(
        oracle,
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
    train_data = _DatasetFactory(
        train_json, config.images, input_size, True, config
    )
    val_data = _DatasetFactory(val_json, val_images, input_size, False, config)
    tuner.run_search_with_progress(
        train_data,
        val_data,
        train_data.steps(),
        val_data.steps(),
        config.max_trials,
        verbose=verbose,
        bars=role == "single",
        callbacks=list(callbacks or []),
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
    from keras_evopose.models.genotype import Genotype
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
        hp.Fixed(
            "genotype",
            Genotype.from_strings(ancestor_genotype(config)).to_string(),
        )
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


def _progress_tuner_class(base):
    """`base` with progress bars over the trials and each trial's epochs."""
    import keras

    class EpochProgress(keras.callbacks.Callback):
        """One progress bar per trial, over its epochs."""

        def __init__(self, enabled):
            super().__init__()
            self.enabled = enabled

        def on_train_begin(self, logs=None):
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.params.get("epochs"),
                desc="  trial",
                unit="epoch",
                leave=False,
                disable=not self.enabled,
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

    class ProgressTuner(base):
        progress = None
        verbose = 0
        bars = False

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            ended = self.oracle.get_trial(trial.trial_id)
            if ended.status == "FAILED" and self.verbose:
                lines = (ended.message or trial.message or "").strip()
                reason = lines.splitlines()[-1] if lines else "no message"
                # "keras_tuner.src.errors.FailedTrialError: why" -> "why".
                reason = reason.split("FailedTrialError: ", 1)[-1]
                print(
                    f"trial {trial.trial_id} failed: {reason} (traceback "
                    f"in {self.get_trial_dir(trial.trial_id)}/trial.json)",
                    flush=True,
                )
            elif ended.status == "COMPLETED" and (
                self.verbose >= 2 or (self.verbose and not self.bars)
            ):
                from keras_evopose.search.results import describe_trial

                # One line per trial where no bar is drawn (a log file).
                line = describe_trial(self.oracle, ended, self.last_timing)
                if self.progress is not None and self.bars:
                    self.progress.write(line)
                else:
                    print(line, flush=True)
            if self.progress is not None:
                status = ended.status
                self.progress.set_postfix_str(
                    f"trial {trial.trial_id} {status.lower()}"
                )
                self.progress.update(1)

        def run_search_with_progress(
            self,
            train_data,
            val_data,
            train_steps,
            val_steps,
            max_trials,
            verbose,
            bars,
            callbacks,
        ):
            from tqdm.auto import tqdm

            # Bars only on a terminal: redrawn into a file they leave debris.
            enabled = bool(verbose) and bars and _stderr_is_terminal()
            done = (
                sum(
                    1
                    for t in self.oracle.trials.values()
                    if t.status in ("COMPLETED", "FAILED")
                )
                if not self._is_worker()
                else 0
            )
            self.verbose = verbose
            self.bars = enabled
            with tqdm(
                total=max_trials,
                initial=done,
                desc="search",
                unit="trial",
                disable=not enabled,
            ) as progress:
                self.progress = progress
                self.search(
                    train_data,
                    validation_data=val_data,
                    steps_per_epoch=train_steps,
                    validation_steps=val_steps,
                    callbacks=[EpochProgress(enabled)] + callbacks,
                    # The training data is shuffled by the pipeline.
                    shuffle=False,
                    verbose=0,
                )

    return ProgressTuner


def _stderr_is_terminal():
    import sys

    return sys.stderr.isatty()
