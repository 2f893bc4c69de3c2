"""EvoPose2D genes as keras-tuner hyperparameters, and back.

Any keras-tuner search (`RandomSearch`, `BayesianOptimization`,
`Hyperband`) or another sampler (optuna) can then search the genotypes
of a `SearchSpace` with a normal `HyperModel`: one hyperparameter per
gene, decoded into a genotype the space accepts.
"""

import numbers

import keras_tuner

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.models import genotype as genotype_lib
from keras_evopose.models.genotype import warn_deprecated

ON_INVALID = ("repair", "raise")


def gene_name(stage, gene):
    """The hyperparameter name of `gene` of a 1-based `stage`."""
    return f"stage{stage}_{gene}"


def head_gene_name(gene, step=None):
    """The hyperparameter name of a head gene: `head_num_steps`, or
    `head_step{step}_filters` for the width of upsampling step `step`."""
    return f"head_{gene}" if step is None else f"head_step{step}_{gene}"


def _gene_definitions(space):
    """`(name, kind, values_or_range, default)` for every searched gene.

    Kernel sizes, channels and strides are `Choice`s (numeric, so ordered:
    Bayesian optimization sees their order); repeats an `Int` range. A
    stride is a gene only in the space's stride stages; elsewhere it stays
    the ancestor's, as in `SearchSpace.validate`. Head genes (if the space
    has them) come last: the number of steps an `Int`, the width of each
    possible step a `Choice`.
    """
    specs = space.validate_specs(space.ancestor)
    definitions = []
    for stage, spec in enumerate(specs, 1):
        definitions.append(
            (
                gene_name(stage, "kernel_size"),
                "choice",
                list(space.kernel_sizes),
                spec.kernel_size,
            )
        )
        definitions.append(
            (
                gene_name(stage, "num_repeats"),
                "int",
                space.repeats_range,
                spec.num_repeats,
            )
        )
        definitions.append(
            (
                gene_name(stage, "filters"),
                "choice",
                list(space.channel_choices(stage)),
                spec.filters,
            )
        )
        if stage in space.stride_stages:
            definitions.append(
                (gene_name(stage, "strides"), "choice", [1, 2], spec.strides)
            )
    if space.searches_head:
        head = space.ancestor_head_filters
        definitions.append(
            (
                head_gene_name("num_steps"),
                "int",
                space.head_steps,
                len(head),
            )
        )
        for step in range(1, space.head_steps[1] + 1):
            definitions.append(
                (
                    head_gene_name("filters", step),
                    "choice",
                    list(space.head_filter_choices),
                    head[min(step, len(head)) - 1],
                )
            )
    return definitions


def _define(hp, space):
    """Registers every gene on `hp` (if new) and returns the values."""
    values = {}
    for name, kind, allowed, default in _gene_definitions(space):
        if kind == "int":
            values[name] = hp.Int(name, allowed[0], allowed[1], default=default)
        else:
            values[name] = hp.Choice(name, allowed, default=default)
    return values


def to_hyperparameters(space, hp=None):
    """Every gene of `space` as keras-tuner hyperparameters.

    Use `SearchSpace.to_hyperparameters()`; this is its implementation.
    """
    hp = keras_tuner.HyperParameters() if hp is None else hp
    _define(hp, space)
    return hp


@keras_evopose_export("keras_evopose.search.genotype_from_hyperparameters")
def genotype_from_hyperparameters(hp, space, on_invalid="repair"):
    """Deprecated: use `Genotype.from_hyperparameters(hp, space)`; returns
    its `to_strings()`."""
    warn_deprecated(
        "keras_evopose.search.genotype_from_hyperparameters",
        "keras_evopose.models.Genotype.from_hyperparameters(hp, space)",
    )
    return from_hyperparameters(hp, space, on_invalid).to_strings()


@keras_evopose_export("keras_evopose.search.genotype_to_hyperparameter_values")
def genotype_to_hyperparameter_values(genotype, space):
    """Deprecated: use `Genotype.coerce(genotype).to_hyperparameter_values(
    space)`."""
    warn_deprecated(
        "keras_evopose.search.genotype_to_hyperparameter_values",
        "keras_evopose.models.Genotype.to_hyperparameter_values(space)",
    )
    return to_hyperparameter_values(genotype, space)


def from_hyperparameters(hp, space, on_invalid="repair"):
    """Decodes the gene hyperparameters of a trial into a genotype.

    The implementation of `keras_evopose.models.Genotype.from_hyperparameters`.

    Call it in a `HyperModel.build(hp)`: like `hp.Choice`, it registers
    the genes on `hp` the first time (`stage{i}_kernel_size`,
    `stage{i}_num_repeats`, `stage{i}_filters` and, in the space's stride
    stages, `stage{i}_strides`; defaults are the ancestor's genes) and
    returns the genotype of the trial's values. Expansion and
    squeeze-excite ratios stay the ancestor's. With head genes, also
    `head_num_steps` and `head_step{j}_filters` for every possible step;
    the genotype ends with the first `head_num_steps` of them as head
    steps (the widths of later steps are unused).

    Every gene is sampled within its own allowed values, so the only
    invalid combination is one with more stride-2 stages than
    `space.max_output_stride` allows. `on_invalid="repair"` (the default)
    sets the stride of the *last* excess stride-2 stages back to 1 (the
    earlier downsampling is kept), so every sample is a trainable genotype
    of the space; two samples may then decode to the same genotype.
    `on_invalid="raise"` rejects it instead with `SearchSpace.validate`'s
    `ValueError`, as the space does for any genotype outside it (the
    `EvolutionOracle` never proposes one: its mutations respect the stride
    budget).

    Args:
        hp: a `keras_tuner.HyperParameters`, or a dict of values by gene
            name (e.g. from another sampler such as optuna).
        space: the `keras_evopose.search.SearchSpace` searched.
        on_invalid: `"repair"` or `"raise"`.

    Returns:
        A `keras_evopose.models.Genotype` inside `space`.

    Example:

    ```python
    space = keras_evopose.search.SearchSpace.from_preset("test")

    def build(hp):
        genotype = keras_evopose.models.Genotype.from_hyperparameters(
            hp, space
        )
        model = keras_evopose.models.EvoPose2D.from_preset(
            "test", genotype=genotype
        )
        model.compile(optimizer="adam", loss=keras_evopose.losses.HeatmapMSE())
        return model

    tuner = keras_tuner.RandomSearch(
        build, objective="val_loss", max_trials=20, directory="runs"
    )
    ```
    """
    if on_invalid not in ON_INVALID:
        raise ValueError(
            f"on_invalid={on_invalid!r} is not allowed; use 'repair' or "
            "'raise'."
        )
    if isinstance(hp, keras_tuner.HyperParameters):
        values = _define(hp, space)
    elif isinstance(hp, dict):
        values = _values_from_mapping(hp, space)
    else:
        raise ValueError(
            "hp must be a keras_tuner.HyperParameters or a dict of gene "
            f"values by name. Received: {hp!r}"
        )
    specs = space.validate_specs(space.ancestor)
    genes = {}
    for stage, spec in enumerate(specs, 1):
        genes[stage] = {
            "kernel_size": values[gene_name(stage, "kernel_size")],
            "num_repeats": values[gene_name(stage, "num_repeats")],
            "filters": values[gene_name(stage, "filters")],
            "strides": values.get(gene_name(stage, "strides"), spec.strides),
        }
    if on_invalid == "repair":
        num_stride_two = sum(1 for g in genes.values() if g["strides"] == 2)
        for stage in reversed(space.stride_stages):
            if num_stride_two <= space.max_stride_two_stages:
                break
            if genes[stage]["strides"] == 2:
                genes[stage]["strides"] = 1
                num_stride_two -= 1
    child = [
        spec.replace(**{k: int(v) for k, v in genes[stage].items()})
        for stage, spec in enumerate(specs, 1)
    ]
    head_filters = None
    if space.searches_head:
        num_steps = int(values[head_gene_name("num_steps")])
        head_filters = [
            int(values[head_gene_name("filters", step)])
            for step in range(1, num_steps + 1)
        ]
    child = genotype_lib.Genotype(tuple(child), head_filters)
    space.validate(child)
    return child


def to_hyperparameter_values(genotype, space):
    """The gene values of a genotype, by hyperparameter name.

    The implementation of
    `keras_evopose.models.Genotype.to_hyperparameter_values`, the inverse
    of `from_hyperparameters`: e.g. to start a
    sampler at the ancestor (`optuna.Study.enqueue_trial`) or to compare
    trials of different searches gene by gene.

    Args:
        genotype: a `Genotype` or list of block strings inside `space`.
        space: a `keras_evopose.search.SearchSpace`.

    Returns:
        dict of gene name to int value. With head genes, the widths of
        the steps beyond the genotype's number of steps (unused) repeat
        its last step's.

    Raises:
        ValueError: `genotype` is outside `space`.
    """
    specs, head_filters = space.validate_parts(genotype)
    values = {}
    for stage, spec in enumerate(specs, 1):
        values[gene_name(stage, "kernel_size")] = spec.kernel_size
        values[gene_name(stage, "num_repeats")] = spec.num_repeats
        values[gene_name(stage, "filters")] = spec.filters
        if stage in space.stride_stages:
            values[gene_name(stage, "strides")] = spec.strides
    if head_filters is not None:
        values[head_gene_name("num_steps")] = len(head_filters)
        for step in range(1, space.head_steps[1] + 1):
            values[head_gene_name("filters", step)] = head_filters[
                min(step, len(head_filters)) - 1
            ]
    return values


def _values_from_mapping(mapping, space):
    values = {}
    for name, kind, allowed, _ in _gene_definitions(space):
        if name not in mapping:
            raise ValueError(
                f"The gene values lack {name!r}; expected one value per "
                f"gene: {[d[0] for d in _gene_definitions(space)]}."
            )
        value = mapping[name]
        ok = (
            allowed[0] <= value <= allowed[1]
            if kind == "int"
            else value in allowed
        )
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or not ok
        ):
            expected = (
                f"an int from {allowed[0]} to {allowed[1]}"
                if kind == "int"
                else f"one of {allowed}"
            )
            raise ValueError(
                f"Gene {name}={value!r} is outside the search space; "
                f"expected {expected}."
            )
        values[name] = int(value)
    return values
