"""What one training run does, as one value (saved as `train_config.json`)."""

import dataclasses
import math

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.utils.validation import check_positive_int

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
NETWORK_SOURCES = ("preset", "genotype", "from_search", "model")


def _size(name, value):
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = [int(side) for side in value.lower().split("x")]
        except ValueError:
            raise ValueError(
                f"`{name}` must be HEIGHTxWIDTH, e.g. 256x192. Received: "
                f"{name}={value!r}"
            ) from None
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(
            isinstance(side, int) and not isinstance(side, bool) and side > 0
            for side in value
        )
    ):
        raise ValueError(
            f"`{name}` must be (height, width) positive ints. Received: "
            f"{name}={value!r}"
        )
    return tuple(value)


@keras_evopose_export("keras_evopose.training.TrainConfig")
@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs: network, data, recipe, run folder.

    The network comes from exactly one of `preset`, `genotype`,
    `from_search` or `model`. `train_pose_model(config)` runs it;
    `to_dict()` is what the run folder's `train_config.json` holds and
    `from_dict` reads it back, so `--resume` trains the same run.

    Args:
        annotations: COCO keypoints JSON of the training set.
        images: its image folder (both not needed with `tfrecords`).
        output: the run folder (`train_config.json`, `history.csv`,
            `curves.png`, `last.keras`, `best.keras`, the checkpoint).
        preset: a preset name (`small`, `test`, ...).
        genotype: block strings, optionally ending with head steps
            (`"up_c128"`); stem, head and input size are `small`'s unless
            `input_size` says otherwise.
        from_search: a `keras-evopose search` output folder: its best trial
            by fitness (or `trial`), built as the search built it, starting
            from the weights of its scored epoch.
        trial: a trial id of `from_search` (e.g. `"0003"`).
        model: a `.keras` file to continue training or fine-tune.
        input_size: `(height, width)` of the network input; the network's
            own when `None`. Weights carry over (same shapes).
        compound_scale: `(height, width)`: scale the genotype to this input
            with EvoPose2D's compound-scaling rule (genotypes are taken as
            found at 256x192, the paper's search size, as M and L were made
            from S); every weight that still fits carries over
            (`keras_evopose.search.transfer_weights`).
        val_annotations, val_images: validation set; COCO AP every epoch,
            and `best.keras` is the best AP (else the lowest loss).
        epochs: total epochs of the run (warm-up included).
        warmup_epochs: linear warm-up epochs (capped at `epochs - 1`).
        batch_size: global batch size.
        steps_per_epoch: optimizer steps per epoch; default people / batch.
        base_learning_rate: the rate at batch 32 (scaled with the batch).
        weight_decay: L2 on conv kernels (0 turns it off).
        half_body_probability: half-body augmentation chance (default:
            the network's own sample options, 0 for a new network).
        augment: scale/rotation/flip/half-body augmentation.
        seed: seed of the initialisation and the data order.
        keypoint_layout: a JSON file of a keypoint category's fields
            (`keypoints`, `skeleton`, `flip_pairs`, `oks_sigmas`,
            `upper_body`) replacing the `annotations`' keypoint layout;
            the model keeps it.
        precision: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        tfrecords: glob of `write_tfrecords` shards (local or `gs://`,
            person-crop records included) to train on instead of
            `annotations` + `images`; the keypoint layout is the one
            written beside them. Without `steps_per_epoch`, the examples
            are counted once (every shard is read).
    """

    annotations: str = None
    images: str = None
    output: str = None
    preset: str = None
    genotype: tuple = None
    from_search: str = None
    trial: str = None
    model: str = None
    input_size: tuple = None
    compound_scale: tuple = None
    val_annotations: str = None
    val_images: str = None
    epochs: int = 200
    warmup_epochs: float = 5
    batch_size: int = 32
    steps_per_epoch: int = None
    base_learning_rate: float = 2.5e-4
    weight_decay: float = 1e-5
    half_body_probability: float = None
    augment: bool = True
    seed: int = 0
    precision: str = "float32"
    keypoint_layout: str = None
    tfrecords: str = None

    def __post_init__(self):
        if not self.output:
            raise ValueError("`output` (the run folder) is required")
        if self.tfrecords is None and not (self.annotations and self.images):
            raise ValueError(
                "give the training data: annotations and images, or tfrecords"
            )
        if self.tfrecords is not None and (self.annotations or self.images):
            raise ValueError("give annotations + images or tfrecords, not both")
        given = [name for name in NETWORK_SOURCES if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one network: preset, genotype, from_search "
                f"or model. Received: {given or 'none'}"
            )
        if self.trial is not None and not self.from_search:
            raise ValueError("`trial` needs `from_search`")
        if self.genotype is not None:
            genotype = self.genotype
            if isinstance(genotype, str):
                genotype = genotype.replace(",", " ").split()
            from keras_evopose.models.genotype import Genotype

            # Decoded and checked now, not after the data is loaded; the
            # config keeps the canonical strings (what its JSON holds).
            genotype = Genotype.coerce(genotype)
            object.__setattr__(self, "genotype", tuple(genotype.to_strings()))
        for name in ("input_size", "compound_scale"):
            object.__setattr__(self, name, _size(name, getattr(self, name)))
        if self.input_size and self.compound_scale:
            raise ValueError(
                "give input_size or compound_scale, not both (compound "
                "scaling sets the input size)"
            )
        if (self.val_annotations is None) != (self.val_images is None):
            raise ValueError("give both val_annotations and val_images")
        for name in ("epochs", "batch_size", "steps_per_epoch"):
            value = getattr(self, name)
            if value is None and name == "steps_per_epoch":
                continue
            check_positive_int(name, value, integral_floats=True)
        for name, low in (
            ("base_learning_rate", None),
            ("weight_decay", 0.0),
            ("warmup_epochs", 0.0),
            ("half_body_probability", 0.0),
        ):
            value = getattr(self, name)
            if value is None and name == "half_body_probability":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(
                    f"`{name}` must be a number. Received: {name}={value!r}"
                )
            if not math.isfinite(value) or (
                value <= 0 if low is None else value < low
            ):
                bound = "> 0" if low is None else f">= {low:g}"
                raise ValueError(
                    f"`{name}` must be finite and {bound}. Received: "
                    f"{name}={value!r}"
                )
        if (self.half_body_probability or 0) > 1:
            raise ValueError(
                "`half_body_probability` must be at most 1. Received: "
                f"{self.half_body_probability!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"`precision` must be one of {', '.join(PRECISIONS)}. "
                f"Received: precision={self.precision!r}"
            )

    @property
    def network_source(self):
        """Which of `preset`, `genotype`, `from_search`, `model` is given."""
        return next(name for name in NETWORK_SOURCES if getattr(self, name))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        values = dataclasses.asdict(self)
        for name in ("genotype", "input_size", "compound_scale"):
            if values[name] is not None:
                values[name] = list(values[name])
        return values

    @classmethod
    def load(cls, run):
        """The config saved in a run folder (`train_config.json`), with
        `output` set to `run` (the folder may have moved)."""
        import pathlib

        from keras_evopose.utils.state_files import read_json_state

        path = pathlib.Path(run) / "train_config.json"
        values = read_json_state(
            path, "restore it, or start a new run in another folder"
        )
        config = cls.from_dict(values, str(path))
        if pathlib.Path(config.output).resolve() != pathlib.Path(run).resolve():
            config = config.replace(output=str(run))
        return config

    @classmethod
    def from_dict(cls, values, source="settings"):
        """Reads `to_dict()`'s value; `ValueError` names `source` and the
        unknown or bad field."""
        if not isinstance(values, dict):
            raise ValueError(f"{source} must hold a JSON object")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown training setting(s) {unknown}; known: "
                f"{sorted(known)}"
            )
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: {error}") from None
