"""The EvoPose2D search space: which genes may change, and within what."""

import math

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.models import genotype as genotype_lib
from keras_evopose.models import presets as preset_lib
from keras_evopose.models.evopose2d_presets import ANCESTOR_GENOTYPE
from keras_evopose.models.genotype import Genotype

# The genes a mutation may change, in the reference's order
# ([kernel, repeats, channels / 8, stride]). Expansion ratio and
# squeeze-excite ratio are fixed per stage by the ancestor.
GENES = ("kernel_size", "num_repeats", "filters", "strides")

# The paper's head, the ancestor's head when head genes are on and the
# default ancestor is used.
DEFAULT_HEAD_FILTERS = (128, 128, 128)
# More steps than log2 of the largest output stride would make heatmaps
# larger than the input.
MAX_HEAD_STEPS = int(math.log2(genotype_lib.MAX_OUTPUT_STRIDE))


def _default_stride_stages(specs):
    # The reference lets only the stages after EfficientNet-B0's third
    # stride-2 stage flip their stride (stages 5-7), so the output stride
    # stays 16 or 32. The same rule applies to any ancestor.
    stride_two = [i for i, spec in enumerate(specs, 1) if spec.strides == 2]
    if len(stride_two) < 3:
        return ()
    return tuple(range(stride_two[2] + 1, len(specs) + 1))


@keras_evopose_export("keras_evopose.search.SearchSpace")
class SearchSpace:
    """Choices and bounds per gene that the EvoPose2D search mutates within.

    A genotype has one stage per ancestor stage, each with four genes: the
    depthwise kernel size, the number of repeats, the output channels and
    the stride of its first block. Expansion and squeeze-excite ratios stay
    those of the ancestor. Every argument except `ancestor` defaults to the
    reference code's rule applied to the ancestor, so a space can be derived
    from any ancestor (`SearchSpace(ancestor=...)`,
    `SearchSpace.from_preset("test")`):

    - kernel sizes: the distinct kernel sizes of the ancestor ({3, 5} for
      EfficientNet-B0);
    - repeats: 1 to the ancestor's largest number of repeats (4);
    - channels of stage i: multiples of `channel_step` from `channel_step`
      up to the ancestor's channels of stage i (never wider than it);
    - strides: only `stride_stages` may flip between 1 and 2 (by default the
      stages after the ancestor's third stride-2 stage: 5, 6 and 7), and at
      most `log2(max_output_stride / 2)` stages may have stride 2 (the stem
      halves the input), i.e. 4 for the default output stride 32.

    **Head genes (beyond the paper, off by default).** With
    `head_filter_choices` or `head_steps`, the heatmap head is searched
    too, so a search can trade heatmap resolution and head cost for
    speed: the width of each upsampling step (one of
    `head_filter_choices`) and the number of steps (within `head_steps`;
    each step doubles the heatmap size). A genotype then ends with one
    head step per upsampling step, `"up_c{channels}"`, after its backbone
    blocks (`keras_evopose.models.Genotype.head_filters`);
    `EvoPose2D.from_preset(genotype=...)` builds the head from them, and
    the heatmap size follows from the built model. The ancestor's head is
    the head steps `ancestor` ends with; `from_preset` adds the preset's
    head, and the default ancestor the paper's (three steps of 128). With
    neither argument, genotypes, mutations and `get_config` are the
    paper's (no head steps).

    Args:
        ancestor: list of block strings, the generation-0 genotype. Defaults
            to EfficientNet-B0's block table (`ANCESTOR_GENOTYPE`).
        kernel_sizes: list of allowed depthwise kernel sizes. Defaults to the
            ancestor's distinct kernel sizes.
        max_repeats: int, largest number of repeats of a stage. Defaults to
            the ancestor's largest.
        channel_step: int, channels move in multiples of it. Defaults to 8.
        stride_stages: list of 1-based stage indices whose stride may change.
            Defaults to the stages after the ancestor's third stride-2 stage.
        max_output_stride: int, a power of 2 from 2 to 32: the largest
            total downsampling of the backbone. Defaults to 32.
        head_filter_choices: list of ints, the widths an upsampling step
            of the head may take. Defaults to `None`: no head genes, or,
            with `head_steps`, the ancestor head's distinct widths.
        head_steps: `(min, max)`, inclusive range of the number of
            upsampling steps, from 1 to 5. Defaults to `None`: no head
            genes, or, with `head_filter_choices`, the ancestor's number.

    Example:

    >>> space = keras_evopose.search.SearchSpace()
    >>> space.kernel_sizes, space.max_repeats, space.stride_stages
    ((3, 5), 4, (5, 6, 7))
    >>> space.channel_choices(1)
    (8, 16)
    >>> space.contains(space.ancestor)
    True
    """

    def __init__(
        self,
        ancestor=None,
        kernel_sizes=None,
        max_repeats=None,
        channel_step=8,
        stride_stages=None,
        max_output_stride=32,
        head_filter_choices=None,
        head_steps=None,
    ):
        searches_head = head_filter_choices is not None or (
            head_steps is not None
        )
        if ancestor is None:
            ancestor = Genotype.from_strings(ANCESTOR_GENOTYPE)
            if searches_head:
                ancestor = ancestor.replace(head_filters=DEFAULT_HEAD_FILTERS)
        ancestor = Genotype.coerce(ancestor)
        specs = ancestor.blocks
        self._ancestor_specs = specs
        num_stages = len(specs)
        self._set_head_genes(
            ancestor.head_filters, head_filter_choices, head_steps
        )
        self.ancestor = ancestor.to_strings()

        if (
            isinstance(max_output_stride, bool)
            or not isinstance(max_output_stride, int)
            or max_output_stride < genotype_lib.STEM_STRIDES
            or max_output_stride > genotype_lib.MAX_OUTPUT_STRIDE
            or max_output_stride & (max_output_stride - 1)
        ):
            raise ValueError(
                f"max_output_stride={max_output_stride!r} is not allowed: it "
                "must be a power of 2 from 2 to "
                f"{genotype_lib.MAX_OUTPUT_STRIDE} (2, 4, 8, 16 or 32)."
            )
        self.max_output_stride = max_output_stride

        if kernel_sizes is None:
            kernel_sizes = sorted({spec.kernel_size for spec in specs})
        kernel_sizes = tuple(
            sorted(set(_as_int_list(kernel_sizes, "kernel_sizes")))
        )
        allowed_kernels = sorted(genotype_lib._KERNEL_SIZES)
        for kernel in kernel_sizes:
            if kernel not in allowed_kernels:
                raise ValueError(
                    f"kernel_sizes contains {kernel}, which is not allowed; "
                    f"each kernel size must be one of {allowed_kernels}."
                )
        if not kernel_sizes:
            raise ValueError("kernel_sizes must not be empty. Received: []")
        self.kernel_sizes = kernel_sizes

        largest_repeats = max(spec.num_repeats for spec in specs)
        if max_repeats is None:
            max_repeats = largest_repeats
        if (
            isinstance(max_repeats, bool)
            or not isinstance(max_repeats, int)
            or not largest_repeats <= max_repeats <= 32
        ):
            raise ValueError(
                f"max_repeats={max_repeats!r} is out of range: it must be an "
                f"int from the ancestor's largest number of repeats "
                f"({largest_repeats}) to 32."
            )
        self.max_repeats = max_repeats

        if (
            isinstance(channel_step, bool)
            or not isinstance(channel_step, int)
            or not 1 <= channel_step <= 4096
        ):
            raise ValueError(
                f"channel_step={channel_step!r} is out of range: it must be "
                "an int from 1 to 4096 (the reference uses 8)."
            )
        self.channel_step = channel_step

        if stride_stages is None:
            stride_stages = _default_stride_stages(specs)
        stride_stages = tuple(
            sorted(set(_as_int_list(stride_stages, "stride_stages")))
        )
        for stage in stride_stages:
            if not 1 <= stage <= num_stages:
                raise ValueError(
                    f"stride_stages contains {stage}, which is out of range: "
                    f"stages are numbered 1 to {num_stages} for this "
                    "ancestor."
                )
        self.stride_stages = stride_stages

        # Checked last: every field above is needed to state what is wrong.
        for index, spec in enumerate(specs, 1):
            if spec.kernel_size not in self.kernel_sizes:
                raise ValueError(
                    f"The ancestor's stage {index} has kernel size "
                    f"{spec.kernel_size}, outside kernel_sizes="
                    f"{list(self.kernel_sizes)}. Add it to kernel_sizes."
                )
            if spec.filters % channel_step:
                raise ValueError(
                    f"The ancestor's stage {index} has {spec.filters} "
                    f"channels, not a multiple of channel_step="
                    f"{channel_step}. Use a channel_step that divides every "
                    "stage's channels."
                )
        if self._num_stride_two(specs) > self.max_stride_two_stages:
            raise ValueError(
                f"The ancestor has output stride "
                f"{genotype_lib.output_stride(specs)}, above "
                f"max_output_stride={max_output_stride}. Raise "
                "max_output_stride or use another ancestor."
            )

    def _set_head_genes(self, ancestor_head, head_filter_choices, head_steps):
        if head_filter_choices is None and head_steps is None:
            if ancestor_head is not None:
                raise ValueError(
                    "The ancestor ends with head steps "
                    f"{[genotype_lib.head_step(w) for w in ancestor_head]}, "
                    "but "
                    "this space searches no head gene. Pass "
                    "head_filter_choices and/or head_steps, or drop the "
                    "head steps from the ancestor."
                )
            self.ancestor_head_filters = None
            self.head_filter_choices = None
            self.head_steps = None
            return
        if ancestor_head is None:
            raise ValueError(
                "Head genes (head_filter_choices, head_steps) need the "
                "ancestor's head: end `ancestor` with one head step per "
                "upsampling step, e.g. [..., 'up_c128', 'up_c128', "
                "'up_c128'], or use SearchSpace.from_preset(preset, ...), "
                "which adds the preset's head."
            )
        if head_filter_choices is None:
            head_filter_choices = sorted(set(ancestor_head))
        head_filter_choices = tuple(
            sorted(
                set(_as_int_list(head_filter_choices, "head_filter_choices"))
            )
        )
        if not head_filter_choices or not all(
            1 <= width <= 4096 for width in head_filter_choices
        ):
            raise ValueError(
                "head_filter_choices must be a non-empty list of ints from 1 "
                f"to 4096. Received: head_filter_choices="
                f"{list(head_filter_choices)}"
            )
        if head_steps is None:
            head_steps = (len(ancestor_head), len(ancestor_head))
        head_steps = tuple(_as_int_list(head_steps, "head_steps"))
        if len(head_steps) != 2 or not (
            1 <= head_steps[0] <= head_steps[1] <= MAX_HEAD_STEPS
        ):
            raise ValueError(
                f"head_steps={list(head_steps)} is out of range: it must be "
                "(min, max), the inclusive range of the number of "
                f"upsampling steps, with 1 <= min <= max <= {MAX_HEAD_STEPS}."
            )
        for step, width in enumerate(ancestor_head, 1):
            if width not in head_filter_choices:
                raise ValueError(
                    f"The ancestor's head step {step} has {width} channels, "
                    "outside head_filter_choices="
                    f"{list(head_filter_choices)}. Add it to "
                    "head_filter_choices."
                )
        if not head_steps[0] <= len(ancestor_head) <= head_steps[1]:
            raise ValueError(
                f"The ancestor's head has {len(ancestor_head)} upsampling "
                f"steps, outside head_steps={list(head_steps)}. Widen "
                "head_steps."
            )
        self.ancestor_head_filters = list(ancestor_head)
        self.head_filter_choices = head_filter_choices
        self.head_steps = head_steps

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Derives a space whose ancestor is a preset's genotype.

        With head genes (`head_filter_choices` or `head_steps`), the
        ancestor ends with the preset's head (its `head_filters`).

        Args:
            preset: a preset name, e.g. `"test"` or `"small"`.
            **kwargs: other `SearchSpace` arguments.
        """
        genotype = Genotype.from_strings(
            preset_lib.preset_arguments(preset, "backbone")["genotype"]
        )
        if (
            kwargs.get("head_filter_choices") is not None
            or kwargs.get("head_steps") is not None
        ):
            head = preset_lib.preset_arguments(preset, "head")
            genotype = genotype.replace(
                head_filters=head.get("head_filters", DEFAULT_HEAD_FILTERS)
            )
        return cls(ancestor=genotype, **kwargs)

    @property
    def searches_head(self):
        """Whether the head's widths and steps are genes of this space."""
        return self.head_steps is not None

    @property
    def num_stages(self):
        return len(self._ancestor_specs)

    @property
    def max_stride_two_stages(self):
        """Most stages with stride 2 that `max_output_stride` allows."""
        return int(
            math.log2(self.max_output_stride // genotype_lib.STEM_STRIDES)
        )

    @property
    def repeats_range(self):
        """`(1, max_repeats)`, inclusive."""
        return (1, self.max_repeats)

    def channel_choices(self, stage):
        """Allowed output channels of a 1-based `stage`, ascending."""
        self._check_stage(stage)
        largest = self._ancestor_specs[stage - 1].filters
        return tuple(range(self.channel_step, largest + 1, self.channel_step))

    def fixed_genes(self, stage):
        """`expand_ratio` and `squeeze_excite_ratio` of a stage (fixed)."""
        self._check_stage(stage)
        spec = self._ancestor_specs[stage - 1]
        return {
            "expand_ratio": spec.expand_ratio,
            "squeeze_excite_ratio": spec.squeeze_excite_ratio,
        }

    def validate(self, genotype):
        """Checks that `genotype` lies in this space.

        Args:
            genotype: a `Genotype`, or a list of block strings or
                `BlockSpec`s followed by head steps (`"up_c128"`) if the
                space has head genes.

        Returns:
            The genotype's canonical block strings.

        Raises:
            ValueError: naming the stage, the gene, its value and the
                allowed values, for the first gene outside the space.
        """
        specs, head_filters = self.validate_parts(genotype)
        return Genotype(specs, head_filters).to_strings()

    def validate_specs(self, genotype):
        """Like `validate`, but returns the backbone's `BlockSpec`s."""
        return self.validate_parts(genotype)[0]

    def validate_parts(self, genotype):
        """Like `validate`, but returns `(BlockSpecs, head_filters)`;
        `head_filters` is `None` when the space has no head genes."""
        genotype = Genotype.coerce(genotype)
        head_filters = genotype.head_filters
        if head_filters is not None:
            head_filters = list(head_filters)
        self._check_head(head_filters)
        specs = genotype.blocks
        if len(specs) != self.num_stages:
            raise ValueError(
                f"The genotype has {len(specs)} stages; this search space "
                f"has {self.num_stages} (one per ancestor stage)."
            )
        for stage, spec in enumerate(specs, 1):
            ancestor = self._ancestor_specs[stage - 1]
            checks = (
                ("kernel_size", spec.kernel_size, self.kernel_sizes),
                (
                    "num_repeats",
                    spec.num_repeats,
                    tuple(range(1, self.max_repeats + 1)),
                ),
                ("filters", spec.filters, self.channel_choices(stage)),
                (
                    "strides",
                    spec.strides,
                    (1, 2)
                    if stage in self.stride_stages
                    else (ancestor.strides,),
                ),
                ("expand_ratio", spec.expand_ratio, (ancestor.expand_ratio,)),
                (
                    "squeeze_excite_ratio",
                    spec.squeeze_excite_ratio,
                    (ancestor.squeeze_excite_ratio,),
                ),
            )
            for gene, value, allowed in checks:
                if value not in allowed:
                    raise ValueError(
                        f"Stage {stage} ({spec.to_string()!r}): {gene}="
                        f"{value} is outside the search space; allowed: "
                        f"{_describe(allowed)}."
                    )
        num_stride_two = self._num_stride_two(specs)
        if num_stride_two > self.max_stride_two_stages:
            raise ValueError(
                f"The genotype has {num_stride_two} stride-2 stages; at most "
                f"{self.max_stride_two_stages} are allowed "
                f"(max_output_stride={self.max_output_stride})."
            )
        return specs, head_filters

    def _check_head(self, head_filters):
        if not self.searches_head:
            if head_filters is not None:
                raise ValueError(
                    f"The genotype ends with head steps "
                    f"{[genotype_lib.head_step(w) for w in head_filters]}, but "
                    "this search space has no head genes (pass "
                    "head_filter_choices or head_steps to SearchSpace)."
                )
            return
        if head_filters is None:
            raise ValueError(
                "The genotype has no head steps; this search space has head "
                "genes, so it must end with one head step per upsampling "
                "step, e.g. 'up_c128'."
            )
        low, high = self.head_steps
        if not low <= len(head_filters) <= high:
            raise ValueError(
                f"The genotype's head has {len(head_filters)} upsampling "
                f"steps, outside the search space; allowed: {low} to {high} "
                "(head_steps)."
            )
        for step, width in enumerate(head_filters, 1):
            if width not in self.head_filter_choices:
                raise ValueError(
                    f"Head step {step} ('up_c{width}'): filters={width} is "
                    "outside the search space; allowed: "
                    f"{_describe(self.head_filter_choices)}."
                )

    def contains(self, genotype):
        """Whether `genotype` is valid and inside this space."""
        try:
            self.validate(genotype)
        except ValueError:
            return False
        return True

    def to_hyperparameters(self, hp=None):
        """Every gene as keras-tuner hyperparameters (one per gene).

        `stage{i}_kernel_size`, `stage{i}_filters` and, in the stride
        stages, `stage{i}_strides` are `Choice`s; `stage{i}_num_repeats` an
        `Int`; defaults are the ancestor's genes. With head genes, also
        `head_num_steps` (an `Int`) and `head_step{j}_filters` (`Choice`s)
        for every possible step. Decode a trial's values
        with `keras_evopose.models.Genotype.from_hyperparameters`, which
        also states how invalid stride combinations are handled.

        Args:
            hp: optional `keras_tuner.HyperParameters` to add them to.

        Returns:
            The `keras_tuner.HyperParameters`.
        """
        from keras_evopose.search import genotype_hyperparameters

        return genotype_hyperparameters.to_hyperparameters(self, hp)

    def get_config(self):
        config = {
            "ancestor": list(self.ancestor),
            "kernel_sizes": list(self.kernel_sizes),
            "max_repeats": self.max_repeats,
            "channel_step": self.channel_step,
            "stride_stages": list(self.stride_stages),
            "max_output_stride": self.max_output_stride,
        }
        if self.searches_head:
            # Only then: a space without head genes keeps the paper's
            # config, so searches saved before head genes still resume.
            config["head_filter_choices"] = list(self.head_filter_choices)
            config["head_steps"] = list(self.head_steps)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return (
            isinstance(other, SearchSpace)
            and self.get_config() == other.get_config()
        )

    def __repr__(self):
        return f"SearchSpace({self.get_config()!r})"

    def _check_stage(self, stage):
        if (
            isinstance(stage, bool)
            or not isinstance(stage, int)
            or not 1 <= stage <= self.num_stages
        ):
            raise ValueError(
                f"stage={stage!r} is out of range: stages are numbered 1 to "
                f"{self.num_stages}."
            )

    @staticmethod
    def _num_stride_two(specs):
        return sum(1 for spec in specs if spec.strides == 2)


def _as_int_list(values, name):
    if isinstance(values, (str, int)) or not hasattr(values, "__iter__"):
        raise ValueError(
            f"{name} must be a list of ints. Received: {name}={values!r}"
        )
    values = list(values)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"{name} must be a list of ints. Received: {name}={values!r}"
            )
    return values


def _describe(allowed):
    allowed = tuple(allowed)
    if len(allowed) > 4 and all(
        b - a == allowed[1] - allowed[0] for a, b in zip(allowed, allowed[1:])
    ):
        return (
            f"{allowed[0]} to {allowed[-1]} in steps of "
            f"{allowed[1] - allowed[0]}"
        )
    return ", ".join(str(value) for value in allowed)
