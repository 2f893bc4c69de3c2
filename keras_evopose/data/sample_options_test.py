import pytest

from keras_evopose.data import SampleOptions


def test_defaults_and_replace():
    options = SampleOptions([256, 192], (128, 96))
    assert options.input_size == (256, 192)
    assert options.sigma == 4.0
    assert options.half_body_probability == 0.0
    assert options.fill == "black" and options.out_of_crop == "border"
    changed = options.replace(fill="mean", padding=1.5)
    assert (changed.fill, changed.padding) == ("mean", 1.5)
    assert options.fill == "black"  # frozen: the original is unchanged
    with pytest.raises(AttributeError):
        options.padding = 2.0


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"heatmap_size": None}, "heatmap_size.*output_shape"),
        ({"input_size": (64,)}, "input_size"),
        ({"heatmap_size": (32.5, 24)}, "heatmap_size"),
        ({"sigma": 0}, "sigma"),
        ({"flip_probability": 1.5}, "flip_probability"),
        ({"scale_factor": 1.0}, "scale_factor"),
        ({"fill": "grey"}, "fill"),
        ({"out_of_crop": "clip"}, "out_of_crop"),
        ({"image_mean": (0.5, 0.5)}, "image_mean"),
        ({"image_std": (0.2, 0.0, 0.2)}, "image_std"),
    ],
)
def test_invalid_values_are_named(changes, match):
    arguments = {"input_size": (64, 48), "heatmap_size": (32, 24)}
    arguments.update(changes)
    with pytest.raises(ValueError, match=match):
        SampleOptions(**arguments)


def test_for_model_reads_the_model_sizes():
    from keras_evopose.models import EvoPose2D

    model = EvoPose2D.from_preset("test")
    options = SampleOptions.for_model(model, padding=1.3)
    assert options.input_size == tuple(model.input_shape[1:3])
    assert options.heatmap_size == tuple(model.output_shape[1:3])
    assert options.padding == 1.3
