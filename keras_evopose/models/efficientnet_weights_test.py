import keras
import numpy as np
import pytest

from keras_evopose.models import EvoPose2D
from keras_evopose.models import EvoPose2DBackbone
from keras_evopose.models import efficientnet_weights
from keras_evopose.models.efficientnet_weights import efficientnet_path
from keras_evopose.models.efficientnet_weights import load_efficientnet_weights
from keras_evopose.models.evopose2d_presets import ANCESTOR_GENOTYPE

# Module-scoped fixtures: the whole file on one xdist worker.
pytestmark = pytest.mark.xdist_group("efficientnet_weights_test")

# What EfficientNet-B0 (include_top=False) has that no backbone has.
EFFICIENTNET_ONLY = [
    "normalization/mean",
    "normalization/variance",
    "normalization/count",
    "top_conv/kernel",
    "top_bn/gamma",
    "top_bn/beta",
    "top_bn/moving_mean",
    "top_bn/moving_variance",
]


@pytest.fixture(scope="module")
def efficientnet():
    # Random weights: nothing is downloaded in tests. The mapping is the
    # same for the ImageNet weights.
    keras.utils.set_random_seed(0)
    return keras.applications.EfficientNetB0(weights=None, include_top=False)


def numpy(variable):
    return keras.ops.convert_to_numpy(variable.value)


def sources(efficientnet):
    return {efficientnet_path(v.path): v for v in efficientnet.weights}


def test_names_map_to_backbone_paths():
    assert efficientnet_path("block2b_bn/gamma") == (
        "stage2_block2/dwconv_bn/gamma"
    )
    assert efficientnet_path("block6a_se_reduce/bias") == (
        "stage6_block1/se_reduce/bias"
    )
    assert efficientnet_path("stem_conv/kernel") == "stem_conv/kernel"
    assert efficientnet_path("top_conv/kernel") is None
    assert efficientnet_path("normalization/mean") is None


def test_ancestor_takes_every_efficientnet_b0_variable(efficientnet):
    # The search's ancestor is EfficientNet-B0's block table: every
    # backbone variable has a same-shape EfficientNet counterpart.
    backbone = EvoPose2DBackbone(ANCESTOR_GENOTYPE, image_shape=(224, 224, 3))
    report = load_efficientnet_weights(backbone, efficientnet)
    assert report.adapted == [] and report.fresh == [] and report.zeroed == []
    assert len(report.copied) == len(backbone.weights) == 304
    assert report.unused_parent_paths == EFFICIENTNET_ONLY
    assert report.notes == []
    by_path = sources(efficientnet)
    for variable in backbone.weights:
        np.testing.assert_array_equal(
            numpy(variable), numpy(by_path[variable.path])
        )


def test_small_centres_and_slices_the_stages_that_differ(efficientnet):
    model = EvoPose2D.from_preset("small")
    report = load_efficientnet_weights(model, efficientnet)
    by_path = sources(efficientnet)
    values = {v.path: numpy(v) for v in model.weights}
    for entry in report.entries:
        if entry.status == "copied":
            np.testing.assert_array_equal(
                values[entry.path], numpy(by_path[entry.source])
            )
        elif entry.status == "adapted":
            # Same kernel sizes here: the leading channels are copied.
            child = values[entry.path]
            parent = numpy(by_path[entry.source])
            overlap = tuple(
                slice(0, min(c, p)) for c, p in zip(child.shape, parent.shape)
            )
            np.testing.assert_array_equal(child[overlap], parent[overlap])
    # Stage 6: 192 -> 128 channels; stage 7: 320 -> 80 and one more repeat.
    assert report["stage6_block2/expand_conv/kernel"].source_shape == (
        1,
        1,
        192,
        1152,
    )
    assert report.zeroed == [
        f"stage{stage}/project_bn/{weight}"
        for stage in ("2_block3", "4_block4", "7_block2")
        for weight in ("gamma", "beta")
    ]
    # The head has no EfficientNet counterpart; stage 5 has 2 of B0's 3
    # repeats, so block5c is left over.
    assert report.fresh == [v.path for v in model.weights if "head/" in v.path]
    assert all(
        p in EFFICIENTNET_ONLY or p.startswith("block5c_")
        for p in report.unused_parent_paths
    )
    assert len(report.unused_parent_paths) == 8 + 19
    assert any(
        note.startswith("stage6_block1/dwconv: stride (2, 2) -> (1, 1).")
        for note in report.notes
    )


def test_from_preset_imagenet(efficientnet, monkeypatch):
    heights = []

    def fake_download(image_height):
        heights.append(image_height)
        return efficientnet

    monkeypatch.setattr(
        efficientnet_weights, "imagenet_efficientnet", fake_download
    )
    backbone = EvoPose2DBackbone.from_preset("test", weights="imagenet")
    model = EvoPose2D.from_preset("test", weights="imagenet")
    assert heights == [64, 64]
    expected = numpy(sources(efficientnet)["stem_conv/kernel"])
    for network in (backbone, model):
        stem = next(v for v in network.weights if v.path == "stem_conv/kernel")
        # The test preset's stem has 8 of B0's 32 filters: the first 8.
        np.testing.assert_array_equal(numpy(stem), expected[..., :8])


def test_bad_weights_and_offline_download(monkeypatch):
    with pytest.raises(ValueError, match="weights.*None or 'imagenet'"):
        EvoPose2DBackbone.from_preset("test", weights="coco")

    def offline(image_height):
        raise Exception("URL fetch failure on https://storage.googleapis.com")

    monkeypatch.setattr(efficientnet_weights, "imagenet_efficientnet", offline)
    with pytest.raises(RuntimeError, match="download failed.*weights=None"):
        EvoPose2D.from_preset("test", weights="imagenet")


def test_the_reference_parent_by_input_height(monkeypatch):
    built = []

    def record(name):
        return lambda **kwargs: built.append((name, kwargs))

    for name in ("EfficientNetB0", "EfficientNetB4", "EfficientNetB5"):
        monkeypatch.setattr(keras.applications, name, record(name))
    for height in (256, 384, 512, 64):
        efficientnet_weights.imagenet_efficientnet(height)
    assert [name for name, _ in built] == [
        "EfficientNetB0",
        "EfficientNetB4",
        "EfficientNetB5",
        "EfficientNetB0",
    ]
    assert built[0][1] == {"weights": "imagenet", "include_top": False}


def test_not_an_efficientnet_raises():
    backbone = EvoPose2DBackbone.from_preset("test")
    inputs = keras.Input((8, 8, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="c")(inputs))
    with pytest.raises(ValueError, match="no EfficientNet layer names"):
        load_efficientnet_weights(backbone, other)
    with pytest.raises(ValueError, match="must be a keras.applications"):
        load_efficientnet_weights(backbone, "efficientnetb0_notop.h5")
