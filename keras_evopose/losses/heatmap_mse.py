import keras

from keras_evopose.api_export import keras_evopose_export


@keras_evopose_export("keras_evopose.losses.HeatmapMSE")
class HeatmapMSE(keras.losses.Loss):
    """Target-weighted heatmap mean squared error (the paper's loss).

    `call` returns the per-pixel squared error `(batch, h, w, K)`; Keras
    multiplies it by the sample weight, which carries the per-joint target
    weights with shape `(batch, 1, 1, K)` (the third element of the batches
    of `keras_evopose.data.coco_keypoints_dataset`), and divides the sum by
    the number of elements `batch * h * w * K`. So an unlabelled joint
    contributes zeros but still counts in the denominator, as in the
    reference. Predictions are cast to float32 first (mixed precision).

    Args:
        reduction: Keras loss reduction. Defaults to
            `"sum_over_batch_size"` (the mean over all elements).
        name: str. Defaults to `"heatmap_mse"`.
        dtype: dtype of the computation. Defaults to `"float32"`.

    Example:

    >>> loss = keras_evopose.losses.HeatmapMSE()
    >>> y_true = keras.ops.zeros((1, 2, 2, 2))
    >>> y_pred = keras.ops.ones((1, 2, 2, 2))
    >>> float(loss(y_true, y_pred, sample_weight=[[[[1.0, 0.0]]]]))
    0.5
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="heatmap_mse",
        dtype="float32",
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_pred = keras.ops.cast(y_pred, self.dtype)
        y_true = keras.ops.cast(y_true, self.dtype)
        return keras.ops.square(y_pred - y_true)

    def get_config(self):
        return {
            "reduction": self.reduction,
            "name": self.name,
            "dtype": self.dtype,
        }
