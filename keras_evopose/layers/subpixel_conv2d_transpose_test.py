import keras
import numpy as np
import pytest

from keras_evopose.layers import SubPixelConv2DTranspose
from keras_evopose.layers import subpixel_conv2d_transpose
from keras_evopose.tests import test_case


def relative_error(actual, expected):
    actual = keras.ops.convert_to_numpy(actual)
    expected = keras.ops.convert_to_numpy(expected)
    return np.abs(actual - expected).max() / np.abs(expected).max()


@pytest.mark.parametrize("kernel_size", [3, 4, 2, (3, 2), 5])
def test_same_function_as_conv2d_transpose(kernel_size):
    inputs = np.random.default_rng(0).normal(size=(2, 5, 4, 6))
    inputs = inputs.astype("float32")
    transposed = keras.layers.Conv2DTranspose(
        7, kernel_size, strides=2, padding="same", use_bias=False
    )
    expected = transposed(inputs)
    layer = SubPixelConv2DTranspose(7, kernel_size)
    layer.build(inputs.shape)
    layer.load_transpose_weights(transposed.kernel)
    assert relative_error(layer(inputs), expected) < 1e-5
    # Same parameters, and the conversion inverts exactly.
    assert layer.count_params() == transposed.count_params()
    np.testing.assert_array_equal(
        layer.transpose_kernel(), keras.ops.convert_to_numpy(transposed.kernel)
    )


def test_phase_taps_of_a_3x3_kernel():
    kernel = np.arange(9, dtype="float32").reshape(3, 3, 1, 1)
    phases = subpixel_conv2d_transpose.transpose_kernel_to_phase_kernels(kernel)
    # Even rows read input rows m-1 (tap 2) and m (tap 0); odd rows tap 1.
    assert [p.shape[:2] for p in phases] == [(2, 2), (2, 1), (1, 2), (1, 1)]
    np.testing.assert_array_equal(phases[0][..., 0, 0], [[8, 6], [2, 0]])
    np.testing.assert_array_equal(phases[3][..., 0, 0], [[4]])


def test_bias_and_initializer():
    layer = SubPixelConv2DTranspose(4, use_bias=True, kernel_initializer="ones")
    outputs = layer(np.ones((1, 3, 3, 2), "float32"))
    assert tuple(outputs.shape) == (1, 6, 6, 4)
    # The all-ones transposed kernel: an interior output pixel of phase
    # (0, 0) sums 2x2 taps of 2 channels.
    assert float(outputs[0, 2, 2, 0]) == 8.0
    kernel = np.zeros((3, 3, 4, 2), "float32")
    layer.load_transpose_weights(kernel, bias=np.full((4,), 0.5, "float32"))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(np.ones((1, 3, 3, 2)))), 0.5
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="kernel_size"):
        SubPixelConv2DTranspose(8, kernel_size=1)
    with pytest.raises(ValueError, match="filters"):
        SubPixelConv2DTranspose(0)
    layer = SubPixelConv2DTranspose(8)
    layer.build((None, 4, 4, 3))
    with pytest.raises(ValueError, match="shape"):
        layer.load_transpose_weights(np.zeros((3, 3, 4, 3)))
    with pytest.raises(ValueError, match="use_bias"):
        layer.load_transpose_weights(np.zeros((3, 3, 8, 3)), np.zeros(8))


def test_serialization_and_saving(tmp_path):
    layer = SubPixelConv2DTranspose(5, kernel_size=4, use_bias=True)
    test_case.run_serialization_test(layer)
    model = test_case.wrap_layer(layer, (4, 3, 6))
    test_case.run_model_saving_test(
        model, np.random.default_rng(1).normal(size=(2, 4, 3, 6)), tmp_path
    )
