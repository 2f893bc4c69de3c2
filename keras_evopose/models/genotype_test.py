import dataclasses
import random

import pytest

from keras_evopose.models import evopose2d_presets
from keras_evopose.models.genotype import BlockSpec
from keras_evopose.models.genotype import compound_scale
from keras_evopose.models.genotype import decode_genotype
from keras_evopose.models.genotype import encode_genotype
from keras_evopose.models.genotype import output_stride


def random_spec(rng):
    return BlockSpec(
        num_repeats=rng.randint(1, 32),
        kernel_size=rng.choice([1, 3, 5, 7, 9]),
        strides=rng.choice([1, 2]),
        expand_ratio=rng.randint(1, 16),
        filters=rng.randint(1, 4096),
        squeeze_excite_ratio=rng.choice([0.0, 0.0625, 0.125, 0.25, 0.5, 1.0])
        if rng.random() < 0.5
        else round(rng.random(), rng.randint(1, 6)),
    )


def test_preset_genotypes_round_trip_exactly():
    for name, preset in evopose2d_presets.backbone_presets.items():
        genotype = preset["backbone"]["genotype"]
        assert encode_genotype(genotype) == genotype, name
        for block in genotype:
            assert BlockSpec.from_string(block).to_string() == block


def test_random_valid_genotypes_round_trip():
    rng = random.Random(0)
    for _ in range(500):
        spec = random_spec(rng)
        text = spec.to_string()
        assert BlockSpec.from_string(text) == spec
        assert BlockSpec.from_string(text).to_string() == text


def test_tokens_in_any_order_decode_to_the_canonical_form():
    spec = BlockSpec.from_string("ir_c40_se0.25_k5_s2_r2_e6")
    assert spec.to_string() == "ir_r2_k5_s2_e6_c40_se0.25"


@pytest.mark.parametrize(
    "block_string, quoted",
    [
        ("xx_r2_k5_s2_e6_c40_se0.25", "'xx'"),
        ("ir_r2_k5_s2_e6_c40", "'se'"),
        ("ir_r2_k4_s2_e6_c40_se0.25", "'k4'"),
        ("ir_r0_k5_s2_e6_c40_se0.25", "'r0'"),
        ("ir_r2_k5_s3_e6_c40_se0.25", "'s3'"),
        ("ir_r2_k5_s2_e6_c0_se0.25", "'c0'"),
        ("ir_r2_k5_s2_e6_c-8_se0.25", "'c-8'"),
        ("ir_r2_k5_s2_e6_c40_se1.5", "'se1.5'"),
        ("ir_r2_k5_s2_e6_c40_se0.25_x9", "'x9'"),
        ("ir_r2_k5_s2_e6_c40_se0.25_r3", "'r3'"),
        ("ir_rtwo_k5_s2_e6_c40_se0.25", "'rtwo'"),
        ("ir_r2_k5_s2_e6_c40_senan", "'senan'"),
    ],
)
def test_malformed_block_strings_quote_the_bad_token(block_string, quoted):
    with pytest.raises(ValueError) as error:
        BlockSpec.from_string(block_string)
    assert quoted in str(error.value)
    assert block_string in str(error.value)


def test_out_of_range_message_names_the_allowed_range():
    with pytest.raises(ValueError, match="between 1 and 4096"):
        BlockSpec.from_string("ir_r2_k5_s2_e6_c0_se0.25")
    with pytest.raises(ValueError, match="one of 1, 3, 5, 7, 9"):
        BlockSpec.from_string("ir_r2_k4_s2_e6_c40_se0.25")


def test_non_positive_width_is_rejected_by_the_dataclass_too():
    with pytest.raises(ValueError, match=r"filters=-8.*between 1 and 4096"):
        BlockSpec(1, 3, 1, 1, -8)


def test_stride_budget_rejects_features_smaller_than_one_32nd():
    five_stride_two = ["ir_r1_k3_s2_e1_c8_se0.25"] * 5
    with pytest.raises(ValueError, match="output stride 64 exceeds.*32"):
        decode_genotype(five_stride_two)
    assert output_stride(decode_genotype(five_stride_two[:4])) == 32


def test_genotype_must_be_a_non_empty_list():
    with pytest.raises(ValueError, match="list of block strings"):
        decode_genotype("ir_r1_k3_s1_e1_c16_se0.25")
    with pytest.raises(ValueError, match="at least one stage"):
        decode_genotype([])


def test_compound_scaling_reproduces_medium_and_large_presets():
    presets = evopose2d_presets.backbone_presets
    for name, size in (
        ("small", (256, 192)),
        ("medium", (384, 288)),
        ("large", (512, 384)),
    ):
        scaled = compound_scale(evopose2d_presets.SMALL_GENOTYPE, size)
        assert scaled["genotype"] == presets[name]["backbone"]["genotype"]
        assert (
            scaled["stem_filters"] == presets[name]["backbone"]["stem_filters"]
        )
        assert scaled["head_filters"] == presets[name]["head"]["head_filters"]
        assert (
            scaled["stochastic_depth_rate"]
            == presets[name]["backbone"]["stochastic_depth_rate"]
        )


def test_compound_scale_rejects_bad_sizes():
    with pytest.raises(ValueError, match="image_size"):
        compound_scale(evopose2d_presets.SMALL_GENOTYPE, (0, 192))


def test_float_genes_round_trip_exactly():
    import random

    from keras_evopose.models.genotype import BlockSpec

    rng = random.Random(0)
    values = [0.33333334, 1 / 3, 0.25, 1.0, 0.0, 1e-05, 0.1 + 0.2]
    values += [rng.random() for _ in range(200)]
    for value in values:
        spec = BlockSpec(1, 3, 1, 6, 24, squeeze_excite_ratio=value)
        text = spec.to_string()
        assert BlockSpec.from_string(text).squeeze_excite_ratio == value, text
        assert BlockSpec.from_string(text).to_string() == text
    assert BlockSpec(1, 3, 1, 6, 24, 0.25).to_string().endswith("_se0.25")
    assert BlockSpec(1, 3, 1, 6, 24, 1.0).to_string().endswith("_se1")


def test_head_steps_round_trip_and_split():
    from keras_evopose.models.genotype import decode_head_steps
    from keras_evopose.models.genotype import encode_head_steps
    from keras_evopose.models.genotype import genotype_from_string
    from keras_evopose.models.genotype import genotype_to_string
    from keras_evopose.models.genotype import split_genotype

    backbone = evopose2d_presets.SMALL_GENOTYPE
    assert encode_head_steps([128, 64]) == ["up_c128", "up_c64"]
    assert decode_head_steps(["up_c128", "up_c64"]) == [128, 64]
    assert split_genotype(backbone) == (backbone, None)
    genotype = backbone + ["up_c128", "up_c64"]
    assert split_genotype(genotype) == (backbone, [128, 64])
    assert genotype_from_string(genotype_to_string(genotype)) == genotype


@pytest.mark.parametrize(
    "genotype, message",
    [
        (["up_c8", "ir_r1_k3_s1_e1_c8_se0.25"], "follows a head step"),
        (["ir_r1_k3_s1_e1_c8_se0.25", "up_k3_c8"], "Invalid head step"),
        (["ir_r1_k3_s1_e1_c8_se0.25", "up_c0"], "between 1 and 4096"),
    ],
)
def test_malformed_head_steps_are_named(genotype, message):
    from keras_evopose.models.genotype import split_genotype

    with pytest.raises(ValueError, match=message):
        split_genotype(genotype)


def test_backbone_decoder_points_head_steps_elsewhere():
    with pytest.raises(ValueError, match="split_genotype"):
        decode_genotype(["ir_r1_k3_s1_e1_c8_se0.25", "up_c8"])


def test_genotype_value_round_trips_every_text_form():
    from keras_evopose.models import Genotype

    strings = [
        "ir_r1_k3_s1_e1_c8_se0.25",
        "ir_r2_k5_s2_e6_c16_se0.25",
        "up_c32",
        "up_c16",
    ]
    genotype = Genotype.from_strings(strings)
    assert genotype.blocks == tuple(
        BlockSpec.from_string(s) for s in strings[:2]
    )
    assert genotype.head_filters == (32, 16)
    assert genotype.head_steps == ["up_c32", "up_c16"]
    assert genotype.block_strings == strings[:2]
    assert genotype.to_strings() == strings
    assert Genotype.from_string(genotype.to_string()) == genotype
    assert genotype.to_string() == ",".join(strings)
    assert genotype.output_stride == 4
    # Tokens in any order decode to one canonical value.
    shuffled = Genotype.from_strings(["ir_c8_se0.25_k3_s1_r1_e1"])
    assert shuffled.to_strings() == [strings[0]]
    # Frozen, hashable, equal by value; coerce passes a Genotype through.
    assert hash(genotype) == hash(Genotype.from_strings(list(strings)))
    assert Genotype.coerce(genotype) is genotype
    assert Genotype.coerce(strings) == genotype
    assert genotype.replace(head_filters=None).to_strings() == strings[:2]
    with pytest.raises(dataclasses.FrozenInstanceError):
        genotype.blocks = ()


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda G: G.from_strings("ir_r1_k3_s1_e1_c8_se0.25"), "list of block"),
        (lambda G: G.from_strings([]), "at least one stage"),
        (lambda G: G.from_string(""), "joined by commas"),
        (lambda G: G(("ir_r1_k3_s1_e1_c8_se0.25", "up_c8")), "head step"),
        (lambda G: G(("ir_r1_k3_s1_e1_c8_se0.25",), head_filters=[0]), "4096"),
        (lambda G: G(("ir_r1_k3_s1_e1_c8_se0.25",), head_filters=[]), "step"),
        (
            lambda G: G.from_strings(["up_c8", "ir_r1_k3_s1_e1_c8_se0.25"]),
            "follows a head step",
        ),
        (
            lambda G: G.from_strings(["ir_r1_k3_s2_e1_c8_se0.25"] * 5),
            "output stride 64",
        ),
        (lambda G: G.from_strings(["ir_r1_k4_s1_e1_c8_se0.25"]), "'k4'"),
    ],
)
def test_genotype_value_rejects_bad_input_naming_it(build, message):
    from keras_evopose.models import Genotype

    with pytest.raises(ValueError, match=message):
        build(Genotype)


def test_genotype_value_to_and_from_hyperparameters():
    import keras_tuner

    from keras_evopose.models import Genotype
    from keras_evopose.search import SearchSpace

    space = SearchSpace.from_preset("test", head_steps=(1, 3))
    ancestor = Genotype.from_strings(space.ancestor)
    values = ancestor.to_hyperparameter_values(space)
    assert Genotype.from_hyperparameters(values, space) == ancestor
    hp = keras_tuner.HyperParameters()
    assert Genotype.from_hyperparameters(hp, space) == ancestor
    assert set(hp.values) == set(values)


def test_free_conversion_functions_are_deprecated_aliases():
    from keras_evopose import models
    from keras_evopose import search

    space = search.SearchSpace.from_preset("test")
    strings = list(space.ancestor)
    text = ",".join(strings)
    calls = [
        (models.decode_genotype, (strings,)),
        (models.encode_genotype, (strings,)),
        (models.split_genotype, (strings,)),
        (models.encode_head_steps, ([8],)),
        (models.decode_head_steps, (["up_c8"],)),
        (search.genotype_to_string, (strings,)),
        (search.genotype_from_string, (text,)),
        (search.genotype_to_hyperparameter_values, (strings, space)),
        (search.genotype_from_hyperparameters, ({}, space)),
    ]
    for function, arguments in calls:
        with pytest.warns(DeprecationWarning, match="Genotype"):
            try:
                function(*arguments)
            except ValueError:
                pass  # {} lacks the genes: the warning came first


def test_library_paths_call_no_deprecated_conversion(tmp_path):
    """Building, searching and transferring go through `Genotype` only."""
    import random
    import warnings

    from keras_evopose.models import EvoPose2D
    from keras_evopose.models import Genotype
    from keras_evopose.search import SearchSpace
    from keras_evopose.search import mutate
    from keras_evopose.search.evolution_oracle_test import make_oracle
    from keras_evopose.search.evolution_oracle_test import run_trial

    with warnings.catch_warnings():
        # An error where library code (not a test helper) calls an alias.
        warnings.filterwarnings(
            "error",
            category=DeprecationWarning,
            message=".*Genotype",
            module=r"keras_evopose\.(?!.*_test$)",
        )
        space = SearchSpace.from_preset("test", head_steps=(1, 3))
        child, _ = mutate(space.ancestor, space, random.Random(0))
        model = EvoPose2D.from_preset(
            "test", genotype=Genotype.from_strings(child)
        )
        assert (
            model.backbone.genotype
            == Genotype.from_strings(child).block_strings
        )
        space = SearchSpace.from_preset("test")
        oracle = make_oracle(tmp_path, search_space=space)
        ancestor = run_trial(oracle)
        child = run_trial(oracle)
        values = child.hyperparameters.values
        assert values["parent_trial_id"] == ancestor.trial_id
        assert Genotype.from_string(values["genotype"]) != (
            Genotype.from_strings(space.ancestor)
        )
