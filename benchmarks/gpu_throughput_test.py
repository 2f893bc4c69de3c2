import importlib.util
import math
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent


def load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "gpu_throughput", HERE / "gpu_throughput.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_simple_baseline_r50_matches_the_published_size():
    model = load_benchmark().simple_baseline_r50((256, 192, 3))
    assert model.output_shape == (None, 64, 48, 17)
    # 34.0M parameters (PyTorch count: no BN statistics) as published
    # for SimpleBaseline-R50 at 256x192.
    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    assert round(trainable / 1e6, 1) == 34.0, trainable


@pytest.mark.slow
def test_quick_run_prints_a_table(tmp_path):
    pytest.importorskip("jax")
    json_path = tmp_path / "throughput.json"
    result = subprocess.run(
        [
            sys.executable,
            str(HERE / "gpu_throughput.py"),
            "--quick",
            "--no-baseline",
            # float32 is the same code path; one policy keeps CI short.
            "--precisions",
            "mixed_bfloat16",
            "--json",
            str(json_path),
        ],
        env=dict(os.environ, KERAS_BACKEND="jax"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| EvoPose2D-test | 64x48 | 16,921 |" in result.stdout
    assert "jax: " in result.stdout
    import json

    rows = json.loads(json_path.read_text())["results"]
    rates = rows["EvoPose2D-test"]["mixed_bfloat16"]
    assert rates["inference"] > 0 and rates["training"] > 0
