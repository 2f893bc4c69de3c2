import keras
import numpy as np
import pytest

from keras_evopose.layers import SqueezeAndExcite2D
from keras_evopose.tests import test_case


def test_gate_scales_each_channel_between_zero_and_one():
    layer = SqueezeAndExcite2D(8, 2)
    inputs = np.abs(np.random.default_rng(0).normal(size=(2, 5, 4, 8)))
    outputs = keras.ops.convert_to_numpy(layer(inputs))
    ratio = outputs / inputs
    # One gate value per (sample, channel), constant over space.
    np.testing.assert_allclose(
        ratio, np.broadcast_to(ratio[:, :1, :1, :], ratio.shape), rtol=1e-5
    )
    assert np.all((ratio > 0) & (ratio < 1))
    assert layer.count_params() == 8 * 2 + 2 + 2 * 8 + 8


def test_bad_arguments_and_mismatch():
    with pytest.raises(ValueError, match="bottleneck_filters"):
        SqueezeAndExcite2D(8, 0)
    with pytest.raises(ValueError, match="filters=8.*Pass filters=4"):
        SqueezeAndExcite2D(8, 2)(np.ones((1, 2, 2, 4)))


def test_kernel_regularizer_on_both_kernels_not_biases():
    layer = SqueezeAndExcite2D(
        8, 2, kernel_regularizer=keras.regularizers.L2(1e-3), name="se"
    )
    layer.build((None, 4, 4, 8))
    regularized = [
        v.path for v in layer.weights if getattr(v, "regularizer", None)
    ]
    assert sorted(regularized) == [
        "se/expand/kernel",
        "se/reduce/kernel",
    ]
    assert len(layer.losses) == 2


def test_serialization_and_saving(tmp_path):
    layer = SqueezeAndExcite2D(8, 2, activation="relu", kernel_regularizer="l2")
    test_case.run_serialization_test(layer)
    model = test_case.wrap_layer(layer, (4, 4, 8))
    test_case.run_model_saving_test(
        model, np.random.default_rng(1).normal(size=(2, 4, 4, 8)), tmp_path
    )
