import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.losses.heatmap_mse import HeatmapMSE as HeatmapMSELoss


@keras_evopose_export("keras_evopose.metrics.HeatmapMSE")
class HeatmapMSE(keras.metrics.Metric):
    """The heatmap loss as a metric, without the regularization terms.

    Keras' `loss` and `val_loss` add the model's regularization losses
    (e.g. the L2 of `keras_evopose.training.evopose2d_regularizer`); the
    paper's fitness uses the validation heatmap error alone. This metric
    accumulates exactly `keras_evopose.losses.HeatmapMSE` over all batches
    (the target-weighted squared error summed, divided by the number of
    heatmap elements), so with no regularizer `val_heatmap_mse` equals
    `val_loss`.

    Args:
        name: str. Defaults to `"heatmap_mse"` (logged as
            `val_heatmap_mse` on validation data).
        dtype: dtype of the accumulators. Defaults to `"float32"`.

    Example:

    >>> metric = keras_evopose.metrics.HeatmapMSE()
    >>> metric.update_state(
    ...     keras.ops.zeros((1, 2, 2, 2)), keras.ops.ones((1, 2, 2, 2)),
    ...     sample_weight=[[[[1.0, 0.0]]]])
    >>> float(metric.result())
    0.5
    """

    def __init__(self, name="heatmap_mse", dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        # One definition of the error: the loss, summed.
        self._error = HeatmapMSELoss(reduction="sum", dtype=dtype)
        self.total = self.add_variable(
            shape=(), initializer="zeros", dtype=dtype, name="total"
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype=dtype, name="count"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.total.assign_add(
            keras.ops.cast(
                self._error(y_true, y_pred, sample_weight=sample_weight),
                self.dtype,
            )
        )
        size = keras.ops.size(y_pred)
        self.count.assign_add(keras.ops.cast(size, self.dtype))

    def result(self):
        return keras.ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
