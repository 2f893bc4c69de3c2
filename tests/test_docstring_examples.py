"""Every `>>>` example in the public docstrings runs and prints what it says."""

import doctest
import importlib

import keras
import pytest

import keras_evopose

MODULES = [
    "keras_evopose.layers.squeeze_and_excite_2d",
    "keras_evopose.layers.mbconv_block",
    "keras_evopose.layers.deconv_head",
    "keras_evopose.models.genotype",
    "keras_evopose.models.evopose2d_backbone",
    "keras_evopose.models.evopose2d",
    "keras_evopose.search.weight_transfer",
    "keras_evopose.data.keypoint_layout",
    "keras_evopose.data.coco_instances",
    "keras_evopose.data.coco_keypoints",
    "keras_evopose.data.heatmaps",
    "keras_evopose.data.sample_options",
    "keras_evopose.losses.heatmap_mse",
    "keras_evopose.training.recipe",
    "keras_evopose.metrics.decoding",
]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(
        module,
        extraglobs={"keras": keras, "keras_evopose": keras_evopose},
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.failed == 0
    assert result.attempted > 0
