"""The presets are the paper's networks: params and FLOPs as published,
and as their metadata states (which `keras-evopose info` prints)."""

import pytest

from keras_evopose.models import EvoPose2D
from keras_evopose.models import presets
from keras_evopose.utils import count_flops
from keras_evopose.utils import count_params

# Re-derived from the paper's genotypes (../shared/reference/evopose2d.md 11).
EXACT = {
    "extra_small": (2_531_199, 462_372_800),
    "small": (2_531_199, 1_064_085_440),
    "medium": (7_341_609, 5_550_593_216),
    "large": (14_709_587, 17_591_425_152),
}


@pytest.mark.parametrize("name", presets.list_presets())
def test_preset_metadata_is_the_built_network(name):
    model = EvoPose2D.from_preset(name)
    metadata = presets.get_preset(name)["metadata"]
    params = count_params(model)
    assert params == model.count_params() == metadata["params"]
    assert count_flops(model, model.input_shape[1:]) == metadata["flops"]
    assert list(model.output_shape[1:3]) == metadata["heatmap_size"]


@pytest.mark.parametrize("name", sorted(EXACT))
def test_preset_matches_the_paper(name):
    metadata = presets.get_preset(name)["metadata"]
    paper = metadata["paper"]
    assert abs(metadata["params"] / paper["params"] - 1) < 0.01
    assert abs(metadata["flops"] / paper["flops"] - 1) < 0.03
    assert (metadata["params"], metadata["flops"]) == EXACT[name]
