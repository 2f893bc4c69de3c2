import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.utils.validation import check_positive_int


@keras_evopose_export("keras_evopose.callbacks.COCOEvaluation")
class COCOEvaluation(keras.callbacks.Callback):
    """Writes COCO keypoint AP/AR into the epoch logs.

    At the end of every `frequency`-th epoch it runs
    `keras_evopose.metrics.evaluate_coco` on the model and adds
    `{prefix}ap`, `{prefix}ap50`, `{prefix}ap75`, `{prefix}ap_medium`,
    `{prefix}ap_large`, `{prefix}ar`, ... to the logs, so `EarlyStopping`,
    `ModelCheckpoint`, `History` and keras-tuner objectives can use them.
    Put it before those callbacks in the list. It holds only paths and
    numbers (no dataset), so `copy.deepcopy` (keras-tuner) is safe.

    Args:
        annotations: ground-truth COCO keypoints JSON.
        images: image folder.
        detections: optional COCO results JSON of person boxes.
        input_size: `(height, width)`; defaults to the model's input.
        batch_size: int. Defaults to 32.
        flip_test: bool. Defaults to `False` (cheaper during training).
        refinement: `"quarter_offset"`, `"dark"` or `"none"`.
        heatmap_peak: float, the training targets' peak. Defaults to the
            model's `sample_options` (255).
        frequency: int, evaluate after every `frequency`-th epoch only.
        prefix: str, prefix of the log keys. Defaults to `"val_"`.
        options: a `SampleOptions` replacing the model's (crop padding,
            fill, sigma). Defaults to the model's data contract.
        keypoint_layout: a `KeypointLayout` replacing the model's (flip
            pairs, OKS sigmas).

    Example:

    ```python
    callback = keras_evopose.callbacks.COCOEvaluation(
        "annotations/person_keypoints_val2017.json", "val2017")
    model.fit(train_ds, epochs=10, callbacks=[
        callback, keras.callbacks.EarlyStopping("val_ap", mode="max")])
    ```
    """

    def __init__(
        self,
        annotations,
        images,
        detections=None,
        input_size=None,
        batch_size=32,
        flip_test=False,
        refinement="quarter_offset",
        heatmap_peak=None,
        frequency=1,
        prefix="val_",
        options=None,
        keypoint_layout=None,
    ):
        super().__init__()
        check_positive_int("frequency", frequency, integral_floats=True)
        self.annotations = str(annotations)
        self.images = str(images)
        self.detections = None if detections is None else str(detections)
        self.input_size = None if input_size is None else tuple(input_size)
        self.batch_size = int(batch_size)
        self.flip_test = bool(flip_test)
        self.refinement = refinement
        self.heatmap_peak = (
            None if heatmap_peak is None else float(heatmap_peak)
        )
        self.options = options
        self.keypoint_layout = keypoint_layout
        self.frequency = int(frequency)
        self.prefix = prefix

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.frequency:
            return
        from keras_evopose.metrics import evaluate_coco

        stats = evaluate_coco(
            self.model,
            self.annotations,
            self.images,
            detections=self.detections,
            input_size=self.input_size,
            batch_size=self.batch_size,
            flip_test=self.flip_test,
            refinement=self.refinement,
            heatmap_peak=self.heatmap_peak,
            options=self.options,
            keypoint_layout=self.keypoint_layout,
        )
        if logs is not None:
            logs.update({self.prefix + name: v for name, v in stats.items()})
