import numpy as np
import pytest

from keras_evopose import export
from keras_evopose.models import EvoPose2D


@pytest.fixture
def test_model():
    return EvoPose2D.from_preset("test")


def images(count=6, seed=0):
    return (
        np.random.default_rng(seed)
        .normal(size=(count, 64, 48, 3))
        .astype("float32")
    )


def test_int8_file_is_full_integer_and_close_to_the_model(test_model, tmp_path):
    path = export.export_litert(
        test_model,
        tmp_path / "test_int8.tflite",
        quantization="int8",
        representative_data=images(16, seed=1),
    )
    dtypes = export.tensor_dtypes(path)
    assert set(dtypes) == {"int8", "int32"}, dtypes
    litert_model = export.LiteRTModel(path)
    assert litert_model.input_dtype == np.int8
    assert litert_model.output_dtype == np.int8
    assert litert_model.input_shape == (None, 64, 48, 3)
    assert litert_model.output_shape == (None, 32, 24, 17)
    # 5 images: not a multiple of the file's batch, and a batch of 2.
    expected = test_model.predict(images(5), verbose=0)
    actual = litert_model.predict(images(5), batch_size=2)
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    # Quantization noise (it adds up over the layers of a random-weight
    # net), not a broken graph.
    output_range = expected.max() - expected.min()
    error = np.abs(actual - expected)
    assert error.max() <= 0.1 * output_range
    assert error.mean() <= 0.02 * output_range
    assert np.corrcoef(actual.ravel(), expected.ravel())[0, 1] > 0.95


def test_float_file_equals_the_model(test_model, tmp_path):
    path = export.export_litert(
        test_model, tmp_path / "test_float.tflite", quantization=None
    )
    assert "int8" not in export.tensor_dtypes(path)
    actual = export.LiteRTModel(path).predict(images(3))
    expected = test_model.predict(images(3), verbose=0)
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=0)


def test_representative_data_forms():
    batch = images(4)
    from_array = export.litert.representative_samples(batch, 3)
    from_tuples = export.litert.representative_samples([(batch, None)], 10)
    from_dicts = export.litert.representative_samples([{"image": batch}], 10)
    assert [sample.shape for sample in from_array] == [(1, 64, 48, 3)] * 3
    assert len(from_tuples) == len(from_dicts) == 4
    np.testing.assert_array_equal(from_dicts[3], batch[3:4])


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"quantization": "int4"}, "quantization"),
        ({"quantization": "int8"}, "representative_data"),
        (
            {
                "quantization": "int8",
                "representative_data": np.zeros((1, 8, 8, 3)),
            },
            "shape",
        ),
    ],
)
def test_export_errors(test_model, tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        export.export_litert(test_model, tmp_path / "m.tflite", **arguments)
    with pytest.raises(ValueError, match="tflite"):
        export.export_litert(test_model, tmp_path / "m.bin", quantization=None)
