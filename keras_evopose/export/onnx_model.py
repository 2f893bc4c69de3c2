"""Runs an `.onnx` heatmap model like a Keras model (ONNX Runtime)."""

import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.export.litert_model import read_contract


@keras_evopose_export("keras_evopose.export.ONNXModel")
class ONNXModel:
    """An `.onnx` file under ONNX Runtime (CPU), with a Keras-like API.

    The inverse of `export_onnx`, and `LiteRTModel`'s twin: `predict`
    and `predict_on_batch` take float images and return float32 heatmaps,
    `input_shape` and `output_shape` read `(None, H, W, C)` like a Keras
    model's, so `keras_evopose.metrics.evaluate_coco` scores the file as
    it scores the Keras model. The data contract `export_onnx` writes
    beside the file (`<name>.contract.json`) becomes `sample_options` and
    `keypoint_layout` (`None` without one).

    Args:
        path: an `.onnx` file with one image input and one heatmap output.
        num_threads: int or `None`, ONNX Runtime intra-op threads
            (`None`: its default, one per core).

    Example:

    ```python
    onnx_model = keras_evopose.export.ONNXModel("small.onnx")
    heatmaps = onnx_model.predict(images)  # float32, like model.predict
    keras_evopose.metrics.evaluate_coco(onnx_model, annotations, images_dir)
    ```
    """

    def __init__(self, path, num_threads=None):
        import onnxruntime

        self.path = str(path)
        self.num_threads = num_threads
        options = onnxruntime.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
        self.session = onnxruntime.InferenceSession(
            self.path, options, providers=["CPUExecutionProvider"]
        )
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                "ONNXModel: expected one input and one output tensor. "
                f"Received: {len(inputs)} inputs and {len(outputs)} outputs "
                f"in {self.path}."
            )
        self.input_detail = inputs[0]
        self.output_detail = outputs[0]
        self.sample_options, self.keypoint_layout = read_contract(self.path)

    @staticmethod
    def _shape(detail):
        # Symbolic (batch) dimensions are names in ONNX, not ints.
        return (
            None,
            *(v if isinstance(v, int) else None for v in detail.shape[1:]),
        )

    @property
    def input_shape(self):
        return self._shape(self.input_detail)

    @property
    def output_shape(self):
        return self._shape(self.output_detail)

    def predict_on_batch(self, images):
        """Float32 heatmaps `(N, h, w, K)` for float images `(N, H, W, C)`."""
        images = np.asarray(images, "float32")
        if images.shape[1:] != self.input_shape[1:]:
            raise ValueError(
                f"ONNXModel: the file takes images of shape "
                f"{self.input_shape[1:]}. Received: {images.shape[1:]}"
            )
        (heatmaps,) = self.session.run(
            [self.output_detail.name], {self.input_detail.name: images}
        )
        return np.asarray(heatmaps, "float32")

    def predict(self, images, batch_size=32):
        """Like `keras.Model.predict` on an array of images."""
        images = np.asarray(images, "float32")
        return np.concatenate(
            [
                self.predict_on_batch(images[start : start + batch_size])
                for start in range(0, len(images), batch_size)
            ]
        )

    def __call__(self, images):
        return self.predict_on_batch(images)
