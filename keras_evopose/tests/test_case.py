"""Shared test helpers (keras-hub style): serialization and saving checks."""

import json

import keras
import numpy as np


def run_serialization_test(instance):
    """get_config -> from_config gives the same config and the same attributes;
    the keras serialize/deserialize round trip too."""
    config = instance.get_config()
    revived = instance.__class__.from_config(config)
    assert json.dumps(revived.get_config(), sort_keys=True, default=str) == (
        json.dumps(config, sort_keys=True, default=str)
    )
    assert set(dir(revived)) == set(dir(instance))
    serialized = keras.saving.serialize_keras_object(instance)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert json.dumps(revived.get_config(), sort_keys=True, default=str) == (
        json.dumps(config, sort_keys=True, default=str)
    )
    return revived


def run_model_saving_test(model, input_data, tmp_path, atol=1e-6):
    """`.keras` save/load gives a model with identical outputs."""
    path = tmp_path / "model.keras"
    expected = keras.ops.convert_to_numpy(model(input_data, training=False))
    model.save(path)
    restored = keras.saving.load_model(path)
    actual = keras.ops.convert_to_numpy(restored(input_data, training=False))
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=0)
    return restored


def wrap_layer(layer, input_shape):
    """A functional model around one layer, for `.keras` saving tests."""
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, layer(inputs))
