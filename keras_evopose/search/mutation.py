"""Mutation: a child differs from its parent in one gene of one stage."""

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.search.search_space import GENES


def _alternatives(spec, stage, gene, space, num_stride_two):
    """Values `gene` of `stage` may take in a child, per the reference."""
    if gene == "kernel_size":
        return [k for k in space.kernel_sizes if k != spec.kernel_size]
    if gene == "num_repeats":
        # Repeats move by one step only (the reference's rule).
        low, high = space.repeats_range
        return [
            r
            for r in (spec.num_repeats - 1, spec.num_repeats + 1)
            if low <= r <= high
        ]
    if gene == "filters":
        return [c for c in space.channel_choices(stage) if c != spec.filters]
    if stage not in space.stride_stages:
        return []
    if spec.strides == 2:
        return [1]
    return [2] if num_stride_two < space.max_stride_two_stages else []


def possible_mutations(genotype, space):
    """Every `(stage, gene, values)` a mutation of `genotype` can pick.

    Args:
        genotype: list of block strings inside `space`.
        space: a `keras_evopose.search.SearchSpace`.

    Returns:
        A list of `(stage, gene, values)` with 1-based `stage`, `gene` one of
        `kernel_size`, `num_repeats`, `filters`, `strides` and `values` the
        non-empty list of new values it may take.
    """
    return _options(space.validate_specs(genotype), space)


def _options(specs, space):
    num_stride_two = sum(1 for spec in specs if spec.strides == 2)
    options = []
    for stage, spec in enumerate(specs, 1):
        for gene in GENES:
            values = _alternatives(spec, stage, gene, space, num_stride_two)
            if values:
                options.append((stage, gene, values))
    return options


@keras_evopose_export("keras_evopose.search.mutate")
def mutate(genotype, space, rng):
    """Returns a child of `genotype` with exactly one gene changed.

    As in the reference code, a uniformly chosen gene of a uniformly chosen
    stage changes: the kernel size to another allowed size, the repeats by
    +-1 within the space's range, the channels to another allowed multiple
    of the channel step, or the stride between 1 and 2 (only in the space's
    stride stages and within its stride budget). Picks that cannot change
    anything (a fixed stride, a single kernel choice) are never drawn, which
    equals the reference's resampling. Pure: the result depends only on the
    arguments and the state of `rng`.

    Args:
        genotype: list of block strings inside `space`.
        space: a `keras_evopose.search.SearchSpace`.
        rng: a `random.Random`, e.g. `random.Random(seed)`.

    Returns:
        `(child, description)`: the child's canonical block strings and a
        short text such as `"stage 3 kernel_size 5->3"`.

    Raises:
        ValueError: if `genotype` is outside `space`, or no gene can change.

    Example:

    >>> import random
    >>> space = keras_evopose.search.SearchSpace.from_preset("test")
    >>> child, change = keras_evopose.search.mutate(
    ...     space.ancestor, space, random.Random(0))
    >>> space.contains(child), child != space.ancestor
    (True, True)
    """
    specs = list(space.validate_specs(genotype))
    options = _options(specs, space)
    if not options:
        raise ValueError(
            "No gene of this genotype can change within the search space "
            f"(every gene has a single allowed value): {list(genotype)}. "
            "Widen the space (kernel_sizes, max_repeats, stride_stages)."
        )
    stage, gene, values = options[rng.randrange(len(options))]
    value = values[rng.randrange(len(values))]
    old = getattr(specs[stage - 1], gene)
    specs[stage - 1] = specs[stage - 1].replace(**{gene: value})
    child = [spec.to_string() for spec in specs]
    return child, f"stage {stage} {gene} {old}->{value}"
