"""The examples' `--quick` modes run (CI runs them through this file)."""

import importlib.util
import pathlib

import pytest

HERE = pathlib.Path(__file__).resolve().parent


def load(name):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compose_backbone_quick():
    model = load("compose_backbone").main(["--quick"])
    assert model.output_shape[1:] == (32, 24, 17)
    assert any(layer.name == "up0_conv" for layer in model.layers)


@pytest.mark.slow
def test_search_with_keras_tuner_quick(tmp_path):
    oracle = load("search_with_keras_tuner").main(
        ["--quick", "--directory", str(tmp_path)]
    )
    statuses = [trial.status for trial in oracle.trials.values()]
    assert statuses == ["COMPLETED"] * 2
    assert oracle.pareto_front()
