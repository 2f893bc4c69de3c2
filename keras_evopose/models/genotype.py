"""Genotypes: timm-style block strings, decoded into frozen `BlockSpec`s.

A genotype is a list of block strings, one per stage, for example
`"ir_r2_k5_s2_e6_c40_se0.25"`: an inverted-residual (MBConv) stage of 2
repeats, kernel 5, stride 2 on its first repeat, expansion 6, 40 output
channels and squeeze-excite ratio 0.25. Strings are what presets, configs and
keras-tuner hold (only str/int/float/bool survive its gRPC transport);
`BlockSpec` is what code reads.
"""

import dataclasses
import math
import re
import warnings

from keras_evopose.api_export import keras_evopose_export

# Token prefix -> (field, parser, inclusive range or allowed set, meaning).
# The order of this table is the canonical order of `to_string`.
_KERNEL_SIZES = frozenset((1, 3, 5, 7, 9))
_STRIDES = frozenset((1, 2))
_TOKENS = (
    ("r", "num_repeats", int, (1, 32), "number of repeats"),
    ("k", "kernel_size", int, _KERNEL_SIZES, "depthwise kernel size"),
    ("s", "strides", int, _STRIDES, "stride of the first repeat"),
    ("e", "expand_ratio", int, (1, 16), "expansion ratio"),
    ("c", "filters", int, (1, 4096), "output channels"),
    ("se", "squeeze_excite_ratio", float, (0.0, 1.0), "squeeze-excite ratio"),
)
_TOKEN_PATTERN = re.compile(r"^(se|[rksec])(.+)$")
BLOCK_TYPE = "ir"

# The stem always halves the input (3x3 stride-2 conv), as in EfficientNet.
STEM_STRIDES = 2
MAX_OUTPUT_STRIDE = 32


def _format_float(value):
    # The shortest text that reads back as exactly this float (`:g` kept
    # six digits: se0.33333334 became se0.333333, another network).
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _describe_allowed(allowed):
    # A frozenset lists discrete choices; a tuple is an inclusive range.
    if isinstance(allowed, frozenset):
        return "one of " + ", ".join(str(v) for v in sorted(allowed))
    low, high = allowed
    return f"between {low} and {high}"


def _check_value(name, value, allowed, meaning, context):
    if isinstance(allowed, frozenset):
        ok = value in allowed
    else:
        low, high = allowed
        ok = low <= value <= high
    if not ok:
        raise ValueError(
            f"{context}: {name}={value!r} is out of range; the {meaning} "
            f"must be {_describe_allowed(allowed)}."
        )


@keras_evopose_export("keras_evopose.models.BlockSpec")
@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One stage of an EvoPose2D backbone: a run of identical MBConv blocks.

    The canonical string form is
    `ir_r{num_repeats}_k{kernel_size}_s{strides}_e{expand_ratio}_c{filters}_se{squeeze_excite_ratio}`
    and `BlockSpec.from_string(spec.to_string()) == spec` always holds.

    Args:
        num_repeats: int, blocks in the stage (1-32).
        kernel_size: int, depthwise kernel size (1, 3, 5, 7 or 9).
        strides: int, stride of the stage's first block (1 or 2).
        expand_ratio: int, expansion of the inverted bottleneck (1-16).
        filters: int, output channels of every block of the stage (1-4096).
        squeeze_excite_ratio: float in [0, 1], squeeze-excite bottleneck as
            a fraction of the block's input channels; 0 disables it.

    Example:

    >>> spec = keras_evopose.models.BlockSpec.from_string(
    ...     "ir_r2_k5_s2_e6_c40_se0.25")
    >>> spec.kernel_size, spec.filters
    (5, 40)
    >>> spec.to_string()
    'ir_r2_k5_s2_e6_c40_se0.25'
    """

    num_repeats: int
    kernel_size: int
    strides: int
    expand_ratio: int
    filters: int
    squeeze_excite_ratio: float = 0.25

    def __post_init__(self):
        for _, name, parse, allowed, meaning in _TOKENS:
            value = getattr(self, name)
            if parse is int and (
                isinstance(value, bool) or not isinstance(value, int)
            ):
                raise ValueError(
                    f"BlockSpec: {name} must be an int. Received: "
                    f"{name}={value!r}"
                )
            if parse is float and not isinstance(value, (int, float)):
                raise ValueError(
                    f"BlockSpec: {name} must be a number. Received: "
                    f"{name}={value!r}"
                )
            _check_value(name, value, allowed, meaning, "BlockSpec")
        object.__setattr__(
            self, "squeeze_excite_ratio", float(self.squeeze_excite_ratio)
        )

    @classmethod
    def from_string(cls, block_string):
        """Decodes a block string.

        Args:
            block_string: str such as `"ir_r2_k5_s2_e6_c40_se0.25"`. Tokens
                after `ir` may come in any order; all six are required.

        Returns:
            A `BlockSpec`.

        Raises:
            ValueError: quoting the bad token, for anything malformed or out
                of range.
        """
        if not isinstance(block_string, str):
            raise ValueError(
                "A block string must be a str such as "
                f"'ir_r2_k5_s2_e6_c40_se0.25'. Received: {block_string!r}"
            )
        context = f"Invalid block string {block_string!r}"
        tokens = block_string.split("_")
        if tokens[0] != BLOCK_TYPE:
            raise ValueError(
                f"{context}: token {tokens[0]!r} is not a block type; the "
                f"only supported type is {BLOCK_TYPE!r} (inverted residual)."
            )
        by_prefix = {
            prefix: (name, parse, allowed, meaning)
            for prefix, name, parse, allowed, meaning in _TOKENS
        }
        values = {}
        for token in tokens[1:]:
            match = _TOKEN_PATTERN.match(token)
            if match is None or match.group(1) not in by_prefix:
                raise ValueError(
                    f"{context}: unknown token {token!r}. Expected tokens "
                    "r<repeats>, k<kernel>, s<stride>, e<expand>, "
                    "c<channels>, se<ratio>."
                )
            prefix, text = match.groups()
            name, parse, allowed, meaning = by_prefix[prefix]
            if name in values:
                raise ValueError(f"{context}: token {token!r} is repeated.")
            try:
                value = parse(text)
            except ValueError:
                raise ValueError(
                    f"{context}: token {token!r} does not hold a valid "
                    f"{parse.__name__} for the {meaning}."
                ) from None
            if parse is float and not math.isfinite(value):
                raise ValueError(
                    f"{context}: token {token!r} is not a finite number."
                )
            _check_value(
                name, value, allowed, meaning, f"{context}: token {token!r}"
            )
            values[name] = value
        missing = [prefix for prefix, name, *_ in _TOKENS if name not in values]
        if missing:
            raise ValueError(
                f"{context}: missing token(s) "
                + ", ".join(repr(m) for m in missing)
                + ". Canonical form: 'ir_r2_k5_s2_e6_c40_se0.25'."
            )
        return cls(**values)

    def to_string(self):
        """Returns the one canonical block string of this spec."""
        parts = [BLOCK_TYPE]
        for prefix, name, parse, _, _ in _TOKENS:
            value = getattr(self, name)
            text = _format_float(value) if parse is float else str(value)
            parts.append(f"{prefix}{text}")
        return "_".join(parts)

    def replace(self, **changes):
        """Returns a copy with `changes` applied (validated)."""
        return dataclasses.replace(self, **changes)


def output_stride(specs):
    """Total downsampling of a backbone: stem times every stage's stride."""
    stride = STEM_STRIDES
    for spec in specs:
        stride *= spec.strides
    return stride


def round_filters(filters, width_coefficient, divisor=8):
    """EfficientNet's width rounding: nearest multiple of `divisor`, >= 90%."""
    scaled = filters * width_coefficient
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(num_repeats, depth_coefficient):
    """EfficientNet's depth rounding: ceiling of the scaled repeats."""
    return int(math.ceil(depth_coefficient * num_repeats))


# Compound scaling constants of the paper (EfficientNet's alpha/beta and the
# resolution base gamma): phi follows from the input size, not a free knob.
_DEPTH_BASE = 1.2
_WIDTH_BASE = 1.1
_RESOLUTION_BASE = 1.15
_BASE_SIZE = 224.0


@keras_evopose_export("keras_evopose.models.compound_scale")
def compound_scale(
    genotype, image_size, stem_filters=32, head_filters=(128, 128, 128)
):
    """Scales a genotype found at 256x192 to another input size.

    EvoPose2D's rule: with `size = (height + width) / 2`,
    `phi = ln(size / 224) / ln(1.15)`, depth multiplier `1.2 ** phi` and width
    multiplier `1.1 ** phi`; channels are rounded to multiples of 8 and
    repeats rounded up. The stochastic-depth rate grows with the size.

    Args:
        genotype: a `Genotype` or list of block strings found at the base
            size. Head steps it ends with replace `head_filters`.
        image_size: `(height, width)` of the target input.
        stem_filters: stem channels at the base size.
        head_filters: transposed-conv channels of the head at the base size.

    Returns:
        A dict with `genotype`, `stem_filters`, `head_filters` and
        `stochastic_depth_rate`, ready for `EvoPose2DBackbone` and `EvoPose2D`.

    Raises:
        ValueError: for a non-positive image size or an invalid genotype.
    """
    if len(image_size) != 2 or any(
        not isinstance(v, int) or v <= 0 for v in image_size
    ):
        raise ValueError(
            "image_size must be (height, width) with positive ints. "
            f"Received: image_size={image_size!r}"
        )
    size = sum(image_size) / 2.0
    phi = math.log(size / _BASE_SIZE) / math.log(_RESOLUTION_BASE)
    depth = _DEPTH_BASE**phi
    width = _WIDTH_BASE**phi
    genotype = Genotype.coerce(genotype)
    if genotype.head_filters is not None:
        # A searched head scales like the paper's.
        head_filters = genotype.head_filters
    specs = genotype.blocks
    scaled = [
        spec.replace(
            num_repeats=round_repeats(spec.num_repeats, depth),
            filters=round_filters(spec.filters, width),
        )
        for spec in specs
    ]
    if size <= 240:
        stochastic_depth_rate = 0.2
    elif size <= 300:
        stochastic_depth_rate = 0.3
    elif size <= 456:
        stochastic_depth_rate = 0.4
    else:
        stochastic_depth_rate = 0.5
    return {
        "genotype": [spec.to_string() for spec in scaled],
        "stem_filters": round_filters(stem_filters, width),
        "head_filters": [round_filters(f, width) for f in head_filters],
        "stochastic_depth_rate": stochastic_depth_rate,
    }


# A head step (one stride-2 transposed conv + BN + activation of the
# `DeconvHead`) as a block string: `up_c128`. Head steps end a genotype
# only where a search treats the head as genes (`SearchSpace`'s
# `head_filter_choices` / `head_steps`); the paper's genotypes have none.
HEAD_STEP_TYPE = "up"
_HEAD_STEP_PATTERN = re.compile(r"^up_c(\d+)$")
_HEAD_STEP_FILTERS = (1, 4096)
# keras-tuner's gRPC transport carries only int/float/str/bool values, so a
# trial holds its genotype as the canonical strings joined by commas.
GENOTYPE_SEPARATOR = ","
_EXAMPLE = "['ir_r1_k3_s1_e1_c16_se0.25', ...]"


def head_step(width):
    """The head-step string of an upsampling step of `width` channels."""
    return f"{HEAD_STEP_TYPE}_c{width}"


def _is_head_step(block):
    return isinstance(block, str) and block.split("_", 1)[0] == HEAD_STEP_TYPE


def _check_head_width(width, context):
    if isinstance(width, bool) or not isinstance(width, int):
        raise ValueError(
            f"{context}: a head step's width must be an int. Received: "
            f"{width!r}"
        )
    _check_value(
        "filters",
        width,
        _HEAD_STEP_FILTERS,
        "head step's output channels",
        context,
    )


def _head_step_width(step):
    match = _HEAD_STEP_PATTERN.match(step) if isinstance(step, str) else None
    if match is None:
        raise ValueError(
            f"Invalid head step {step!r}: a head step is 'up_c' and its "
            "output channels, e.g. 'up_c128'."
        )
    width = int(match.group(1))
    _check_head_width(width, f"Invalid head step {step!r}")
    return width


def _split(entries):
    """`(backbone entries as given, head widths or None)` of a list."""
    if isinstance(entries, str) or not isinstance(entries, (list, tuple)):
        raise ValueError(
            f"A genotype must be a list of block strings such as {_EXAMPLE}. "
            f"Received: {entries!r}"
        )
    entries = list(entries)
    first_head = next(
        (i for i, block in enumerate(entries) if _is_head_step(block)),
        len(entries),
    )
    backbone, head = entries[:first_head], entries[first_head:]
    if not head:
        return backbone, None
    misplaced = [block for block in head if not _is_head_step(block)]
    if misplaced:
        raise ValueError(
            f"Backbone block {misplaced[0]!r} follows a head step; head "
            "steps ('up_c<channels>') must come after every backbone "
            f"block. Received: {entries!r}"
        )
    return backbone, [_head_step_width(step) for step in head]


@keras_evopose_export("keras_evopose.models.Genotype")
@dataclasses.dataclass(frozen=True)
class Genotype:
    """A network's genes: its backbone stages and, optionally, head steps.

    The one value a genotype travels as between the search space, the
    oracle, the models and the CLI; decoded once, validated on
    construction. Its text forms are a list of canonical block strings
    (`to_strings`, what presets and model configs hold) and those strings
    joined by commas (`to_string`, what a keras-tuner trial holds: its
    gRPC transport carries only int/float/str/bool). Head steps
    (`"up_c128"`, one per upsampling step of the heatmap head) end the
    strings only where a search treats the head as genes.

    Args:
        blocks: `BlockSpec`s or block strings, one per backbone stage.
            The output stride (the stem's 2 times every stage's stride)
            may be at most 32.
        head_filters: ints, the width of each upsampling step of the
            head, or `None` (the default): the model's own head applies.

    Example:

    >>> genotype = keras_evopose.models.Genotype.from_strings(
    ...     ["ir_r1_k3_s2_e1_c16_se0.25", "ir_r2_k5_s2_e6_c24_se0.25",
    ...      "up_c64"])
    >>> genotype.blocks[1].kernel_size, genotype.head_filters
    (5, (64,))
    >>> genotype.output_stride
    8
    >>> text = genotype.to_string()
    >>> keras_evopose.models.Genotype.from_string(text) == genotype
    True
    """

    blocks: tuple
    head_filters: tuple = None

    def __post_init__(self):
        blocks = self.blocks
        if isinstance(blocks, str) or not isinstance(blocks, (list, tuple)):
            raise ValueError(
                "Genotype: blocks must be a list of block strings or "
                f"BlockSpecs such as {_EXAMPLE}. Received: blocks={blocks!r}"
            )
        if not blocks:
            raise ValueError(
                "A genotype needs at least one stage. Received: []"
            )
        heads = [block for block in blocks if _is_head_step(block)]
        if heads:
            raise ValueError(
                f"Genotype: {heads[0]!r} is a head step, not a backbone "
                "block. Use Genotype.from_strings, which separates them, or "
                "pass the widths as head_filters."
            )
        blocks = tuple(
            block
            if isinstance(block, BlockSpec)
            else BlockSpec.from_string(block)
            for block in blocks
        )
        object.__setattr__(self, "blocks", blocks)
        stride = output_stride(blocks)
        if stride > MAX_OUTPUT_STRIDE:
            num_stride_two = sum(1 for spec in blocks if spec.strides == 2)
            raise ValueError(
                f"Genotype output stride {stride} exceeds the maximum "
                f"{MAX_OUTPUT_STRIDE} (the stem halves the input and "
                f"{num_stride_two} stages have s2), which would leave "
                f"features smaller than 1/{MAX_OUTPUT_STRIDE} of the input. "
                f"Use at most "
                f"{int(math.log2(MAX_OUTPUT_STRIDE // STEM_STRIDES))} "
                "stride-2 stages."
            )
        head_filters = self.head_filters
        if head_filters is not None:
            if isinstance(head_filters, (str, int)) or not isinstance(
                head_filters, (list, tuple)
            ):
                raise ValueError(
                    "Genotype: head_filters must be a list of ints, one per "
                    f"upsampling step. Received: head_filters={head_filters!r}"
                )
            if not head_filters:
                raise ValueError(
                    "Genotype: head_filters needs at least one upsampling "
                    "step, or None for the model's own head. Received: []"
                )
            for width in head_filters:
                _check_head_width(width, f"Head step of {width!r} channels")
            object.__setattr__(self, "head_filters", tuple(head_filters))

    @classmethod
    def from_strings(cls, strings):
        """Decodes a list of block strings (or `BlockSpec`s), optionally
        followed by head steps (`"up_c128"`)."""
        backbone, head_filters = _split(strings)
        return cls(tuple(backbone), head_filters)

    def to_strings(self):
        """The canonical block strings, head steps last; `from_strings`
        inverts it exactly."""
        return self.block_strings + self.head_steps

    @classmethod
    def from_string(cls, text):
        """Decodes `to_string`'s form: the strings joined by commas."""
        if not isinstance(text, str) or not text:
            raise ValueError(
                "A genotype string is the block strings joined by commas, "
                "e.g. 'ir_r1_k3_s1_e1_c16_se0.25,ir_r2_k3_s2_e6_c24_se0.25'. "
                f"Received: {text!r}"
            )
        return cls.from_strings(text.split(GENOTYPE_SEPARATOR))

    def to_string(self):
        """One canonical string: `to_strings` joined by commas."""
        return GENOTYPE_SEPARATOR.join(self.to_strings())

    @classmethod
    def coerce(cls, genotype):
        """`genotype` itself if it is a `Genotype`, else `from_strings`:
        what every public API that takes a genotype calls once."""
        if isinstance(genotype, cls):
            return genotype
        return cls.from_strings(genotype)

    @classmethod
    def from_hyperparameters(cls, hp, space, on_invalid="repair"):
        """The genotype of a trial's gene hyperparameters inside `space`
        (a `keras_evopose.search.SearchSpace`); see
        `SearchSpace.to_hyperparameters` for the genes and `on_invalid`."""
        # The genes are the search space's; the search package owns them.
        from keras_evopose.search import genotype_hyperparameters

        return genotype_hyperparameters.from_hyperparameters(
            hp, space, on_invalid
        )

    def to_hyperparameter_values(self, space):
        """The gene values of this genotype by hyperparameter name (the
        inverse of `from_hyperparameters`), e.g. to start a sampler at it."""
        from keras_evopose.search import genotype_hyperparameters

        return genotype_hyperparameters.to_hyperparameter_values(self, space)

    @property
    def block_strings(self):
        """The backbone's canonical block strings."""
        return [spec.to_string() for spec in self.blocks]

    @property
    def head_steps(self):
        """The head steps as strings (`["up_c128", ...]`), or `[]`."""
        return [
            f"{HEAD_STEP_TYPE}_c{width}" for width in self.head_filters or ()
        ]

    @property
    def output_stride(self):
        """Total downsampling of the backbone: stem times every stride."""
        return output_stride(self.blocks)

    def replace(self, **changes):
        """A copy with `changes` (`blocks`, `head_filters`) applied."""
        return dataclasses.replace(self, **changes)


# Deprecated free functions, kept for one release: each is one `Genotype`
# call now.
def warn_deprecated(name, replacement):
    warnings.warn(
        f"{name} is deprecated and will be removed in the next release; use "
        f"{replacement}.",
        DeprecationWarning,
        stacklevel=3,
    )


@keras_evopose_export("keras_evopose.models.decode_genotype")
def decode_genotype(genotype):
    """Deprecated: use `Genotype.from_strings(genotype).blocks`.

    Returns the `BlockSpec`s of a backbone genotype (no head steps)."""
    warn_deprecated(
        "keras_evopose.models.decode_genotype",
        "keras_evopose.models.Genotype.from_strings(genotype).blocks",
    )
    if isinstance(genotype, (list, tuple)) and any(
        _is_head_step(block) for block in genotype
    ):
        raise ValueError(
            "This genotype ends with head steps ('up_c<channels>'), which "
            "are not backbone blocks. Pass it to EvoPose2D.from_preset("
            "genotype=...), which builds both, or separate the parts with "
            "keras_evopose.models.Genotype.from_strings (split_genotype). "
            f"Received: {list(genotype)!r}"
        )
    return Genotype.from_strings(genotype).blocks


@keras_evopose_export("keras_evopose.models.encode_genotype")
def encode_genotype(specs):
    """Deprecated: use `Genotype(specs).block_strings`."""
    warn_deprecated(
        "keras_evopose.models.encode_genotype",
        "keras_evopose.models.Genotype(specs).block_strings",
    )
    if isinstance(specs, (list, tuple)) and any(
        _is_head_step(block) for block in specs
    ):
        raise ValueError(
            "encode_genotype encodes backbone blocks only; use "
            f"Genotype.from_strings(...).to_strings(). Received: {specs!r}"
        )
    return Genotype.from_strings(list(specs)).block_strings


@keras_evopose_export("keras_evopose.models.encode_head_steps")
def encode_head_steps(head_filters):
    """Deprecated: use `Genotype(blocks, head_filters).head_steps`.

    `[128, 64]` -> `["up_c128", "up_c64"]`."""
    warn_deprecated(
        "keras_evopose.models.encode_head_steps",
        "keras_evopose.models.Genotype(blocks, head_filters).head_steps",
    )
    if isinstance(head_filters, (str, int)) or not hasattr(
        head_filters, "__iter__"
    ):
        raise ValueError(
            "head_filters must be a list of ints, one per upsampling step. "
            f"Received: head_filters={head_filters!r}"
        )
    head_filters = list(head_filters)
    for width in head_filters:
        if isinstance(width, bool) or not isinstance(width, int):
            raise ValueError(
                "head_filters must be a list of ints, one per upsampling "
                f"step. Received: head_filters={head_filters!r}"
            )
        _check_head_width(width, f"Head step of {width} channels")
    return [head_step(width) for width in head_filters]


@keras_evopose_export("keras_evopose.models.decode_head_steps")
def decode_head_steps(head_steps):
    """Deprecated: use `Genotype.from_strings(strings).head_filters`.

    `["up_c128", "up_c64"]` -> `[128, 64]`."""
    warn_deprecated(
        "keras_evopose.models.decode_head_steps",
        "keras_evopose.models.Genotype.from_strings(strings).head_filters",
    )
    return [_head_step_width(step) for step in head_steps]


@keras_evopose_export("keras_evopose.models.split_genotype")
def split_genotype(genotype):
    """Deprecated: use `Genotype.from_strings(genotype)`, whose `blocks`
    and `head_filters` are the two parts.

    Returns `(backbone entries as given, head widths or None)`."""
    warn_deprecated(
        "keras_evopose.models.split_genotype",
        "keras_evopose.models.Genotype.from_strings(genotype)",
    )
    return _split(genotype)


@keras_evopose_export("keras_evopose.search.genotype_to_string")
def genotype_to_string(genotype):
    """Deprecated: use `Genotype.coerce(genotype).to_string()`."""
    warn_deprecated(
        "keras_evopose.search.genotype_to_string",
        "keras_evopose.models.Genotype.coerce(genotype).to_string()",
    )
    return Genotype.coerce(genotype).to_string()


@keras_evopose_export("keras_evopose.search.genotype_from_string")
def genotype_from_string(text):
    """Deprecated: use `Genotype.from_string(text).to_strings()`."""
    warn_deprecated(
        "keras_evopose.search.genotype_from_string",
        "keras_evopose.models.Genotype.from_string(text).to_strings()",
    )
    return Genotype.from_string(text).to_strings()
