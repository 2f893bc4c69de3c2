import copy
import json

import numpy as np
import pytest

from keras_evopose.callbacks import LiteRTLatency
from keras_evopose.models import EvoPose2D


def fit_one_epoch(model, callback):
    images = np.random.default_rng(0).normal(size=(2, 64, 48, 3))
    heatmaps = np.zeros((2, *model.output_shape[1:]), "float32")
    model.compile(optimizer="sgd", loss="mse")
    return model.fit(
        images.astype("float32"),
        heatmaps,
        epochs=2,
        batch_size=2,
        callbacks=[callback],
        verbose=0,
    )


def test_logs_latency_and_caches_it_per_architecture(tmp_path, monkeypatch):
    cache_path = tmp_path / "cache" / "latency.json"
    callback = LiteRTLatency(
        num_rounds=1, num_invokes=2, clock="cpu", cache_path=cache_path
    )
    model = EvoPose2D.from_preset("test")
    history = fit_one_epoch(model, copy.deepcopy(callback))
    latencies = history.history["latency_ms"]
    assert len(latencies) == 2 and latencies[0] == latencies[1] > 0
    cache = json.loads(cache_path.read_text())
    assert list(cache.values()) == [latencies[0]]

    # A fresh copy (as keras-tuner makes per trial) of the same
    # architecture reads the file and does not export again.
    def fail(self, model):
        raise AssertionError("measured again")

    monkeypatch.setattr(LiteRTLatency, "measure", fail)
    again = copy.deepcopy(callback)
    fit_one_epoch(EvoPose2D.from_preset("test"), again)
    assert again.latency_ms == latencies[0]
    other = EvoPose2D.from_preset("test", head_filters=[8, 8])
    assert again.cache_key(other) != again.cache_key(model)
    int8 = LiteRTLatency("int8", cache_path=cache_path)
    assert int8.cache_key(model) != again.cache_key(model)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="quantization"):
        LiteRTLatency("float16")
    with pytest.raises(ValueError, match="num_threads"):
        LiteRTLatency(num_threads=0)
    with pytest.raises(ValueError, match="clock"):
        LiteRTLatency(num_threads=2, clock="cpu")
    cache_path = tmp_path / "latency.json"
    cache_path.write_text("{not json")
    callback = LiteRTLatency(cache_path=cache_path)
    callback.set_model(EvoPose2D.from_preset("test"))
    with pytest.raises(ValueError, match="latency cache"):
        callback.on_train_begin()
