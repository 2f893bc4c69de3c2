"""LiteRT (TFLite) export with post-training quantization.

The conversion goes through Keras' own `model.export(format="litert")`,
which hands extra keyword arguments to the TFLite converter. TensorFlow is
imported inside the functions (the converter needs it; running the file
only needs `ai_edge_litert`).
"""

import collections
import itertools
import os

import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.utils.state_files import write_json_atomically

QUANTIZATION_MODES = ("int8", "float16", None)
# Beside `name.tflite`: the model's data contract (see `export_litert`).
CONTRACT_SUFFIX = ".contract.json"


def _image_batches(representative_data):
    """Yields float32 image batches from arrays, datasets or iterables.

    Accepts an array `(N, H, W, 3)`, or an iterable (a `tf.data.Dataset`
    too) of arrays, of `(images, ...)` tuples or of dicts with `"image"`.
    """
    if hasattr(representative_data, "shape"):
        yield np.asarray(representative_data, "float32")
        return
    for element in representative_data:
        if isinstance(element, dict):
            element = element["image"]
        elif isinstance(element, (tuple, list)):
            element = element[0]
        yield np.asarray(element, "float32")


def representative_samples(representative_data, num_samples):
    """Up to `num_samples` single images `(1, H, W, 3)` from the data."""
    singles = (
        batch[index : index + 1]
        for batch in _image_batches(representative_data)
        for index in range(len(batch))
    )
    return list(itertools.islice(singles, num_samples))


@keras_evopose_export("keras_evopose.export.export_litert")
def export_litert(
    model,
    path,
    quantization="int8",
    representative_data=None,
    num_calibration_samples=100,
    verbose=False,
    rewrite_head=True,
):
    """Writes `model` as a LiteRT `.tflite` file, optionally quantized.

    The model's data contract (an `EvoPose2D`'s `sample_options` and
    `keypoint_layout`) is written beside the file as
    `<name>.contract.json`, which `LiteRTModel` reads, so the exported
    file is cropped, flipped and scored like the model.

    The input signature is fixed to one image `(1, H, W, 3)`: a dynamic
    batch would leave SHAPE/PACK/STRIDED_SLICE ops (from the transposed
    convs' output shape) in the graph. With `quantization="int8"` the
    file is full-integer: weights and activations int8 (biases int32),
    calibrated on `representative_data`, with int8 input and output
    tensors (`LiteRTModel` quantizes and dequantizes them). With
    `"float16"` the weights are stored as float16 and the I/O stays
    float32; with `None` the file is plain float32.

    Args:
        model: a Keras model (TensorFlow backend) with a fixed input size,
            e.g. an `EvoPose2D`.
        path: output path, must end with `.tflite`.
        quantization: `"int8"`, `"float16"` or `None`.
        representative_data: images the model takes (already normalized,
            see `keras_evopose.data.normalize_image`), used to calibrate
            the int8 ranges: an array `(N, H, W, 3)`, or an iterable /
            `tf.data.Dataset` of image batches, of `(images, ...)` tuples
            or of dicts with an `"image"` entry (such as
            `keras_evopose.data.coco_keypoints_dataset`). Required for
            `"int8"`, ignored otherwise.
        num_calibration_samples: int, how many single images of
            `representative_data` calibrate the ranges. Defaults to 100.
        verbose: bool, let Keras print the path it wrote.
        rewrite_head: bool, export `inference_model(model)`: every
            transposed conv of a `DeconvHead` computed as dense phase
            convolutions + depth-to-space with its BN folded in. Same
            heatmaps (to float rounding), faster under LiteRT (measured in
            docs/benchmarks.md). Defaults to `True`.

    Returns:
        The path written, as a string.

    Raises:
        ValueError: for an unknown `quantization`, a missing or empty
            `representative_data`, a path without `.tflite`, or a model
            without a fixed input size.

    Example:

    ```python
    model = keras_evopose.models.EvoPose2D.from_preset("test")
    images = np.random.normal(size=(8, 64, 48, 3)).astype("float32")
    keras_evopose.export.export_litert(
        model, "test_int8.tflite", representative_data=images
    )
    heatmaps = keras_evopose.export.LiteRTModel("test_int8.tflite").predict(
        images
    )
    ```
    """
    import keras

    if quantization not in QUANTIZATION_MODES:
        raise ValueError(
            "export_litert: `quantization` must be one of "
            f"{QUANTIZATION_MODES}. Received: quantization={quantization!r}"
        )
    path = str(path)
    if not path.endswith(".tflite"):
        raise ValueError(
            f"export_litert: the path must end with `.tflite`. Received: {path}"
        )
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "export_litert needs the TensorFlow backend (the LiteRT "
            "converter is TensorFlow's). Received backend: "
            f"{keras.backend.backend()}. Set KERAS_BACKEND=tensorflow."
        )
    image_shape = tuple(model.input_shape[1:])
    if None in image_shape:
        raise ValueError(
            "export_litert: the model needs a fixed input size. Received: "
            f"input_shape={model.input_shape}. Build it with "
            "`image_shape=(height, width, 3)`."
        )
    import tensorflow as tf

    contract = data_contract(model)
    if rewrite_head:
        from keras_evopose.export.inference_graph import inference_model

        model = inference_model(model)
    converter_arguments = {}
    if quantization == "int8":
        if representative_data is None:
            raise ValueError(
                "export_litert: int8 quantization needs "
                "`representative_data` (a few hundred normalized input "
                "images) to calibrate activation ranges."
            )
        samples = representative_samples(
            representative_data, num_calibration_samples
        )
        if not samples:
            raise ValueError(
                "export_litert: `representative_data` gave no images."
            )
        if samples[0].shape[1:] != image_shape:
            raise ValueError(
                "export_litert: representative images have shape "
                f"{samples[0].shape[1:]}, the model takes {image_shape}."
            )

        def representative_dataset():
            for sample in samples:
                yield [sample]

        converter_arguments = dict(
            optimizations=[tf.lite.Optimize.DEFAULT],
            representative_dataset=representative_dataset,
            target_spec={
                "supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            },
            inference_input_type=tf.int8,
            inference_output_type=tf.int8,
        )
    elif quantization == "float16":
        converter_arguments = dict(
            optimizations=[tf.lite.Optimize.DEFAULT],
            target_spec={
                "supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS],
                "supported_types": [tf.float16],
            },
        )
    else:
        converter_arguments = dict(
            target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
        )
    model.export(
        path,
        format="litert",
        input_signature=[tf.TensorSpec((1, *image_shape), tf.float32)],
        verbose=verbose,
        **converter_arguments,
    )
    contract_path = path[: -len(".tflite")] + CONTRACT_SUFFIX
    if contract:
        write_json_atomically(contract_path, contract, indent=1)
    elif os.path.exists(contract_path):
        # A stale contract of an earlier file would describe this one.
        os.remove(contract_path)
    return path


def data_contract(model):
    """`{"sample_options": ..., "keypoint_layout": ...}` of `model`'s
    contract (the configs of what it has), or `{}`."""
    contract = {}
    for name in ("sample_options", "keypoint_layout"):
        value = getattr(model, name, None)
        if value is not None:
            contract[name] = value.get_config()
    return contract


@keras_evopose_export("keras_evopose.export.tensor_dtypes")
def tensor_dtypes(path):
    """Counts the tensors of a `.tflite` file by dtype.

    Args:
        path: a `.tflite` file.

    Returns:
        A dict `{dtype name: number of tensors}`, e.g.
        `{"int8": 75, "int32": 25}` for a full-integer model (int32 holds
        biases), with no `"float32"` key.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    counts = collections.Counter(
        np.dtype(detail["dtype"]).name
        for detail in interpreter.get_tensor_details()
    )
    return dict(sorted(counts.items()))
