import importlib.util
import json
import pathlib

import keras
import pytest

HERE = pathlib.Path(__file__).resolve().parent


def load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "edge_latency", HERE / "edge_latency.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parts_of_a_network_in_order():
    from keras_evopose.models import EvoPose2D
    from keras_evopose.models import build_flat_model

    model = EvoPose2D.from_preset("test")
    ends = load_benchmark().part_ends(build_flat_model(model, keras), 3)
    assert [part for part, _ in ends] == [
        "stem",
        "stage1",
        "stage2",
        "stage3",
        "stage4",
        "head deconv1",
        "head deconv2",
        "head deconv3",
        "head final conv",
    ]
    assert ends[4][1] == "stage4_block1_project_bn"


@pytest.mark.slow
def test_quick_run_prints_tables(tmp_path, capsys):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("LiteRT export needs the TensorFlow backend")
    json_path = tmp_path / "edge.json"
    load_benchmark().main(["--quick", "--jit", "off", "--json", str(json_path)])
    printed = capsys.readouterr().out
    assert "| test | " in printed
    assert "latency ratio test (transposed head) / model" in printed
    results = json.loads(json_path.read_text())
    assert results["latency_ms"]["test float32 1T"] > 0
    assert results["latency_ms"]["test (transposed head) int8 1T cpu"] > 0
    assert results["int8_bytes"]["test"] > 0
    assert results["train_images_per_s"]["test jit off wall"] > 0
