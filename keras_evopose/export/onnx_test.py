import json

import numpy as np
import pytest

from keras_evopose import export
from keras_evopose.models import EvoPose2D

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")


def images(count, seed=0):
    return (
        np.random.default_rng(seed)
        .normal(size=(count, 64, 48, 3))
        .astype("float32")
    )


def test_onnx_file_equals_the_model_and_carries_its_contract(tmp_path):
    model = EvoPose2D.from_preset("test")  # never called: export still works
    path = export.export_onnx(model, tmp_path / "test.onnx")
    onnx_model = export.ONNXModel(path, num_threads=1)
    assert onnx_model.input_shape == (None, 64, 48, 3)
    assert onnx_model.output_shape == (None, 32, 24, 17)
    assert onnx_model.keypoint_layout == model.keypoint_layout
    assert onnx_model.sample_options == model.sample_options
    # 5 images in batches of 2: the batch dimension is dynamic.
    expected = model.predict(images(5), verbose=0)
    actual = onnx_model.predict(images(5), batch_size=2)
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * scale)
    # Nothing but the file and its contract: the temporary file is gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "test.contract.json",
        "test.onnx",
    ]
    with pytest.raises(ValueError, match="shape"):
        onnx_model(np.zeros((1, 32, 32, 3), "float32"))
    # A contract without the model's fields, then a garbled one.
    (tmp_path / "test.contract.json").write_text(json.dumps({"x": 1}))
    assert export.ONNXModel(path).keypoint_layout is None
    (tmp_path / "test.contract.json").write_text('{"keypoint_layout": 3}')
    with pytest.raises(ValueError, match="test.contract.json"):
        export.ONNXModel(path)


def test_a_failed_export_leaves_the_previous_file(tmp_path, monkeypatch):
    model = EvoPose2D.from_preset("test")
    path = tmp_path / "test.onnx"
    path.write_bytes(b"previous")

    def fail(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(type(model), "export", fail)
    with pytest.raises(RuntimeError, match="converter"):
        export.export_onnx(model, path, rewrite_head=False)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["test.onnx"]


def test_export_onnx_argument_errors(tmp_path, monkeypatch):
    model = EvoPose2D.from_preset("test")
    with pytest.raises(ValueError, match=r"\.onnx"):
        export.export_onnx(model, tmp_path / "test.tflite")
    monkeypatch.setattr(
        export.onnx, "missing_onnx_packages", lambda: ["tf2onnx"]
    )
    with pytest.raises(ImportError, match=r"tf2onnx.*\[onnx\]"):
        export.export_onnx(model, tmp_path / "test.onnx")
