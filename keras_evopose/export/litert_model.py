"""Runs a `.tflite` heatmap model like a Keras model."""

import numpy as np

from keras_evopose.api_export import keras_evopose_export


def read_contract(path):
    """`(SampleOptions or None, KeypointLayout or None)` from the contract
    written beside the `.tflite` or `.onnx` file at `path`, if any."""
    import json
    import os

    from keras_evopose.data.keypoint_layout import KeypointLayout
    from keras_evopose.data.sample_options import SampleOptions
    from keras_evopose.export.litert import CONTRACT_SUFFIX

    stem, extension = os.path.splitext(str(path))
    contract_path = stem + CONTRACT_SUFFIX
    if extension not in (".tflite", ".onnx") or not os.path.exists(
        contract_path
    ):
        return None, None
    try:
        with open(contract_path) as handle:
            contract = json.load(handle)
        options = contract.get("sample_options")
        layout = contract.get("keypoint_layout")
        return (
            None if options is None else SampleOptions.from_config(options),
            None if layout is None else KeypointLayout.from_config(layout),
        )
    except (ValueError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{contract_path} is not a data contract written by "
            f"keras-evopose export ({error}); delete it or export again"
        ) from None


@keras_evopose_export("keras_evopose.export.LiteRTModel")
class LiteRTModel:
    """A `.tflite` file under the LiteRT interpreter, with a Keras-like API.

    `predict` and `predict_on_batch` take float images and return float
    heatmaps whatever the file's I/O types: int8 inputs are quantized with
    the file's input scale and zero point, int8 outputs dequantized. Images
    run one at a time when the file has a fixed batch of 1 (as
    `export_litert` writes it). `input_shape` and `output_shape` read
    `(None, H, W, C)` like a Keras model's, so
    `keras_evopose.metrics.evaluate_coco` scores the file exactly as it
    scores the Keras model. The data contract `export_litert` writes
    beside the file (`<name>.contract.json`) becomes `sample_options`
    and `keypoint_layout` (`None` without one).

    Args:
        path: a `.tflite` file with one image input and one heatmap output.
        num_threads: int or `None`, interpreter threads.

    Example:

    ```python
    litert_model = keras_evopose.export.LiteRTModel("small_int8.tflite")
    heatmaps = litert_model.predict(images)  # float32, like model.predict
    keras_evopose.metrics.evaluate_coco(litert_model, annotations, images_dir)
    ```
    """

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = str(path)
        self.num_threads = num_threads
        self.interpreter = Interpreter(
            model_path=self.path, num_threads=num_threads
        )
        self.interpreter.allocate_tensors()
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                "LiteRTModel: expected one input and one output tensor. "
                f"Received: {len(inputs)} inputs and {len(outputs)} outputs "
                f"in {self.path}."
            )
        self.input_detail = inputs[0]
        self.output_detail = outputs[0]
        self.batch_size = int(self.input_detail["shape"][0])
        self.sample_options, self.keypoint_layout = read_contract(self.path)

    @property
    def input_shape(self):
        return (None, *(int(v) for v in self.input_detail["shape"][1:]))

    @property
    def output_shape(self):
        return (None, *(int(v) for v in self.output_detail["shape"][1:]))

    @property
    def input_dtype(self):
        return np.dtype(self.input_detail["dtype"])

    @property
    def output_dtype(self):
        return np.dtype(self.output_detail["dtype"])

    def _quantize(self, images):
        dtype = self.input_dtype
        if not np.issubdtype(dtype, np.integer):
            return images.astype(dtype)
        scale, zero_point = self.input_detail["quantization"]
        info = np.iinfo(dtype)
        values = np.round(images / scale + zero_point)
        return np.clip(values, info.min, info.max).astype(dtype)

    def _dequantize(self, outputs):
        if not np.issubdtype(outputs.dtype, np.integer):
            return outputs.astype("float32")
        scale, zero_point = self.output_detail["quantization"]
        return ((outputs.astype("float32") - zero_point) * scale).astype(
            "float32"
        )

    def predict_on_batch(self, images):
        """Float heatmaps `(N, h, w, K)` for float images `(N, H, W, C)`."""
        images = np.asarray(images, "float32")
        if images.shape[1:] != self.input_shape[1:]:
            raise ValueError(
                f"LiteRTModel: the file takes images of shape "
                f"{self.input_shape[1:]}. Received: {images.shape[1:]}"
            )
        outputs = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            count = len(chunk)
            if count < self.batch_size:
                padding = np.zeros(
                    (self.batch_size - count, *chunk.shape[1:]), "float32"
                )
                chunk = np.concatenate([chunk, padding])
            self.interpreter.set_tensor(
                self.input_detail["index"], self._quantize(chunk)
            )
            self.interpreter.invoke()
            output = self.interpreter.get_tensor(self.output_detail["index"])
            outputs.append(self._dequantize(output)[:count])
        return np.concatenate(outputs)

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
