import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.losses.heatmap_mse import HeatmapMSE as HeatmapMSELoss


# Registered apart from the loss of the same name (a .keras file names
# its classes by registered name).
@keras_evopose_export(
    "keras_evopose.metrics.HeatmapMSE", registered_name="HeatmapMSEMetric"
)
class HeatmapMSE(keras.metrics.Metric):
    """The heatmap loss as a metric, without the regularization terms.

    Keras' `loss` and `val_loss` add the model's regularization losses
    (e.g. the L2 of `keras_evopose.training.evopose2d_regularizer`); the
    paper's fitness uses the validation heatmap error alone. This metric
    averages `keras_evopose.losses.HeatmapMSE` over the batches weighted by
    their sizes, exactly as Keras averages its loss, so with no regularizer
    `val_heatmap_mse` equals `val_loss`. Compile it as a weighted metric
    (`weighted_metrics=[HeatmapMSE()]`): Keras passes the target weights
    (`sample_weight`) only to those; under `metrics=` it would count the
    unlabelled joints too.

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
        # One definition of the error: the loss itself.
        self._error = HeatmapMSELoss(dtype=dtype)
        self.total = self.add_variable(
            shape=(), initializer="zeros", dtype=dtype, name="total"
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype=dtype, name="count"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        # Weighted by the batch size, as Keras' loss tracker weights the
        # loss of each batch.
        batch_size = keras.ops.cast(keras.ops.shape(y_pred)[0], self.dtype)
        loss = self._error(y_true, y_pred, sample_weight=sample_weight)
        self.total.assign_add(keras.ops.cast(loss, self.dtype) * batch_size)
        self.count.assign_add(batch_size)

    def result(self):
        return keras.ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
