import keras
import numpy as np
import pytest

from keras_evopose.losses import HeatmapMSE as HeatmapMSELoss
from keras_evopose.metrics import HeatmapMSE


def test_equals_the_loss_over_batches_and_serializes():
    rng = np.random.default_rng(0)
    batches = [
        (
            rng.normal(size=(n, 4, 3, 2)).astype("float32"),
            rng.normal(size=(n, 4, 3, 2)).astype("float32"),
            rng.integers(0, 2, size=(n, 1, 1, 2)).astype("float32"),
        )
        for n in (3, 3, 2)
    ]
    metric = HeatmapMSE()
    for y_true, y_pred, weight in batches:
        metric.update_state(y_true, y_pred, sample_weight=weight)
    # Keras' val_loss: the loss of each batch, averaged by batch size.
    loss = HeatmapMSELoss()
    expected = sum(
        float(loss(t, p, sample_weight=w)) * len(t) for t, p, w in batches
    ) / sum(len(t) for t, _, _ in batches)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    again = HeatmapMSE.from_config(metric.get_config())
    assert again.name == "heatmap_mse"
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_val_heatmap_mse_leaves_out_the_l2_terms():
    model = keras.Sequential(
        [
            keras.Input((2, 2, 1)),
            keras.layers.Conv2D(
                1, 1, kernel_regularizer=keras.regularizers.L2(0.1)
            ),
        ]
    )
    model.compile(
        optimizer="sgd",
        loss=HeatmapMSELoss(),
        weighted_metrics=[HeatmapMSE()],
    )
    x = np.linspace(1, 2, 20, dtype="float32").reshape(5, 2, 2, 1)
    # Target weights (some joints unlabelled) and a partial last batch.
    weights = np.array([1, 0, 1, 1, 0], "float32").reshape(5, 1, 1, 1)
    logs = model.evaluate(
        x,
        np.zeros_like(x),
        sample_weight=weights,
        batch_size=2,
        return_dict=True,
        verbose=0,
    )
    l2 = float(sum(keras.ops.convert_to_numpy(t) for t in model.losses))
    assert l2 > 0
    assert logs["heatmap_mse"] == pytest.approx(logs["loss"] - l2, rel=1e-4)
