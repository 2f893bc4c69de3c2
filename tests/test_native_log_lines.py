"""What the README tells Python users about TensorFlow's native log
lines: TF_CPP_MIN_LOG_LEVEL=3 drops the cuInit and CPU-feature lines."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CODE = (
    "import numpy as np\n"
    "import keras_evopose\n"
    "model = keras_evopose.models.EvoPose2D.from_preset('test')\n"
    "model.predict(np.zeros((1, 64, 48, 3)), verbose=0)\n"
)


@pytest.mark.slow  # a fresh TensorFlow import: ~15 s, more under load
def test_tf_cpp_min_log_level_3_drops_the_cuinit_and_cpu_feature_lines():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    env.setdefault("KERAS_HOME", str(ROOT / ".keras_home"))
    env.pop("KERAS_BACKEND", None)
    result = subprocess.run(
        [sys.executable, "-c", CODE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for line in result.stderr.splitlines():
        assert not line.startswith(("E0000", "W0000")), line
        assert "cuInit" not in line and "cpu_feature_guard" not in line, line
