"""ONNX export through Keras' own `model.export(format="onnx")` (tf2onnx).

The inverse is `keras_evopose.export.ONNXModel` (`onnx_model.py`), which
runs the file under ONNX Runtime. `onnx`, `onnxruntime` and `tf2onnx` are
the `onnx` extra (`pip install -e ".[onnx]"`); they and TensorFlow are
imported inside the function.
"""

import os
import warnings

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.export.litert import CONTRACT_SUFFIX
from keras_evopose.export.litert import data_contract
from keras_evopose.utils.state_files import write_atomically
from keras_evopose.utils.state_files import write_json_atomically

# What `export_onnx` imports (the converter) and `ONNXModel` runs on.
ONNX_PACKAGES = ("onnx", "onnxruntime", "tf2onnx")
ONNX_INSTALL_HINT = 'pip install -e ".[onnx]"'


def missing_onnx_packages():
    """The names of `ONNX_PACKAGES` that cannot be imported."""
    import importlib

    missing = []
    for name in ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


@keras_evopose_export("keras_evopose.export.export_onnx")
def export_onnx(model, path, rewrite_head=True, verbose=False):
    """Writes `model` as an ONNX file with a dynamic batch dimension.

    The graph is that of `export_litert`: by default
    `inference_model(model)`, the heatmap head's transposed convs as
    phase convolutions + depth-to-space with its BatchNormalization folded
    in (same heatmaps to float rounding). The file is written under a
    temporary name in the same folder and then renamed, so `path` is
    either the previous file or the complete new one. The model's data
    contract (an `EvoPose2D`'s `sample_options` and `keypoint_layout`) is
    written beside it as `<name>.contract.json`, which `ONNXModel` reads.

    Args:
        model: a Keras model (TensorFlow backend) with a fixed input size,
            e.g. an `EvoPose2D`.
        path: output path, must end with `.onnx`.
        rewrite_head: bool, export `inference_model(model)`. Defaults to
            `True`.
        verbose: bool, let Keras print the path it wrote.

    Returns:
        The path written, as a string.

    Raises:
        ValueError: for a path without `.onnx`, another backend than
            TensorFlow, or a model without a fixed input size.
        ImportError: when `onnx`, `onnxruntime` or `tf2onnx` is missing.

    Example:

    ```python
    model = keras_evopose.models.EvoPose2D.from_preset("test")
    keras_evopose.export.export_onnx(model, "test.onnx")
    heatmaps = keras_evopose.export.ONNXModel("test.onnx").predict(images)
    ```
    """
    import keras

    path = str(path)
    if not path.endswith(".onnx"):
        raise ValueError(
            f"export_onnx: the path must end with `.onnx`. Received: {path}"
        )
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "export_onnx needs the TensorFlow backend (tf2onnx converts a "
            "TensorFlow graph). Received backend: "
            f"{keras.backend.backend()}. Set KERAS_BACKEND=tensorflow."
        )
    image_shape = tuple(model.input_shape[1:])
    if None in image_shape:
        raise ValueError(
            "export_onnx: the model needs a fixed input size. Received: "
            f"input_shape={model.input_shape}. Build it with "
            "`image_shape=(height, width, 3)`."
        )
    missing = missing_onnx_packages()
    if missing:
        raise ImportError(
            f"export_onnx needs {', '.join(missing)}: {ONNX_INSTALL_HINT}"
        )
    import tensorflow as tf

    contract = data_contract(model)
    if rewrite_head:
        from keras_evopose.export.inference_graph import inference_model

        model = inference_model(model)
    signature = [tf.TensorSpec((None, *image_shape), tf.float32, name="image")]

    def write(temporary):
        with warnings.catch_warnings():
            # Keras' tf2onnx patch probes `np.object` (NumPy 2 warns).
            warnings.filterwarnings(
                "ignore", "In the future `np.object`", FutureWarning
            )
            # An explicit signature: Keras refuses a model never called
            # otherwise, and `None` keeps the batch dynamic (no shape ops
            # to avoid here, unlike under LiteRT's converter).
            model.export(
                temporary,
                format="onnx",
                input_signature=signature,
                verbose=verbose,
            )

    write_atomically(path, write)
    contract_path = path[: -len(".onnx")] + CONTRACT_SUFFIX
    if contract:
        write_json_atomically(contract_path, contract, indent=1)
    elif os.path.exists(contract_path):
        # A stale contract of an earlier file would describe this one.
        os.remove(contract_path)
    return path
