import json

import pytest

from keras_evopose.models.evopose2d_presets import ANCESTOR_GENOTYPE
from keras_evopose.models.evopose2d_presets import SMALL_GENOTYPE
from keras_evopose.search import genotype_from_string
from keras_evopose.search import genotype_to_string
from keras_evopose.search.search_space import SearchSpace


def test_default_space_is_the_reference_space():
    space = SearchSpace()
    assert space.ancestor == ANCESTOR_GENOTYPE
    assert space.kernel_sizes == (3, 5)
    assert space.repeats_range == (1, 4)
    assert space.stride_stages == (5, 6, 7)
    assert space.max_stride_two_stages == 4
    assert space.channel_choices(1) == (8, 16)
    assert space.channel_choices(7) == tuple(range(8, 321, 8))
    assert space.fixed_genes(1) == {
        "expand_ratio": 1,
        "squeeze_excite_ratio": 0.25,
    }
    # The paper's searched genotype lies in the space it was searched in.
    assert space.contains(SMALL_GENOTYPE)
    assert space.contains(ANCESTOR_GENOTYPE)


def test_space_derived_from_the_test_preset():
    space = SearchSpace.from_preset("test")
    assert space.num_stages == 4
    assert space.kernel_sizes == (3, 5)
    assert space.max_repeats == 2
    # Only three stride-2 stages and none after the third: no stride gene.
    assert space.stride_stages == ()
    assert space.channel_choices(4) == (8, 16, 24)
    assert space.contains(space.ancestor)


@pytest.mark.parametrize(
    "stage, block, message",
    [
        (1, "ir_r1_k7_s1_e1_c16_se0.25", "kernel_size=7"),
        (2, "ir_r5_k3_s2_e6_c24_se0.25", "num_repeats=5"),
        (2, "ir_r2_k3_s2_e6_c32_se0.25", "filters=32"),
        (2, "ir_r2_k3_s2_e6_c20_se0.25", "filters=20"),
        (3, "ir_r2_k5_s1_e6_c40_se0.25", "strides=1"),
        (2, "ir_r2_k3_s2_e4_c24_se0.25", "expand_ratio=4"),
    ],
)
def test_genes_outside_the_space_are_named(stage, block, message):
    genotype = list(ANCESTOR_GENOTYPE)
    genotype[stage - 1] = block
    space = SearchSpace()
    with pytest.raises(ValueError, match=message) as info:
        space.validate(genotype)
    assert f"Stage {stage}" in str(info.value)
    assert not space.contains(genotype)


def test_stride_budget():
    # Default budget: four stride-2 stages (output stride 32).
    genotype = list(ANCESTOR_GENOTYPE)
    genotype[6] = genotype[6].replace("_s1_", "_s2_")
    with pytest.raises(ValueError, match="output stride 64|5 stride-2"):
        SearchSpace().validate(genotype)
    # A budget of 16 keeps the searched genotype but rejects a flip.
    space = SearchSpace(ancestor=SMALL_GENOTYPE, max_output_stride=16)
    assert space.stride_stages == (5, 6, 7)
    assert space.max_stride_two_stages == 3
    genotype = list(SMALL_GENOTYPE)
    genotype[5] = genotype[5].replace("_s1_", "_s2_")
    with pytest.raises(ValueError, match="4 stride-2 stages; at most 3"):
        space.validate(genotype)
    with pytest.raises(ValueError, match="output stride 32, above"):
        SearchSpace(max_output_stride=16)


def test_wrong_number_of_stages():
    with pytest.raises(ValueError, match="6 stages; this search space has 7"):
        SearchSpace().validate(ANCESTOR_GENOTYPE[:6])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_output_stride": 24}, "max_output_stride=24"),
        ({"max_output_stride": 64}, "power of 2 from 2 to 32"),
        ({"max_output_stride": 1}, "max_output_stride=1"),
        ({"kernel_sizes": [3, 4]}, "kernel_sizes contains 4"),
        ({"kernel_sizes": [3]}, "stage 3 has kernel size 5"),
        ({"max_repeats": 3}, "max_repeats=3"),
        ({"channel_step": 0}, "channel_step=0"),
        ({"channel_step": 32}, "not a multiple of channel_step=32"),
        ({"stride_stages": [8]}, "stride_stages contains 8"),
        ({"stride_stages": 5}, "must be a list of ints"),
        ({"head_steps": (0, 3)}, "1 <= min <= max <= 5"),
        ({"head_steps": (1, 6)}, "1 <= min <= max <= 5"),
        ({"head_steps": (1, 2)}, "head has 3 upsampling steps, outside"),
        ({"head_steps": 3}, "head_steps must be a list of ints"),
        ({"head_filter_choices": []}, "non-empty list of ints"),
        ({"head_filter_choices": [64]}, "head step 1 has 128 channels"),
        (
            {"ancestor": SMALL_GENOTYPE, "head_steps": (1, 3)},
            "need the ancestor's head",
        ),
        (
            {"ancestor": SMALL_GENOTYPE + ["up_c128"]},
            "searches no head gene",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace(**kwargs)


def test_config_round_trip_through_json():
    space = SearchSpace.from_preset("test", stride_stages=[4])
    config = json.loads(json.dumps(space.get_config()))
    assert SearchSpace.from_config(config) == space


def test_head_genes_are_off_by_default():
    # The paper's space: its config has no head keys, so a search saved
    # before head genes existed resumes unchanged.
    for space in (SearchSpace(), SearchSpace.from_preset("test")):
        assert not space.searches_head
        assert "head_steps" not in space.get_config()
        assert all(not block.startswith("up_") for block in space.ancestor)
        with pytest.raises(ValueError, match="no head genes"):
            space.validate(space.ancestor + ["up_c16"])


def test_head_genes_from_a_preset():
    space = SearchSpace.from_preset(
        "test", head_filter_choices=[8, 16, 32], head_steps=(1, 3)
    )
    assert space.searches_head
    # The test preset's head: three steps of 16.
    assert space.ancestor[-3:] == ["up_c16"] * 3
    assert space.ancestor_head_filters == [16, 16, 16]
    assert space.contains(space.ancestor[:-3] + ["up_c32", "up_c8"])
    for head, message in [
        ([], "has no head steps"),
        (["up_c16"] * 4, "4 upsampling steps, outside"),
        (["up_c24"], "Head step 1 \\('up_c24'\\): filters=24"),
    ]:
        with pytest.raises(ValueError, match=message):
            space.validate(space.ancestor[:-3] + head)
    config = json.loads(json.dumps(space.get_config()))
    assert config["head_steps"] == [1, 3]
    assert SearchSpace.from_config(config) == space
    # Either argument alone: the other gene keeps the ancestor's head.
    widths_only = SearchSpace.from_preset("test", head_filter_choices=[8, 16])
    assert widths_only.head_steps == (3, 3)
    steps_only = SearchSpace(head_steps=(2, 4))
    assert steps_only.head_filter_choices == (128,)
    assert steps_only.ancestor[-3:] == ["up_c128"] * 3


def test_genotype_string_round_trip():
    text = genotype_to_string(SMALL_GENOTYPE)
    assert "," in text and " " not in text
    assert genotype_from_string(text) == SMALL_GENOTYPE
    with pytest.raises(ValueError, match="joined by commas"):
        genotype_from_string("")
    with pytest.raises(ValueError, match="unknown token"):
        genotype_from_string("ir_r1_k3_s1_e1_c16_se0.25,ir_x")


@pytest.mark.parametrize("module_name", ["search_space", "mutation", "pareto"])
def test_docstring_examples(module_name):
    import doctest
    import importlib

    import keras

    import keras_evopose

    module = importlib.import_module(f"keras_evopose.search.{module_name}")
    result = doctest.testmod(
        module,
        extraglobs={"keras": keras, "keras_evopose": keras_evopose},
        optionflags=doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted > 0 and result.failed == 0
