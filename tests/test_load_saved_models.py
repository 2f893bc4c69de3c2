"""`import keras_evopose` is all `keras.saving.load_model` needs for any
file the library writes, and loading warns about nothing."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_evopose.data import KeypointLayout
from keras_evopose.losses import HeatmapMSE
from keras_evopose.metrics import HeatmapMSE as HeatmapMSEMetric
from keras_evopose.models import EvoPose2D
from keras_evopose.search.coco_search import save_model
from keras_evopose.training import evopose2d_optimizer

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_in_fresh_process(paths):
    """Loads `paths` in a new interpreter that imports only keras_evopose;
    returns its report lines and the warnings it recorded."""
    script = textwrap.dedent(
        f"""
        import warnings
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import keras
            import keras_evopose
            for path in {[str(path) for path in paths]!r}:
                model = keras.saving.load_model(path)
                print("LOADED", type(model).__name__,
                      model.keypoint_layout.names[1])
        for warning in caught:
            print("WARNING", warning.category.__name__, warning.message)
        """
    )
    environment = {
        **os.environ,
        "PYTHONPATH": REPOSITORY,
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    return [line for line in lines if line.startswith(("LOADED", "WARNING"))]


def compiled_model(optimizer):
    layout = KeypointLayout.from_names(["nose", "l_eye", "r_eye"])
    model = EvoPose2D.from_preset("test", keypoint_layout=layout)
    model.compile(
        optimizer=optimizer,
        loss=HeatmapMSE(),
        weighted_metrics=[HeatmapMSEMetric()],
    )
    return model


@pytest.mark.slow
def test_trained_and_searched_models_load_with_keras_evopose_alone(tmp_path):
    # As `train` saves: fitted, with the recipe's optimizer and schedule.
    trained = compiled_model(evopose2d_optimizer(2, 1, 2, warmup_epochs=1))
    trained.fit(
        np.zeros((2, 64, 48, 3), "float32"),
        np.zeros((2, 32, 24, 3), "float32"),
        epochs=1,
        verbose=0,
    )
    trained.save(tmp_path / "trained.keras")
    # As `search` saves best_model.keras: weights restored from a
    # checkpoint into a model compiled with an optimizer that never ran.
    save_model(compiled_model(keras.optimizers.Adam()), tmp_path / "best.keras")
    lines = load_in_fresh_process(
        [tmp_path / "trained.keras", tmp_path / "best.keras"]
    )
    assert lines == ["LOADED EvoPose2D l_eye"] * 2, lines
