"""The network a `TrainConfig` names, built and initialised for training.

A network comes from a preset, a genotype, a search trial or a `.keras`
file (the donor); `input_size` or `compound_scale` then change its input
(and with compound scaling its depth and widths), and the donor's trained
weights carry over by `transfer_weights` wherever they still fit.
"""

import pathlib
import warnings

# Genotypes are found at the paper's search size (S, 256x192); compound
# scaling grows them from there (M: 384x288, L: 512x384).
GENOTYPE_BASE_PRESET = "small"


class NetworkError(ValueError):
    """The network source cannot be built (names the file or setting)."""


def _trial_record(folder, trial):
    from keras_evopose.search.results import load_search_results

    results = load_search_results(folder)
    if trial is None:
        if results.get("best") is None:
            raise NetworkError(
                f"{folder}: the search has no completed trial to train"
            )
        return results["best"]
    for record in results.get("trials", []):
        if record["trial_id"] == str(trial):
            return record
    known = ", ".join(r["trial_id"] for r in results.get("trials", []))
    raise NetworkError(
        f"{folder} has no completed trial {trial!r}; completed: {known}"
    )


def _search_donor(config, contract, regularizer):
    """The search trial's network with the weights of its scored epoch."""
    from keras_evopose.models import EvoPose2D
    from keras_evopose.models.genotype import Genotype
    from keras_evopose.search.coco_search import PROJECT
    from keras_evopose.search.coco_search import input_size_of
    from keras_evopose.search.coco_search import load_saved_config
    from keras_evopose.search.resumable_oracle import ResumeError

    folder = pathlib.Path(config.from_search)
    if not folder.is_dir():
        raise NetworkError(f"--from-search {folder}: no such folder")
    try:
        search = load_saved_config(folder)
    except ResumeError as error:
        raise NetworkError(f"--from-search {error}") from None
    record = _trial_record(folder, config.trial)
    try:
        model = EvoPose2D.from_preset(
            search.preset,
            genotype=Genotype.from_strings(record["genotype"]),
            image_shape=[*input_size_of(search), 3],
            kernel_regularizer=regularizer,
            **contract,
            batch_norm_momentum=search.batch_norm_momentum,
        )
    except ValueError as error:
        # E.g. a child whose stride mutation no longer divides the
        # search's input size (searches before EvoPose2D refused those).
        raise NetworkError(
            f"--from-search trial {record['trial_id']}: {error}"
        ) from None
    weights = folder / PROJECT / f"trial_{record['trial_id']}"
    weights = weights / "checkpoint.weights.h5"
    if not weights.is_file():
        raise NetworkError(
            f"{weights} is missing: trial {record['trial_id']} has no "
            "weights; pick another with --trial or re-run the search"
        )
    with warnings.catch_warnings():
        # The trial checkpoint also holds the trial's optimizer state.
        warnings.filterwarnings("ignore", message="Skipping variable loading")
        try:
            model.load_weights(str(weights))
        except ValueError as error:
            raise NetworkError(
                f"{weights} does not fit trial {record['trial_id']}'s "
                f"network with {contract['keypoint_layout'].num_keypoints} "
                "keypoints ("
                f"{' '.join(str(error).split())[:200]})"
            ) from None
    return model, True


def _file_donor(config):
    import keras

    from keras_evopose.models import EvoPose2D

    path = pathlib.Path(config.model)
    if not path.is_file():
        raise NetworkError(f"--model {path}: no such file")
    try:
        model = keras.saving.load_model(str(path), compile=False)
    except Exception as error:  # Any damage: name the file.
        raise NetworkError(
            f"--model {path} is not a readable .keras model "
            f"({type(error).__name__}: {' '.join(str(error).split())[:200]})"
        ) from None
    if not isinstance(model, EvoPose2D):
        raise NetworkError(
            f"--model {path} holds a {type(model).__name__}, not an "
            "EvoPose2D network"
        )
    return model, True


def _reshaped_config(model_config, config, contract):
    """The donor's config with the run's input size, scaling, keypoint
    layout and sample options (sizes left to the new network)."""
    from keras_evopose.models import compound_scale

    model_config = dict(model_config)
    backbone = dict(model_config["backbone"])
    backbone_config = dict(backbone["config"])
    layout = contract["keypoint_layout"]
    model_config["num_keypoints"] = layout.num_keypoints
    model_config["keypoint_layout"] = layout.get_config()
    options = dict(model_config.get("sample_options") or {})
    options.pop("input_size", None)
    options.pop("heatmap_size", None)
    options.update(contract["sample_options"])
    model_config["sample_options"] = options
    if config.input_size:
        backbone_config["image_shape"] = [*config.input_size, 3]
    if config.compound_scale:
        scaled = compound_scale(
            list(backbone_config["genotype"]),
            config.compound_scale,
            stem_filters=backbone_config["stem_filters"],
            head_filters=model_config["head_filters"],
        )
        backbone_config.update(
            genotype=scaled["genotype"],
            stem_filters=scaled["stem_filters"],
            stochastic_depth_rate=scaled["stochastic_depth_rate"],
            image_shape=[*config.compound_scale, 3],
        )
        model_config["head_filters"] = scaled["head_filters"]
    backbone["config"] = backbone_config
    model_config["backbone"] = backbone
    return model_config


def build_network(config, keypoint_layout):
    """The network of `config`, uncompiled, initialised as it says.

    Call it inside the distribution scope the model will train in. The
    model carries its data contract: `keypoint_layout`, and the sample
    options of its source (a `.keras` model's own) with the run's
    `half_body_probability` when given.

    Args:
        config: a `TrainConfig`.
        keypoint_layout: the `KeypointLayout` of the training data.

    Returns:
        `(model, transfer_report)`: the `EvoPose2D`, and the
        `TransferReport` when trained weights were carried into a reshaped
        network (`None` otherwise).

    Raises:
        NetworkError: naming the file, trial or setting that cannot be used.
    """
    from keras_evopose.models import EvoPose2D
    from keras_evopose.models import presets
    from keras_evopose.models.genotype import Genotype
    from keras_evopose.search import transfer_weights
    from keras_evopose.training.recipe import evopose2d_regularizer

    regularizer = evopose2d_regularizer(config.weight_decay)
    options = {}
    if config.half_body_probability is not None:
        options["half_body_probability"] = config.half_body_probability
    contract = {"keypoint_layout": keypoint_layout, "sample_options": options}
    source = config.network_source
    trained = False
    if source in ("preset", "genotype"):
        name = config.preset if source == "preset" else GENOTYPE_BASE_PRESET
        overrides = {}
        if source == "genotype":
            overrides["genotype"] = Genotype.from_strings(config.genotype)
        if name not in presets.list_presets():
            raise NetworkError(
                f"unknown preset {name!r}; known: "
                + ", ".join(presets.list_presets())
            )
        try:
            donor = EvoPose2D.from_preset(
                name, kernel_regularizer=regularizer, **contract, **overrides
            )
        except ValueError as error:
            raise NetworkError(f"--{source}: {error}") from None
    elif source == "from_search":
        donor, trained = _search_donor(config, contract, regularizer)
    else:
        donor, trained = _file_donor(config)
    donor_config = donor.get_config()
    target_config = _reshaped_config(donor_config, config, contract)
    if target_config == donor_config:
        return donor, None
    try:
        model = EvoPose2D.from_config(target_config)
    except ValueError as error:
        raise NetworkError(
            f"the network cannot take that input size: {error}"
        ) from None
    report = transfer_weights(donor, model) if trained else None
    return model, report
