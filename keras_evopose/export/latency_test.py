import keras
import pytest

from keras_evopose.export import export_litert
from keras_evopose.export import measure_litert_latency


@pytest.fixture
def tiny_tflite(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("LiteRT export needs the TensorFlow backend")
    inputs = keras.Input((16, 12, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    return export_litert(model, tmp_path / "tiny.tflite", quantization=None)


def test_median_per_file_in_both_clocks(tiny_tflite):
    wall = measure_litert_latency(tiny_tflite, num_rounds=2, num_invokes=2)
    assert isinstance(wall, float) and wall > 0
    both = measure_litert_latency(
        [tiny_tflite, tiny_tflite], num_rounds=1, num_invokes=2, clock="cpu"
    )
    assert len(both) == 2 and all(value >= 0 for value in both)


def test_bad_arguments(tiny_tflite):
    with pytest.raises(ValueError, match="num_rounds"):
        measure_litert_latency(tiny_tflite, num_rounds=0)
    with pytest.raises(ValueError, match="clock"):
        measure_litert_latency(tiny_tflite, clock="gpu")
    with pytest.raises(ValueError, match="num_threads=1"):
        measure_litert_latency(tiny_tflite, num_threads=2, clock="cpu")
