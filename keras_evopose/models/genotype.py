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


@keras_evopose_export("keras_evopose.models.decode_genotype")
def decode_genotype(genotype):
    """Decodes and validates a genotype (a list of block strings).

    Args:
        genotype: list of block strings (or `BlockSpec`s), one per stage.

    Returns:
        A tuple of `BlockSpec`.

    Raises:
        ValueError: if the list is empty, a block string is malformed, or the
            strides reduce the input by more than `MAX_OUTPUT_STRIDE` (32).
    """
    if isinstance(genotype, str) or not isinstance(genotype, (list, tuple)):
        raise ValueError(
            "A genotype must be a list of block strings such as "
            "['ir_r1_k3_s1_e1_c16_se0.25', ...]. Received: "
            f"{genotype!r}"
        )
    if not genotype:
        raise ValueError("A genotype needs at least one stage. Received: []")
    if any(_is_head_step(block) for block in genotype):
        raise ValueError(
            "This genotype ends with head steps ('up_c<channels>'), which "
            "are not backbone blocks. Pass it to EvoPose2D.from_preset("
            "genotype=...), which builds both, or separate the parts with "
            "keras_evopose.models.split_genotype. Received: "
            f"{list(genotype)!r}"
        )
    specs = tuple(
        spec if isinstance(spec, BlockSpec) else BlockSpec.from_string(spec)
        for spec in genotype
    )
    stride = output_stride(specs)
    if stride > MAX_OUTPUT_STRIDE:
        num_stride_two = sum(1 for spec in specs if spec.strides == 2)
        raise ValueError(
            f"Genotype output stride {stride} exceeds the maximum "
            f"{MAX_OUTPUT_STRIDE} (the stem halves the input and "
            f"{num_stride_two} stages have s2), which would leave features "
            f"smaller than 1/{MAX_OUTPUT_STRIDE} of the input. Use at most "
            f"{int(math.log2(MAX_OUTPUT_STRIDE // STEM_STRIDES))} stride-2 "
            "stages."
        )
    return specs


@keras_evopose_export("keras_evopose.models.encode_genotype")
def encode_genotype(specs):
    """Encodes `BlockSpec`s (or block strings) into canonical strings."""
    return [spec.to_string() for spec in decode_genotype(list(specs))]


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
        genotype: list of block strings found at the base size.
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
    specs = decode_genotype(genotype)
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


def _is_head_step(block):
    return isinstance(block, str) and block.split("_", 1)[0] == HEAD_STEP_TYPE


@keras_evopose_export("keras_evopose.models.encode_head_steps")
def encode_head_steps(head_filters):
    """Encodes head widths as head-step strings: `[128, 64]` ->
    `["up_c128", "up_c64"]`, one per upsampling step of the head."""
    if isinstance(head_filters, (str, int)) or not hasattr(
        head_filters, "__iter__"
    ):
        raise ValueError(
            "head_filters must be a list of ints, one per upsampling step. "
            f"Received: head_filters={head_filters!r}"
        )
    strings = []
    for width in head_filters:
        if isinstance(width, bool) or not isinstance(width, int):
            raise ValueError(
                "head_filters must be a list of ints, one per upsampling "
                f"step. Received: head_filters={list(head_filters)!r}"
            )
        _check_value(
            "filters",
            width,
            _HEAD_STEP_FILTERS,
            "head step's output channels",
            f"Head step of {width} channels",
        )
        strings.append(f"{HEAD_STEP_TYPE}_c{width}")
    return strings


@keras_evopose_export("keras_evopose.models.decode_head_steps")
def decode_head_steps(head_steps):
    """Decodes head-step strings (`["up_c128", "up_c64"]`) into their
    widths (`[128, 64]`); the inverse of `encode_head_steps`."""
    head_filters = []
    for step in head_steps:
        match = (
            _HEAD_STEP_PATTERN.match(step) if isinstance(step, str) else None
        )
        if match is None:
            raise ValueError(
                f"Invalid head step {step!r}: a head step is 'up_c' and its "
                "output channels, e.g. 'up_c128'."
            )
        width = int(match.group(1))
        _check_value(
            "filters",
            width,
            _HEAD_STEP_FILTERS,
            "head step's output channels",
            f"Invalid head step {step!r}",
        )
        head_filters.append(width)
    return head_filters


@keras_evopose_export("keras_evopose.models.split_genotype")
def split_genotype(genotype):
    """Separates a genotype's backbone blocks from its head steps.

    A searched genotype may end with head steps (`"up_c128"`, one per
    upsampling step of the head, see `SearchSpace`); the backbone blocks
    come first.

    Args:
        genotype: list of block strings (or `BlockSpec`s), optionally
            followed by head-step strings.

    Returns:
        `(backbone, head_filters)`: the backbone entries as given, and the
        head's widths as a list of ints, or `None` when the genotype has
        no head steps (the model's own head then applies).

    Raises:
        ValueError: if a backbone block follows a head step or a head step
            is malformed.
    """
    if isinstance(genotype, str) or not isinstance(genotype, (list, tuple)):
        raise ValueError(
            "A genotype must be a list of block strings such as "
            "['ir_r1_k3_s1_e1_c16_se0.25', ...]. Received: "
            f"{genotype!r}"
        )
    genotype = list(genotype)
    first_head = next(
        (i for i, block in enumerate(genotype) if _is_head_step(block)),
        len(genotype),
    )
    backbone, head = genotype[:first_head], genotype[first_head:]
    if not head:
        return backbone, None
    misplaced = [block for block in head if not _is_head_step(block)]
    if misplaced:
        raise ValueError(
            f"Backbone block {misplaced[0]!r} follows a head step; head "
            "steps ('up_c<channels>') must come after every backbone "
            f"block. Received: {genotype!r}"
        )
    return backbone, decode_head_steps(head)


def _canonical(genotype):
    """Canonical strings of a genotype, head steps included."""
    backbone, head_filters = split_genotype(genotype)
    strings = encode_genotype(backbone)
    if head_filters is not None:
        strings += encode_head_steps(head_filters)
    return strings


GENOTYPE_SEPARATOR = ","


@keras_evopose_export("keras_evopose.search.genotype_to_string")
def genotype_to_string(genotype):
    """Encodes a genotype as one canonical string (a keras-tuner value).

    keras-tuner's gRPC transport carries only int/float/str/bool values, so
    a trial holds its genotype as the canonical block strings joined by
    commas. `genotype_from_string` inverts it exactly.

    Args:
        genotype: list of block strings or `BlockSpec`s, optionally
            followed by head steps (`"up_c128"`).

    Returns:
        str, e.g. `"ir_r1_k3_s1_e1_c16_se0.25,ir_r2_k3_s2_e6_c24_se0.25,..."`.
    """
    return GENOTYPE_SEPARATOR.join(_canonical(genotype))


@keras_evopose_export("keras_evopose.search.genotype_from_string")
def genotype_from_string(text):
    """Decodes `genotype_to_string`'s output into canonical block strings."""
    if not isinstance(text, str) or not text:
        raise ValueError(
            "A genotype string is the block strings joined by commas, e.g. "
            "'ir_r1_k3_s1_e1_c16_se0.25,ir_r2_k3_s2_e6_c24_se0.25'. "
            f"Received: {text!r}"
        )
    return _canonical(text.split(GENOTYPE_SEPARATOR))
