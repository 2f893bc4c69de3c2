import pytest

from keras_evopose.search.coco_search import COCOSearchConfig
from keras_evopose.search.coco_search import ancestor_genotype
from keras_evopose.search.coco_search import ancestor_stride
from keras_evopose.search.coco_search import head_genes_of


def test_head_genes_off_by_default():
    config = COCOSearchConfig()
    assert head_genes_of(config) == {
        "head_filter_choices": None,
        "head_steps": None,
    }
    assert all(not g.startswith("up_") for g in ancestor_genotype(config))


def test_head_genes_settings_give_the_preset_head():
    config = COCOSearchConfig(head_filter_choices="8,16,32", head_steps="1-3")
    assert head_genes_of(config) == {
        "head_filter_choices": [8, 16, 32],
        "head_steps": [1, 3],
    }
    # The test preset's head (three steps of 16) ends the ancestor.
    assert ancestor_genotype(config)[-3:] == ["up_c16"] * 3
    assert ancestor_stride(config) == 16


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"head_steps": "3"}, "head_steps must be like '1-3'"),
        ({"head_filter_choices": "8;16"}, "must be like '8,16,32'"),
        ({"head_filter_choices": "8"}, "head step 1 has 16 channels"),
        ({"head_steps": "1-2"}, "head has 3 upsampling steps, outside"),
    ],
)
def test_bad_head_genes_fail_when_configured(settings, message):
    with pytest.raises(ValueError, match=message):
        COCOSearchConfig(**settings)
