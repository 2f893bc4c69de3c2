"""Mutation: a child differs from its parent in one gene of one stage."""

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.search.search_space import GENES

# How the gene to mutate is drawn (see `mutate`).
GENE_WEIGHTINGS = ("uniform", "reference")


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


def _change_chance(gene, values):
    """How likely the reference's draw of `gene` changes it.

    The reference draws the kernel uniformly from the allowed kernel sizes
    and the channels uniformly from the allowed multiples, the current
    value included (a draw of the current value is a no-op it resamples);
    repeats (+-1) and an allowed stride flip always change.
    """
    if gene in ("kernel_size", "filters"):
        return len(values) / (len(values) + 1)
    return 1.0


def gene_probabilities(genotype, space, gene_weighting="uniform"):
    """The chance of each `(stage, gene)` being the one `mutate` changes.

    Args:
        genotype: list of block strings inside `space`.
        space: a `keras_evopose.search.SearchSpace`.
        gene_weighting: `"uniform"` or `"reference"` (see `mutate`).

    Returns:
        A dict `(stage, gene) -> probability` over the genes that can
        change (the probabilities sum to 1).
    """
    _check_gene_weighting(gene_weighting)
    options = _options(space.validate_specs(genotype), space)
    weights = _weights(options, gene_weighting)
    total = sum(weights)
    return {
        (stage, gene): weight / total
        for (stage, gene, _), weight in zip(options, weights)
    }


def _weights(options, gene_weighting):
    if gene_weighting == "uniform":
        return [1.0] * len(options)
    return [_change_chance(gene, values) for _, gene, values in options]


def _check_gene_weighting(gene_weighting):
    if gene_weighting not in GENE_WEIGHTINGS:
        raise ValueError(
            f"gene_weighting={gene_weighting!r} is not allowed; use one of "
            f"{', '.join(repr(w) for w in GENE_WEIGHTINGS)}."
        )


@keras_evopose_export("keras_evopose.search.mutate")
def mutate(genotype, space, rng, gene_weighting="uniform"):
    """Returns a child of `genotype` with exactly one gene changed.

    One gene of one stage changes: the kernel size to another allowed
    size, the repeats by +-1 within the space's range, the channels to
    another allowed multiple of the channel step, or the stride between 1
    and 2 (only in the space's stride stages and within its stride
    budget). The new value is uniform among the gene's other allowed
    values. Which gene changes depends on `gene_weighting`:

    - `"uniform"` (default): every `(stage, gene)` that can change is
      equally likely.
    - `"reference"`: the reference code's draw. It picks a stage and a
      gene uniformly and a value uniformly *including the current one*,
      and resamples a no-op; so a gene is drawn in proportion to its
      chance of actually changing: kernel and channels `(n - 1) / n` for
      `n` allowed values, repeats and an allowed stride flip 1.

    The two differ: on EfficientNet-B0 `"uniform"` changes a kernel in
    7/22 = 31.8% of children and a repeat count in 31.8%, `"reference"` in
    20.3% and 40.6% (`gene_probabilities` gives every share). Pure: the
    result depends only on the arguments and the state of `rng`.

    Args:
        genotype: list of block strings inside `space`.
        space: a `keras_evopose.search.SearchSpace`.
        rng: a `random.Random`, e.g. `random.Random(seed)`.
        gene_weighting: `"uniform"` or `"reference"`, see above.

    Returns:
        `(child, description)`: the child's canonical block strings and a
        short text such as `"stage 3 kernel_size 5->3"`.

    Raises:
        ValueError: if `genotype` is outside `space`, no gene can change,
            or `gene_weighting` is unknown.

    Example:

    >>> import random
    >>> space = keras_evopose.search.SearchSpace.from_preset("test")
    >>> child, change = keras_evopose.search.mutate(
    ...     space.ancestor, space, random.Random(0))
    >>> space.contains(child), child != space.ancestor
    (True, True)
    """
    _check_gene_weighting(gene_weighting)
    specs = list(space.validate_specs(genotype))
    options = _options(specs, space)
    if not options:
        raise ValueError(
            "No gene of this genotype can change within the search space "
            f"(every gene has a single allowed value): {list(genotype)}. "
            "Widen the space (kernel_sizes, max_repeats, stride_stages)."
        )
    if gene_weighting == "uniform":
        stage, gene, values = options[rng.randrange(len(options))]
    else:
        stage, gene, values = rng.choices(
            options, weights=_weights(options, gene_weighting)
        )[0]
    value = values[rng.randrange(len(values))]
    old = getattr(specs[stage - 1], gene)
    specs[stage - 1] = specs[stage - 1].replace(**{gene: value})
    child = [spec.to_string() for spec in specs]
    return child, f"stage {stage} {gene} {old}->{value}"
