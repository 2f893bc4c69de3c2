import random

import keras
import keras_tuner
import numpy as np
import pytest

from keras_evopose.models.evopose2d_presets import SMALL_GENOTYPE
from keras_evopose.search.genotype_hyperparameters import (
    genotype_from_hyperparameters,
)
from keras_evopose.search.genotype_hyperparameters import (
    genotype_to_hyperparameter_values,
)
from keras_evopose.search.search_space import SearchSpace


def _random_values(hp, rng):
    """One random value per hyperparameter of `hp` (as a sampler would)."""
    values = {}
    for definition in hp.space:
        if isinstance(definition, keras_tuner.engine.hyperparameters.Int):
            values[definition.name] = rng.randint(
                definition.min_value, definition.max_value
            )
        else:
            values[definition.name] = rng.choice(list(definition.values))
    return values


def test_every_gene_is_a_hyperparameter():
    space = SearchSpace()
    hp = space.to_hyperparameters()
    names = [definition.name for definition in hp.space]
    # 7 stages x (kernel, repeats, filters) + strides of stages 5, 6, 7.
    assert len(names) == 7 * 3 + 3
    assert "stage7_strides" in names and "stage4_strides" not in names
    assert hp.get("stage7_filters") == 320
    # The defaults decode to the ancestor.
    assert genotype_from_hyperparameters(hp, space) == space.ancestor


@pytest.mark.parametrize("preset", [None, "test"])
def test_random_samples_always_decode_to_a_valid_genotype(preset):
    space = SearchSpace() if preset is None else SearchSpace.from_preset(preset)
    hp = space.to_hyperparameters()
    rng = random.Random(0)
    repaired = 0
    for _ in range(500):
        values = _random_values(hp, rng)
        genotype = genotype_from_hyperparameters(values, space)
        assert space.contains(genotype)
        stride_two = [
            stage
            for stage in space.stride_stages
            if values[f"stage{stage}_strides"] == 2
        ]
        if preset is None and len(stride_two) > 1:
            repaired += 1
            # The earliest stride-2 stage keeps its stride.
            assert "_s2_" in genotype[stride_two[0] - 1]
            with pytest.raises(ValueError, match="stride-2 stages"):
                genotype_from_hyperparameters(values, space, on_invalid="raise")
        else:
            assert (
                genotype_from_hyperparameters(values, space, on_invalid="raise")
                == genotype
            )
    if preset is None:
        # Half of the stride draws exceed the budget of one: all repaired.
        assert repaired > 100


def test_values_round_trip():
    space = SearchSpace()
    values = genotype_to_hyperparameter_values(SMALL_GENOTYPE, space)
    assert values["stage6_strides"] == 1
    assert genotype_from_hyperparameters(values, space) == SMALL_GENOTYPE
    hp = space.to_hyperparameters()
    hp.values.update(values)
    assert genotype_from_hyperparameters(hp, space) == SMALL_GENOTYPE


def test_bad_values_are_named():
    space = SearchSpace.from_preset("test")
    values = genotype_to_hyperparameter_values(space.ancestor, space)
    with pytest.raises(ValueError, match="stage2_filters=12 is outside"):
        genotype_from_hyperparameters({**values, "stage2_filters": 12}, space)
    del values["stage1_kernel_size"]
    with pytest.raises(ValueError, match="lack 'stage1_kernel_size'"):
        genotype_from_hyperparameters(values, space)
    with pytest.raises(ValueError, match="on_invalid"):
        genotype_from_hyperparameters({}, space, on_invalid="drop")
    with pytest.raises(ValueError, match="7 stages; this search space has 4"):
        genotype_to_hyperparameter_values(SMALL_GENOTYPE, space)


def test_random_search_runs_three_trials_of_valid_genotypes(tmp_path):
    space = SearchSpace.from_preset("test")
    seen = []

    def build(hp):
        genotype = genotype_from_hyperparameters(hp, space)
        seen.append(genotype)
        # A stub standing in for the network: its size follows the genes.
        width = sum(
            int(block.split("_c")[1].split("_")[0]) for block in genotype
        )
        model = keras.Sequential(
            [
                keras.Input((2,)),
                keras.layers.Dense(width),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer="sgd", loss="mse")
        return model

    class RandomSearch(keras_tuner.RandomSearch):
        # keras-tuner 1.4.8 imports tensorboard on the TensorFlow backend
        # for every trial, and TensorFlow 2.21 no longer installs it.
        def _configure_tensorboard_dir(self, *args, **kwargs):
            return

    tuner = RandomSearch(
        build,
        objective="val_loss",
        max_trials=3,
        seed=1,
        directory=str(tmp_path),
        project_name="genes",
    )
    x = np.zeros((4, 2), "float32")
    y = np.zeros((4, 1), "float32")
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    trials = tuner.oracle.trials.values()
    assert sum(trial.status == "COMPLETED" for trial in trials) == 3
    assert all(space.contains(genotype) for genotype in seen)
    # Every trial's values decode again to a genotype of the space.
    for trial in trials:
        genotype = genotype_from_hyperparameters(
            dict(trial.hyperparameters.values), space
        )
        assert space.contains(genotype)


def test_head_genes_as_hyperparameters_round_trip():
    space = SearchSpace.from_preset(
        "test", head_filter_choices=[8, 16], head_steps=(1, 3)
    )
    hp = space.to_hyperparameters()
    names = [definition.name for definition in hp.space]
    assert names[-4:] == [
        "head_num_steps",
        "head_step1_filters",
        "head_step2_filters",
        "head_step3_filters",
    ]
    assert genotype_from_hyperparameters(hp, space) == space.ancestor
    rng = random.Random(0)
    for _ in range(50):
        values = _random_values(hp, rng)
        genotype = genotype_from_hyperparameters(values, space)
        assert space.contains(genotype)
        assert len(genotype) == space.num_stages + values["head_num_steps"]
        again = genotype_to_hyperparameter_values(genotype, space)
        assert genotype_from_hyperparameters(again, space) == genotype
