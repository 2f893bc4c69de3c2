import keras
import numpy as np

from keras_evopose.losses import HeatmapMSE
from keras_evopose.tests.test_case import run_serialization_test


def test_weighted_mean_counts_every_element():
    y_true = np.zeros((2, 3, 4, 5), "float32")
    y_pred = np.full((2, 3, 4, 5), 2.0, "float32")
    weights = np.zeros((2, 1, 1, 5), "float32")
    weights[0, 0, 0, 1] = 1.0
    value = float(HeatmapMSE()(y_true, y_pred, sample_weight=weights))
    # One joint of one sample: 12 pixels * 4 / all 120 elements.
    np.testing.assert_allclose(value, 12 * 4.0 / 120)


def test_float16_predictions_are_cast():
    y_pred = keras.ops.cast(keras.ops.ones((1, 2, 2, 1)), "float16")
    value = HeatmapMSE()(keras.ops.zeros((1, 2, 2, 1)), y_pred)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_serialization():
    run_serialization_test(HeatmapMSE())
