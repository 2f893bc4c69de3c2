"""The settings of a COCO keypoints search, typed, and what they derive.

`COCOSearchConfig` holds every setting as its own type (head genes as
tuples of ints); `COCOSearchConfig.parse(name, text)` reads one from
text (a flag, an old `search_config.json`) by the field's type, so the
command line needs no code per setting. `config.resolve()` derives what
the settings imply (the ancestor genotype, its output stride, the input
size) once for a combination of settings.
"""

import dataclasses
import functools
import pathlib
import types
import typing

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.search.fitness import SIZE_WEIGHT
from keras_evopose.search.fitness import TARGET_PARAMS


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


def _setting(default, help_text, example=None, separator=","):
    # `separator` joins a tuple's ints in its text form.
    metadata = {"help": help_text, "separator": separator}
    if example is not None:
        metadata["example"] = example
    return dataclasses.field(default=default, metadata=metadata)


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

    The input size and head genes are tuples of ints; their text forms
    (`"128x96"`, `"8,16,32"`, `"1-3"`, as flags and search folders
    written before they were typed spell them) are read too.
    """

    annotations: str = _setting(
        str(BUNDLED_TRAIN[0]),
        "COCO keypoints JSON the children train on",
    )
    images: str = _setting(str(BUNDLED_TRAIN[1]), "its image folder")
    val_annotations: typing.Optional[str] = _setting(
        None,
        "COCO keypoints JSON the children are scored on; default: the "
        "bundled val2017 images with the bundled training set, else "
        "--annotations split by image id (--val-fraction)",
    )
    val_images: typing.Optional[str] = _setting(
        None, "its image folder (default: --images)"
    )
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
    input_size: typing.Optional[typing.Tuple[int, int]] = _setting(
        None,
        "input HEIGHTxWIDTH, e.g. '128x96'; default: the preset's",
        example="128x96",
        separator="x",
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
    ancestor_weights: typing.Optional[str] = _setting(
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
    head_filter_choices: typing.Optional[typing.Tuple[int, ...]] = _setting(
        None,
        "head genes (beyond the paper): comma-joined widths an upsampling "
        "step of the head may take, e.g. '8,16,32'; default: the head is "
        "not searched",
        example="8,16,32",
    )
    head_steps: typing.Optional[typing.Tuple[int, int]] = _setting(
        None,
        "head genes: MIN-MAX upsampling steps of the head, e.g. '1-3' "
        "(each doubles the heatmap side); default: the head is not searched",
        example="1-3",
        separator="-",
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
        TARGET_PARAMS, "T of the fitness loss * (T / params) ** w"
    )
    size_weight: float = _setting(SIZE_WEIGHT, "w of the fitness")
    max_model_size: typing.Optional[int] = _setting(
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
            value = _checked(field, getattr(self, field.name))
            object.__setattr__(self, field.name, value)
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
        if self.searches_head:
            # Bad bounds fail here, before anything is written.
            self.derive()
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

    @property
    def searches_head(self):
        return self.head_filter_choices is not None or (
            self.head_steps is not None
        )

    def resolve(self):
        """What the settings derive, as a `ResolvedSearch`, derived once
        per combination of the settings it depends on (it is cached);
        `ValueError` if the input size is not a multiple of the
        ancestor's stride."""
        from keras_evopose.utils.validation import check_multiple_of

        resolved = self.derive()
        check_multiple_of(resolved.input_size, resolved.stride, "input_size")
        return resolved

    def derive(self):
        """`resolve()` without the input-size check: what the ancestor
        alone needs (its genotype, its stride)."""
        return _derive(
            self.preset,
            self.ancestor,
            self.head_filter_choices,
            self.head_steps,
            self.input_size,
        )

    @classmethod
    def parse(cls, name, text):
        """The value of setting `name` read from `text` by its type:
        `"5"` for an int, `"8,16,32"` for a tuple of ints, `"1-3"` for a
        (min, max) pair, `"128x96"` for a (height, width); `ValueError`
        naming the setting otherwise."""
        field = {f.name: f for f in dataclasses.fields(cls)}[name]
        return _parse_text(field, text)

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
        """The settings as JSON values (tuples as lists)."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in dataclasses.asdict(self).items()
        }


def _field_type(field):
    """`(kind, optional)` of a field: `typing.Optional[X]` is `(X, True)`."""
    hint = typing.get_type_hints(COCOSearchConfig)[field.name]
    arguments = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [kind for kind in arguments if kind is not type(None)]
        return kinds[0], True
    return hint, False


def _parse_text(field, text):
    kind, _ = _field_type(field)
    if typing.get_origin(kind) is tuple:
        return _int_tuple(field, kind, text)
    if kind is str:
        return text
    try:
        return kind(text)
    except ValueError:
        raise ValueError(
            f"{field.name} must be a {kind.__name__}; received {text!r}"
        ) from None


def _int_tuple(field, kind, value):
    # The text form joins the ints with the field's separator ("8,16,32",
    # "1-3", "128x96"); a fixed pair has exactly two.
    pair = typing.get_args(kind)[-1] is not Ellipsis
    items = value
    if isinstance(value, str):
        separator = field.metadata["separator"]
        try:
            items = [int(part) for part in value.lower().split(separator)]
        except ValueError:
            items = []
    valid = (
        isinstance(items, (list, tuple))
        and items
        and all(
            isinstance(item, int) and not isinstance(item, bool)
            for item in items
        )
        and (not pair or len(items) == 2)
    )
    if not valid:
        example = field.metadata.get("example")
        raise ValueError(
            f"{field.name} must be like {example!r}; received {value!r}"
            if example
            else f"{field.name} must be a tuple of ints; received {value!r}"
        )
    return tuple(items)


def _checked(field, value):
    """`value` as the field's type (an int where a float is meant, text or
    a list for a tuple of ints); `ValueError` naming the field else."""
    kind, optional = _field_type(field)
    if value is None:
        if not optional:
            raise ValueError(f"{field.name} must be given")
        return None
    if typing.get_origin(kind) is tuple:
        return _int_tuple(field, kind, value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(
            f"{field.name} must be a {kind.__name__}; received {value!r}"
        )
    return value


@dataclasses.dataclass(frozen=True)
class ResolvedSearch:
    """What a `COCOSearchConfig`'s settings derive.

    Attributes:
        ancestor: the generation-0 `Genotype`; with head genes it ends
            with the preset's head steps (unless the ancestor names its
            own).
        head_filter_choices: tuple of ints or `None` (head not searched).
        head_steps: `(min, max)` or `None`.
        input_size: `(height, width)` of the input.
        stride: the ancestor's output stride; both sides of `input_size`
            are multiples of it.
    """

    ancestor: object
    head_filter_choices: tuple
    head_steps: tuple
    input_size: tuple
    stride: int

    def head_genes(self):
        """`SearchSpace`'s head-gene arguments (`None` where not given)."""
        return {
            "head_filter_choices": self.head_filter_choices,
            "head_steps": self.head_steps,
        }

    def search_space(self):
        """A new `SearchSpace` over the ancestor with the head genes.

        With stride genes, its `max_output_stride` is capped at the
        largest power of 2 dividing both sides of `input_size` (e.g. 16
        at 64x48), so no child's stride fails to divide the input; the
        space is unchanged where the cap is not below its default (32),
        and so is its saved `get_config`."""
        from keras_evopose.search.search_space import SearchSpace
        from keras_evopose.utils.validation import check_multiple_of

        # `resolve`'s one-line error, also for a `derive()`d search; past
        # it the ancestor's stride is at most the cap below.
        check_multiple_of(self.input_size, self.stride, "input_size")
        space = SearchSpace(ancestor=self.ancestor, **self.head_genes())
        cap = _largest_dividing_stride(self.input_size)
        if space.stride_stages and cap < space.max_output_stride:
            space = SearchSpace(
                ancestor=self.ancestor,
                max_output_stride=cap,
                **self.head_genes(),
            )
        return space


def _largest_dividing_stride(input_size):
    """The largest power of 2 dividing both sides of `input_size`."""
    height, width = input_size
    # The lowest set bit of a number is the largest power of 2 dividing it.
    return min(height & -height, width & -width)


@functools.lru_cache(maxsize=32)
def _derive(preset, ancestor, head_filter_choices, head_steps, input_size):
    from keras_evopose.models import presets
    from keras_evopose.models.evopose2d_presets import ANCESTOR_GENOTYPE
    from keras_evopose.models.genotype import Genotype

    if ancestor == "preset":
        genotype = Genotype.from_strings(
            presets.preset_arguments(preset, "backbone")["genotype"]
        )
    elif ancestor == "efficientnet-b0":
        genotype = Genotype.from_strings(ANCESTOR_GENOTYPE)
    else:
        genotype = Genotype.from_string(ancestor)
    searches_head = head_filter_choices is not None or head_steps is not None
    if searches_head and genotype.head_filters is None:
        head = presets.preset_arguments(preset, "head")
        genotype = genotype.replace(head_filters=head["head_filters"])
    resolved = ResolvedSearch(
        ancestor=genotype,
        head_filter_choices=head_filter_choices,
        head_steps=head_steps,
        input_size=input_size or _preset_input_size(preset),
        stride=genotype.output_stride,
    )
    if searches_head:
        # Bad head-gene bounds raise here; uncapped, so that an input the
        # ancestor's stride does not divide fails in `resolve` instead.
        from keras_evopose.search.search_space import SearchSpace

        SearchSpace(ancestor=genotype, **resolved.head_genes())
    return resolved


def _preset_input_size(preset):
    from keras_evopose.models import presets

    shape = presets.preset_arguments(preset, "backbone")["image_shape"]
    return tuple(shape[:2])
