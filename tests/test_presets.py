"""The presets are the paper's networks: params and FLOPs as published."""

import pytest

from keras_evopose.models import EvoPose2D
from keras_evopose.models import presets
from keras_evopose.utils import count_flops
from keras_evopose.utils import count_params

# Re-derived from the paper's genotypes (../shared/reference/evopose2d.md 11).
EXACT = {
    "extra_small": (2_531_199, 462_372_800, (64, 48)),
    "small": (2_531_199, 1_064_085_440, (128, 96)),
    "medium": (7_341_609, 5_550_593_216, (192, 144)),
    "large": (14_709_587, 17_591_425_152, (256, 192)),
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_preset_matches_the_paper(name):
    model = EvoPose2D.from_preset(name)
    paper = presets.get_preset(name)["metadata"]["paper"]
    params = count_params(model)
    flops = count_flops(model, model.input_shape[1:])
    assert params == model.count_params()
    assert abs(params / paper["params"] - 1) < 0.01
    assert abs(flops / paper["flops"] - 1) < 0.03
    expected_params, expected_flops, heatmap_size = EXACT[name]
    assert params == expected_params
    assert flops == expected_flops
    assert tuple(model.output_shape[1:3]) == heatmap_size
