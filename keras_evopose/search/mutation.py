"""Mutation: a child differs from its parent in one gene of one stage."""

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.models import genotype as genotype_lib
from keras_evopose.search.search_space import GENES

# The `stage` of a head gene in `possible_mutations` and `mutate`.
HEAD = "head"

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


def _head_options(head_filters, space):
    """`(HEAD, gene, values)` of the head genes, steps then widths."""
    options = []
    low, high = space.head_steps
    # Like repeats, the number of steps moves by one: a new step is
    # appended (with the last step's width), the last step is dropped.
    steps = [
        n
        for n in (len(head_filters) - 1, len(head_filters) + 1)
        if low <= n <= high
    ]
    if steps:
        options.append((HEAD, "num_steps", steps))
    for step, width in enumerate(head_filters, 1):
        values = [c for c in space.head_filter_choices if c != width]
        if values:
            options.append((HEAD, f"step{step}_filters", values))
    return options


def _mutate_head(head_filters, gene, value):
    """`(new head_filters, old value)` after setting a head gene."""
    head_filters = list(head_filters)
    if gene == "num_steps":
        old = len(head_filters)
        if value > old:
            head_filters.append(head_filters[-1])
        else:
            head_filters.pop()
        return head_filters, old
    step = int(gene[len("step") : -len("_filters")])
    old = head_filters[step - 1]
    head_filters[step - 1] = value
    return head_filters, old


def possible_mutations(genotype, space):
    """Every `(stage, gene, values)` a mutation of `genotype` can pick.

    Args:
        genotype: list of block strings inside `space`.
        space: a `keras_evopose.search.SearchSpace`.

    Returns:
        A list of `(stage, gene, values)` with 1-based `stage`, `gene` one of
        `kernel_size`, `num_repeats`, `filters`, `strides` and `values` the
        non-empty list of new values it may take. With head genes, the
        head's follow with `stage` `"head"` and `gene` `num_steps` or
        `step{j}_filters` (the width of upsampling step `j`).
    """
    return _options(*space.validate_parts(genotype), space)


def _options(specs, head_filters, space):
    num_stride_two = sum(1 for spec in specs if spec.strides == 2)
    options = []
    for stage, spec in enumerate(specs, 1):
        for gene in GENES:
            values = _alternatives(spec, stage, gene, space, num_stride_two)
            if values:
                options.append((stage, gene, values))
    if head_filters is not None:
        # After the backbone's: without head genes the draws are the same.
        options += _head_options(head_filters, space)
    return options


def _change_chance(gene, values):
    """How likely the reference's draw of `gene` changes it.

    The reference draws the kernel uniformly from the allowed kernel sizes
    and the channels uniformly from the allowed multiples, the current
    value included (a draw of the current value is a no-op it resamples);
    repeats (+-1) and an allowed stride flip always change. Head genes
    (beyond the reference) follow the same rule: a step's width like the
    channels, the number of steps like the repeats.
    """
    if gene in ("kernel_size", "filters") or gene.endswith("_filters"):
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
    options = _options(*space.validate_parts(genotype), space)
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

    With head genes (`SearchSpace`'s `head_filter_choices` /
    `head_steps`), the head is a part like a stage: the width of one
    upsampling step changes to another allowed width, or the number of
    steps by +-1 (a new step repeats the last width; a removal drops the
    last step), e.g. `"head step2_filters 128->64"`.

    The two differ: on EfficientNet-B0 `"uniform"` changes a kernel in
    7/22 = 31.8% of children and a repeat count in 31.8%, `"reference"` in
    20.3% and 40.6% (`gene_probabilities` gives every share). Pure: the
    result depends only on the arguments and the state of `rng`.

    Args:
        genotype: list of block strings inside `space` (with its head
            steps if the space has head genes).
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
    specs, head_filters = space.validate_parts(genotype)
    specs = list(specs)
    options = _options(specs, head_filters, space)
    if not options:
        strings = genotype_lib.Genotype(tuple(specs), head_filters).to_strings()
        raise ValueError(
            "No gene of this genotype can change within the search space "
            f"(every gene has a single allowed value): {strings}. "
            "Widen the space (kernel_sizes, max_repeats, stride_stages)."
        )
    if gene_weighting == "uniform":
        stage, gene, values = options[rng.randrange(len(options))]
    else:
        stage, gene, values = rng.choices(
            options, weights=_weights(options, gene_weighting)
        )[0]
    value = values[rng.randrange(len(values))]
    if stage == HEAD:
        head_filters, old = _mutate_head(head_filters, gene, value)
        description = f"head {gene} {old}->{value}"
    else:
        old = getattr(specs[stage - 1], gene)
        specs[stage - 1] = specs[stage - 1].replace(**{gene: value})
        description = f"stage {stage} {gene} {old}->{value}"
    child = genotype_lib.Genotype(tuple(specs), head_filters)
    return child.to_strings(), description
