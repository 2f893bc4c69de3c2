import keras
import numpy as np
import pytest

from keras_evopose.layers import MBConvBlock
from keras_evopose.tests import test_case


def test_output_shape_and_residual():
    block = MBConvBlock(16, 16, kernel_size=5, name="block")
    outputs = block(np.ones((2, 16, 12, 16), "float32"))
    assert tuple(outputs.shape) == (2, 16, 12, 16)
    assert "add" in block.sublayers
    strided = MBConvBlock(16, 24, strides=2)
    assert tuple(strided(np.ones((2, 15, 11, 16))).shape) == (2, 8, 6, 24)
    assert "add" not in strided.sublayers
    assert strided.compute_output_shape((None, 15, 11, 16)) == (None, 8, 6, 24)


def test_weight_paths_are_nested_role_names():
    block = MBConvBlock(16, 16, name="stage2_block1")
    block.build((None, 8, 8, 16))
    paths = {v.path for v in block.weights}
    assert "stage2_block1/expand_conv/kernel" in paths
    assert "stage2_block1/dwconv/kernel" in paths
    assert "stage2_block1/se_reduce/bias" in paths
    assert "stage2_block1/project_bn/moving_variance" in paths


def test_parameter_count_matches_efficientnet_formula():
    block = MBConvBlock(16, 24, kernel_size=3, strides=2, expand_ratio=6)
    block.build((None, 8, 8, 16))
    expanded = 96
    squeeze = 4  # int(16 * 0.25): from the block *input* channels
    expected = (
        16 * expanded
        + 4 * expanded  # expand conv + BN (4 vectors)
        + 9 * expanded
        + 4 * expanded  # depthwise + BN
        + expanded * squeeze
        + squeeze
        + squeeze * expanded
        + expanded  # SE
        + expanded * 24
        + 4 * 24  # project + BN
    )
    assert block.count_params() == expected


def test_expand_ratio_one_has_no_expansion_layers():
    block = MBConvBlock(16, 16, expand_ratio=1)
    assert "expand_conv" not in block.sublayers


def test_stochastic_depth_drops_the_residual_branch_at_the_rate():
    block = MBConvBlock(8, 8, stochastic_depth_rate=0.3)
    inputs = np.random.default_rng(0).normal(size=(2000, 4, 4, 8))
    inputs = inputs.astype("float32")
    outputs = keras.ops.convert_to_numpy(block(inputs, training=True))
    # A dropped branch leaves exactly the shortcut: output == input.
    dropped = np.all(np.isclose(outputs, inputs), axis=(1, 2, 3)).mean()
    assert 0.25 < dropped < 0.35
    eval_outputs = keras.ops.convert_to_numpy(block(inputs, training=False))
    assert not np.any(np.all(np.isclose(eval_outputs, inputs), axis=(1, 2, 3)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_filters": 0}, "input_filters"),
        ({"output_filters": -1}, "output_filters"),
        ({"strides": 3}, "strides"),
        ({"stochastic_depth_rate": 1.0}, "stochastic_depth_rate"),
        ({"squeeze_excite_ratio": 2.0}, "squeeze_excite_ratio"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"input_filters": 8, "output_filters": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        MBConvBlock(**arguments)


def test_channel_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="input_filters=16.*Pass"):
        MBConvBlock(16, 16)(np.ones((1, 4, 4, 8)))


def test_kernel_regularizer_covers_every_conv_but_the_depthwise():
    block = MBConvBlock(
        8, 8, kernel_regularizer=keras.regularizers.L2(1e-2), name="block"
    )
    block.build((None, 4, 4, 8))
    regularized = sorted(
        v.path for v in block.weights if getattr(v, "regularizer", None)
    )
    assert regularized == [
        "block/expand_conv/kernel",
        "block/project_conv/kernel",
        "block/se_expand/kernel",
        "block/se_reduce/kernel",
    ]
    # Keras `l2`: 1e-2 * sum(w ** 2) per kernel, no 1/2.
    expected = sorted(
        1e-2 * float(np.sum(keras.ops.convert_to_numpy(v) ** 2))
        for v in block.weights
        if v.path in regularized
    )
    losses = sorted(float(loss) for loss in block.losses)
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    assert MBConvBlock(8, 8).losses == []


def test_batch_norm_momentum_reaches_every_bn():
    block = MBConvBlock(8, 16, batch_norm_momentum=0.9)
    momenta = {
        layer.name: layer.momentum
        for layer in block.sublayers.values()
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert momenta == {"expand_bn": 0.9, "dwconv_bn": 0.9, "project_bn": 0.9}
    with pytest.raises(ValueError, match="batch_norm_momentum"):
        MBConvBlock(8, 8, batch_norm_momentum=1.0)
    with pytest.raises(ValueError, match="kernel_regularizer"):
        MBConvBlock(8, 8, kernel_regularizer="no_such_regularizer")


def test_serialization_and_saving(tmp_path):
    block = MBConvBlock(
        8,
        8,
        kernel_size=5,
        stochastic_depth_rate=0.1,
        kernel_regularizer=keras.regularizers.L2(1e-4),
        batch_norm_momentum=0.9,
    )
    test_case.run_serialization_test(block)
    model = test_case.wrap_layer(block, (8, 6, 8))
    test_case.run_model_saving_test(
        model, np.random.default_rng(1).normal(size=(2, 8, 6, 8)), tmp_path
    )
