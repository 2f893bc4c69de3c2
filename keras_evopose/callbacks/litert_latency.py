import hashlib
import json
import os
import platform
import tempfile
import time

import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.utils.validation import check_positive_int

QUANTIZATIONS = ("float32", "int8")


def _without_names(config):
    """The config with every `name` entry dropped (names cost no time)."""
    if isinstance(config, dict):
        return {
            key: _without_names(value)
            for key, value in config.items()
            if key != "name"
        }
    if isinstance(config, (list, tuple)):
        return [_without_names(value) for value in config]
    return config


@keras_evopose_export("keras_evopose.callbacks.LiteRTLatency")
class LiteRTLatency(keras.callbacks.Callback):
    """Logs the model's measured LiteRT latency as an objective.

    In `on_train_begin` the model being trained is exported with
    `keras_evopose.export.export_litert` (one image, float32 or full-integer
    int8, the default head rewrite) and timed under the LiteRT interpreter
    on this machine (`keras_evopose.export.measure_litert_latency`). The
    median milliseconds per image are added to every epoch's logs as
    `latency_ms` (and kept in `self.latency_ms`), so a keras-tuner oracle
    can optimise it, e.g. `keras_tuner.Objective("latency_ms", "min")`
    next to an accuracy objective of `EvolutionOracle`.

    Latency depends on the architecture, not on the weights, so results
    are cached per architecture: the key hashes the model's config
    (for `EvoPose2D`, the genotype, input size and head) with the
    quantization, thread count and machine name. With `cache_path` the
    cache is a JSON file that every copy of the callback shares
    (keras-tuner deep-copies callbacks per trial, and distributed workers
    on the same machine can share it); without it, only this instance
    remembers. The cost per uncached trial is one export and the timed
    runs (measured in docs/benchmarks.md); a cached trial costs one config
    hash.

    Needs the TensorFlow backend (the LiteRT converter is TensorFlow's).
    The int8 calibration uses random normal images: it sets quantization
    ranges, which do not change the timing.

    Args:
        quantization: `"float32"` or `"int8"`. Defaults to `"float32"`.
        num_threads: int, interpreter threads. Defaults to 1.
        num_rounds: int, timed rounds (the median is logged). Defaults to 5.
        num_invokes: int, calls per round. Defaults to 5.
        clock: `"wall"` or `"cpu"` (CPU time of the timing thread, not
            inflated by other jobs sharing the machine; needs
            `num_threads=1`), as `measure_litert_latency`. Defaults to
            `"wall"`.
        cache_path: path of a JSON cache file, or `None`. Defaults to
            `None`.
        verbose: bool, print the latency and what it cost. Defaults to
            `False`.

    Example:

    ```python
    tuner.search(
        train_data,
        validation_data=val_data,
        epochs=5,
        callbacks=[
            keras_evopose.callbacks.LiteRTLatency(
                "int8", cache_path="search/latency_cache.json"
            )
        ],
    )
    ```
    """

    def __init__(
        self,
        quantization="float32",
        num_threads=1,
        num_rounds=5,
        num_invokes=5,
        clock="wall",
        cache_path=None,
        verbose=False,
    ):
        super().__init__()
        if quantization not in QUANTIZATIONS:
            raise ValueError(
                f"LiteRTLatency: `quantization` must be one of "
                f"{QUANTIZATIONS}. Received: quantization={quantization!r}"
            )
        for name, value in (
            ("num_threads", num_threads),
            ("num_rounds", num_rounds),
            ("num_invokes", num_invokes),
        ):
            check_positive_int(name, value, owner="LiteRTLatency")
        if clock not in ("wall", "cpu") or (
            clock == "cpu" and num_threads != 1
        ):
            raise ValueError(
                "LiteRTLatency: `clock` must be 'wall' or 'cpu', and 'cpu' "
                f"needs num_threads=1. Received: clock={clock!r}, "
                f"num_threads={num_threads}"
            )
        self.quantization = quantization
        self.clock = clock
        self.num_threads = num_threads
        self.num_rounds = num_rounds
        self.num_invokes = num_invokes
        self.cache_path = None if cache_path is None else str(cache_path)
        self.verbose = verbose
        self.latency_ms = None
        self.seconds_spent = None
        self._cache = {}

    def cache_key(self, model):
        """A hash of the architecture and the timing settings."""
        description = json.dumps(
            {
                "config": _without_names(model.get_config()),
                "input_shape": list(model.input_shape),
                "quantization": self.quantization,
                "num_threads": self.num_threads,
                "clock": self.clock,
                "machine": platform.node(),
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(description.encode()).hexdigest()

    def _read_cache(self):
        if self.cache_path is None or not os.path.exists(self.cache_path):
            return dict(self._cache)
        try:
            with open(self.cache_path) as file:
                return {**self._cache, **json.load(file)}
        except (OSError, ValueError) as error:
            raise ValueError(
                f"LiteRTLatency: cannot read the latency cache "
                f"{self.cache_path} ({error}). Delete it to start afresh."
            ) from None

    def _write_cache(self, key, latency_ms):
        self._cache[key] = latency_ms
        if self.cache_path is None:
            return
        entries = self._read_cache()
        entries[key] = latency_ms
        directory = os.path.dirname(os.path.abspath(self.cache_path))
        os.makedirs(directory, exist_ok=True)
        # Write then rename, so a concurrent reader never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".json")
        with os.fdopen(handle, "w") as file:
            json.dump(entries, file, indent=1, sort_keys=True)
        os.replace(temporary, self.cache_path)

    def measure(self, model):
        """Exports `model`, times it and returns the median ms per image."""
        import numpy as np

        from keras_evopose.export import export_litert
        from keras_evopose.export import measure_litert_latency

        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                "LiteRTLatency needs the TensorFlow backend (the LiteRT "
                f"converter is TensorFlow's). Received backend: "
                f"{keras.backend.backend()}. Set KERAS_BACKEND=tensorflow."
            )
        image_shape = tuple(model.input_shape[1:])
        images = np.random.default_rng(0).normal(size=(4, *image_shape))
        with tempfile.TemporaryDirectory() as directory:
            path = export_litert(
                model,
                os.path.join(directory, "latency.tflite"),
                quantization=None if self.quantization == "float32" else "int8",
                representative_data=images.astype("float32"),
                num_calibration_samples=4,
            )
            return measure_litert_latency(
                path,
                self.num_threads,
                self.num_rounds,
                self.num_invokes,
                clock=self.clock,
            )

    def on_train_begin(self, logs=None):
        started = time.perf_counter()
        key = self.cache_key(self.model)
        cached = self._read_cache().get(key)
        if cached is None:
            self.latency_ms = float(self.measure(self.model))
            self._write_cache(key, self.latency_ms)
        else:
            self.latency_ms = float(cached)
        self.seconds_spent = time.perf_counter() - started
        if self.verbose:
            source = "cached" if cached is not None else "measured"
            print(
                f"LiteRTLatency: {self.latency_ms:.2f} ms ({self.quantization}"
                f", {self.num_threads} thread(s), {self.clock} clock, "
                f"{source} in "
                f"{self.seconds_spent:.1f} s)"
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.latency_ms is not None:
            logs["latency_ms"] = self.latency_ms
