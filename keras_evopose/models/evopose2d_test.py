import keras
import numpy as np
import pytest

from keras_evopose.data import KeypointLayout
from keras_evopose.data import SampleOptions
from keras_evopose.models import EvoPose2D
from keras_evopose.models import EvoPose2DBackbone
from keras_evopose.models import build_flat_model
from keras_evopose.tests import test_case

# Module-scoped fixtures: the whole file on one xdist worker.
pytestmark = pytest.mark.xdist_group("evopose2d_test")


@pytest.fixture(scope="module")
def test_model():
    return EvoPose2D.from_preset("test")


def images(shape=(2, 64, 48, 3), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_presets_are_listed():
    assert set(EvoPose2D.presets) == {
        "extra_small",
        "small",
        "medium",
        "large",
        "test",
    }
    assert EvoPose2DBackbone.presets == EvoPose2D.presets


def test_test_preset_shapes_and_stable_names(test_model):
    assert tuple(test_model(images()).shape) == (2, 32, 24, 17)
    assert test_model.heatmap_stride == 2
    paths = {v.path for v in test_model.weights}
    for expected in (
        "stem_conv/kernel",
        "stage1_block1/dwconv/kernel",
        "stage3_block2/project_bn/gamma",
        "head/deconv1/kernel",
        "head/final_conv/bias",
    ):
        assert expected in paths


def test_backbone_pyramid_and_output_stride():
    backbone = EvoPose2DBackbone.from_preset("test")
    assert backbone.output_stride == 16
    assert list(backbone.pyramid_outputs) == ["P1", "P2", "P3", "P4"]
    assert tuple(backbone.pyramid_outputs["P2"].shape) == (None, 16, 12, 16)


def test_variable_input_size():
    backbone = EvoPose2DBackbone.from_preset(
        "test", image_shape=(None, None, 3)
    )
    assert tuple(backbone(images((1, 96, 64, 3))).shape) == (1, 6, 4, 24)


def test_from_preset_overrides_route_to_backbone_and_head():
    model = EvoPose2D.from_preset(
        "test",
        num_keypoints=5,
        genotype=["ir_r1_k3_s1_e1_c8_se0.25", "ir_r1_k5_s2_e2_c16_se0"],
        head_filters=[8],
    )
    assert model.backbone.genotype[1] == "ir_r1_k5_s2_e2_c16_se0"
    # Output stride 4, one transposed conv: heatmaps at 1/2 of the input.
    assert tuple(model.output_shape) == (None, 32, 24, 5)


def test_an_input_the_stride_does_not_divide_is_refused():
    # Not heatmaps that silently miss the input (16x16 for 32x24).
    with pytest.raises(
        ValueError,
        match=r"image_shape 32x24: .* multiples of 16 .* sizes: 32x16, 32x32",
    ):
        EvoPose2D.from_preset("test", image_shape=[32, 24, 3])
    model = EvoPose2D.from_preset("test", image_shape=[32, 32, 3])
    assert tuple(model.output_shape) == (None, 16, 16, 17)


def test_bad_preset_and_arguments():
    with pytest.raises(ValueError, match="Unknown preset 'tiny'.*'small'"):
        EvoPose2D.from_preset("tiny")
    with pytest.raises(ValueError, match="unknown argument.*num_kepoints"):
        EvoPose2D.from_preset("test", num_kepoints=3)
    with pytest.raises(ValueError, match="stem_filters"):
        EvoPose2DBackbone.from_preset("test", stem_filters=0)
    with pytest.raises(ValueError, match="backbone"):
        EvoPose2D(backbone="small")


def test_get_config_is_exactly_the_constructor_arguments(test_model):
    backbone_config = test_model.backbone.get_config()
    assert set(backbone_config) == {
        "name",
        "trainable",
        "genotype",
        "stem_filters",
        "image_shape",
        "stochastic_depth_rate",
        "activation",
        "kernel_regularizer",
        "batch_norm_momentum",
        "dtype",
    }
    config = test_model.get_config()
    assert set(config) == {
        "name",
        "trainable",
        "backbone",
        "num_keypoints",
        "head_filters",
        "head_kernel_size",
        "final_kernel_size",
        "spatial_correction",
        "head_activation",
        "head_upsampling",
        "kernel_regularizer",
        "batch_norm_momentum",
        "dtype",
        "keypoint_layout",
        "sample_options",
    }
    rebuilt = EvoPose2D.from_config(config)
    assert rebuilt.get_config() == config


def test_data_contract_is_saved_with_the_model(tmp_path):
    layout = KeypointLayout.from_names(["nose", "l_eye", "r_eye"])
    model = EvoPose2D.from_preset(
        "test",
        keypoint_layout=layout,
        sample_options={"fill": "mean", "sigma": 3, "padding": 1.5},
    )
    assert model.num_keypoints == 3 and model.output_shape[-1] == 3
    restored = test_case.run_model_saving_test(model, images(), tmp_path)
    assert restored.keypoint_layout == layout
    assert restored.keypoint_layout.flip_pairs == ((1, 2),)
    assert restored.sample_options == SampleOptions(
        (64, 48), (32, 24), sigma=3.0, padding=1.5, fill="mean"
    )


def test_config_without_a_contract_gets_todays_defaults(test_model):
    # What a model saved before the contract existed holds.
    config = test_model.get_config()
    del config["keypoint_layout"], config["sample_options"]
    old = EvoPose2D.from_config(config)
    assert old.keypoint_layout == KeypointLayout.coco_person()
    assert old.sample_options == SampleOptions((64, 48), (32, 24))
    config["num_keypoints"] = 5
    assert EvoPose2D.from_config(config).keypoint_layout is None


def test_contract_must_fit_the_model():
    layout = KeypointLayout.from_names(["a", "b"])
    with pytest.raises(ValueError, match="num_keypoints=3 but the"):
        EvoPose2D.from_preset("test", num_keypoints=3, keypoint_layout=layout)
    with pytest.raises(ValueError, match="input_size=.*not the model's"):
        EvoPose2D.from_preset(
            "test", sample_options=SampleOptions((128, 96), (64, 48))
        )


def test_subpixel_head_saves_and_has_no_flat_twin(tmp_path):
    # head_upsampling="subpixel": the head trained as phase convs.
    model = EvoPose2D.from_preset("test", head_upsampling="subpixel")
    assert model.get_layer("head").upsampling == "subpixel"
    restored = test_case.run_model_saving_test(model, images(), tmp_path)
    assert restored.head_upsampling == "subpixel"
    with pytest.raises(ValueError, match="head_upsampling='transpose'"):
        build_flat_model(model, keras)


def test_serialization_round_trip(test_model):
    test_case.run_serialization_test(test_model.backbone)
    test_case.run_serialization_test(test_model)


def test_keras_file_round_trip(test_model, tmp_path):
    restored = test_case.run_model_saving_test(test_model, images(), tmp_path)
    assert isinstance(restored, EvoPose2D)
    assert isinstance(restored.backbone, EvoPose2DBackbone)
    backbone_path = tmp_path / "backbone"
    backbone_path.mkdir()
    test_case.run_model_saving_test(
        test_model.backbone, images(), backbone_path
    )


def test_flat_keras_model_equals_the_nested_model(test_model):
    flat = build_flat_model(test_model, keras)
    assert not any(isinstance(layer, keras.Model) for layer in flat.layers)
    assert "stage3_block2_dwconv" in {layer.name for layer in flat.layers}
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(flat(images(), training=False)),
        keras.ops.convert_to_numpy(test_model(images(), training=False)),
        atol=1e-6,
    )


def test_tf_keras_twin_equals_the_keras_3_model(test_model):
    tf_keras = pytest.importorskip("tf_keras")
    twin = build_flat_model(test_model, tf_keras)
    assert isinstance(twin, tf_keras.Model)
    np.testing.assert_allclose(
        twin(images(), training=False).numpy(),
        keras.ops.convert_to_numpy(test_model(images(), training=False)),
        atol=1e-5,
    )


def test_fit_one_step(test_model):
    model = EvoPose2D.from_preset("test")
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(
        images((4, 64, 48, 3)),
        np.zeros((4, 32, 24, 17), "float32"),
        epochs=1,
        verbose=0,
    )
    assert np.isfinite(history.history["loss"][0])


def test_mixed_precision_policy_reaches_every_layer(tmp_path):
    model = EvoPose2D.from_preset("test", dtype="mixed_bfloat16")
    outputs = model(images())
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    assert all(
        keras.backend.standardize_dtype(v.dtype) == "float32"
        for v in model.weights
    )  # variables stay float32 under a mixed policy
    restored = test_case.run_model_saving_test(
        model, images(), tmp_path, atol=1e-2
    )
    assert restored.backbone.dtype_policy.name == "mixed_bfloat16"


def regularized_paths(model):
    return sorted(
        v.path for v in model.weights if getattr(v, "regularizer", None)
    )


def test_small_with_l2_has_the_reference_76_penalties(tmp_path):
    # The reference regularizes 76 kernels of S: every Conv2D and
    # Conv2DTranspose kernel (SE convs and heatmap conv included), none of
    # the 18 depthwise kernels, no bias, no BN.
    model = EvoPose2D.from_preset(
        "small", kernel_regularizer=keras.regularizers.L2(1e-5)
    )
    assert len(model.losses) == 76
    paths = regularized_paths(model)
    assert len(paths) == 76
    assert all(p.endswith("/kernel") and "dwconv" not in p for p in paths)
    assert sum("/se_" in p for p in paths) == 36
    assert sum(p.startswith("head/") for p in paths) == 4
    kernels = [v for v in model.weights if v.path in paths]
    expected = 1e-5 * sum(
        float(np.sum(keras.ops.convert_to_numpy(v) ** 2)) for v in kernels
    )
    total = sum(float(loss) for loss in model.losses)
    np.testing.assert_allclose(total, expected, rtol=1e-4)

    model.save(tmp_path / "small.keras")
    restored = keras.saving.load_model(tmp_path / "small.keras")
    assert len(restored.losses) == 76
    assert regularized_paths(restored) == paths
    assert restored.get_config()["kernel_regularizer"] == (
        keras.regularizers.serialize(keras.regularizers.L2(1e-5))
    )


def test_batch_norm_momentum_reaches_backbone_and_head(tmp_path):
    model = EvoPose2D.from_preset(
        "test",
        batch_norm_momentum=0.9,
        kernel_regularizer={"class_name": "L2", "config": {"l2": 1e-4}},
    )

    def momenta(network):
        return {
            layer.momentum
            for layer in network._flatten_layers(recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)
        }

    assert momenta(model) == {0.9}
    assert model.backbone.batch_norm_momentum == 0.9
    assert momenta(EvoPose2D.from_preset("test")) == {0.99}
    restored = test_case.run_model_saving_test(model, images(), tmp_path)
    assert momenta(restored) == {0.9}
    assert len(restored.losses) == len(model.losses) > 0
    flat = build_flat_model(model, keras)
    assert momenta(flat) == {0.9}
    assert len(flat.losses) == len(model.losses)
    with pytest.raises(ValueError, match="EvoPose2DBackbone.*momentum"):
        EvoPose2DBackbone.from_preset("test", batch_norm_momentum=1.5)
    with pytest.raises(ValueError, match="kernel_regularizer"):
        EvoPose2D.from_preset("test", kernel_regularizer=3)


def test_tf_keras_twin_keeps_regularizer_and_momentum():
    tf_keras = pytest.importorskip("tf_keras")
    model = EvoPose2D.from_preset(
        "test",
        kernel_regularizer=keras.regularizers.L2(1e-4),
        batch_norm_momentum=0.9,
    )
    twin = build_flat_model(model, tf_keras)
    assert len(twin.losses) == len(model.losses)
    np.testing.assert_allclose(
        sum(float(loss) for loss in twin.losses),
        sum(float(loss) for loss in model.losses),
        rtol=1e-4,
    )
    assert {
        layer.momentum
        for layer in twin.layers
        if isinstance(layer, tf_keras.layers.BatchNormalization)
    } == {0.9}


def test_genotype_head_steps_set_the_head():
    from keras_evopose.models.presets import preset_arguments

    genotype = list(preset_arguments("test", "backbone")["genotype"])
    model = EvoPose2D.from_preset("test", genotype=genotype + ["up_c8"] * 2)
    assert model.head_filters == [8, 8]
    assert model.backbone.genotype == genotype
    # Two steps instead of three: heatmaps at 1/4 of the 64x48 input.
    assert tuple(model.output_shape[1:]) == (16, 12, 17)
    with pytest.raises(ValueError, match="Pass only one of them"):
        EvoPose2D.from_preset(
            "test", genotype=genotype + ["up_c8"], head_filters=[8]
        )
