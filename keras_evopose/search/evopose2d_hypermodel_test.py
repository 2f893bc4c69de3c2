import keras_tuner

from keras_evopose.search import EvoPose2DHyperModel
from keras_evopose.search import SearchSpace
from keras_evopose.search import genotype_to_string


def test_head_genes_build_the_head_and_size_the_data():
    space = SearchSpace.from_preset(
        "test", head_filter_choices=[8, 16], head_steps=(2, 3)
    )
    # A child with one upsampling step fewer than the test preset's head.
    genotype = space.ancestor[: space.num_stages] + ["up_c8", "up_c16"]
    hp = keras_tuner.HyperParameters()
    hp.values["genotype"] = genotype_to_string(genotype)
    hypermodel = EvoPose2DHyperModel("test")
    model = hypermodel.build(hp)
    assert model.head_filters == [8, 16]
    assert tuple(model.output_shape[1:]) == (16, 12, 17)

    # The data functions get the built model's heatmap size (training
    # itself is covered elsewhere).
    sizes, fitted = [], {}
    model.fit = lambda *args, **kwargs: fitted.update(args=args, **kwargs)
    hypermodel.fit(
        hp,
        model,
        lambda size: sizes.append(size) or "train",
        validation_data=lambda size: sizes.append(size) or "val",
        steps_per_epoch=1,
    )
    assert sizes == [(16, 12), (16, 12)]
    assert fitted["args"] == ("train",) and fitted["validation_data"] == "val"
