"""Quantization-aware training (TFMOT) on the tf_keras twin of a model.

TFMOT 0.8.1 rejects Keras 3 models, so QAT runs on the flat tf_keras twin
that `keras_evopose.models.build_flat_model` builds from the same
architecture definition, weights copied. Every layer of the twin has a
TFMOT default 8-bit config except the squeeze-excite `Multiply`, which gets
`MultiplyQuantizeConfig` (output quantized, no weights).

TFMOT and tf_keras are the `qat` extra and are imported only inside these
functions. Importing TFMOT sets `TF_USE_LEGACY_KERAS=1` for the rest of the
process (a later first use of `tf.keras` would return tf_keras);
`import_qat_modules` restores the variable after the import. `import keras`
stays Keras 3 either way.
"""

import os

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.export.litert import representative_samples

INSTALL_HINT = "pip install keras-evopose[qat]"


def import_qat_modules():
    """Returns `(tf_keras, tensorflow_model_optimization)`.

    Raises:
        ImportError: naming the `qat` extra when either is missing.
    """
    previous = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        import tensorflow_model_optimization as tfmot
        import tf_keras
    except ImportError as error:
        raise ImportError(
            "Quantization-aware training needs tf-keras and "
            "tensorflow-model-optimization, which are not installed "
            f"({error}). Install them with: `{INSTALL_HINT}`."
        ) from error
    finally:
        # TFMOT holds its own reference to tf_keras; the flag would only
        # change what other code gets from `tf.keras`.
        if previous is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = previous
    return tf_keras, tfmot


def multiply_quantize_config_class():
    """The QuantizeConfig class for `Multiply` (TFMOT has none built in).

    Built on demand because its base class lives in TFMOT. It quantizes the
    layer's output with an 8-bit moving-average range (asymmetric, per
    tensor), like TFMOT's output configs; `Multiply` has no weights.
    """
    _, tfmot = import_qat_modules()
    quantizers = tfmot.quantization.keras.quantizers

    class MultiplyQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            # Multiply has no weights: nothing to put back.
            del layer, quantize_weights

        def set_quantize_activations(self, layer, quantize_activations):
            # Only the output is quantized (get_output_quantizers).
            del layer, quantize_activations

        def get_output_quantizers(self, layer):
            return [
                quantizers.MovingAverageQuantizer(
                    num_bits=8,
                    per_axis=False,
                    symmetric=False,
                    narrow_range=False,
                )
            ]

        def get_config(self):
            return {}

    return MultiplyQuantizeConfig


def quantize_scope():
    """A `tfmot.quantization.keras.quantize_scope` that knows the custom
    config, for loading a saved QAT model (`tf_keras.models.load_model`)."""
    _, tfmot = import_qat_modules()
    config_class = multiply_quantize_config_class()
    return tfmot.quantization.keras.quantize_scope(
        {"MultiplyQuantizeConfig": config_class}
    )


@keras_evopose_export("keras_evopose.export.quantize_aware")
def quantize_aware(model):
    """A quantization-aware (fake-quantized) tf_keras copy of `model`.

    Builds the flat tf_keras twin with `build_flat_model` (same
    architecture, same weights), annotates the squeeze-excite `Multiply`
    layers with a custom QuantizeConfig, and applies TFMOT's default 8-bit
    scheme to every layer. Fine-tune the result with `compile` and `fit`
    (tf_keras optimizers and losses, e.g. `"mse"` or a tf_keras loss;
    Keras 3 objects do not work in tf_keras), then write the int8 file
    with `export_qat_litert`.

    Note: a QAT model straight out of this function outputs zeros: its
    output range starts wide and only moves during training. Fit it
    before converting or evaluating it.

    Args:
        model: an `EvoPose2D` with an `EvoPose2DBackbone` and fixed input
            size.

    Returns:
        A `tf_keras.Model` with fake-quantization wrappers.

    Raises:
        ImportError: when the `qat` extra (tf-keras, TFMOT) is missing.
        ValueError: if `model` is not an EvoPose2D network.

    Example:

    ```python
    model = keras_evopose.models.EvoPose2D.from_preset("small")
    qat_model = keras_evopose.export.quantize_aware(model)
    qat_model.compile(optimizer="adam", loss="mse")
    qat_model.fit(images, heatmaps, epochs=1)
    keras_evopose.export.export_qat_litert(
        qat_model, "small_qat_int8.tflite", representative_data=images
    )
    ```
    """
    tf_keras, tfmot = import_qat_modules()
    from keras_evopose.models import build_flat_model

    twin = build_flat_model(model, tf_keras)
    quantize = tfmot.quantization.keras
    config_class = multiply_quantize_config_class()

    def annotate(layer):
        if isinstance(layer, tf_keras.layers.Multiply):
            return quantize.quantize_annotate_layer(layer, config_class())
        return layer

    # Returning the layers themselves keeps their weights; quantize_apply
    # clones again and copies weights.
    annotated = tf_keras.models.clone_model(twin, clone_function=annotate)
    annotated = quantize.quantize_annotate_model(annotated)
    with quantize.quantize_scope({"MultiplyQuantizeConfig": config_class}):
        return quantize.quantize_apply(annotated)


@keras_evopose_export("keras_evopose.export.export_qat_litert")
def export_qat_litert(
    qat_model, path, representative_data, num_calibration_samples=100
):
    """Converts a QAT tf_keras model to a full-integer `.tflite` file.

    Like `export_litert(..., quantization="int8")`: fixed batch-1 input,
    only int8 builtin ops, int8 input and output. The ranges come from the
    fake-quantization nodes learned in training; `representative_data`
    calibrates the int8 input and output tensors.

    Args:
        qat_model: a model from `quantize_aware`, fine-tuned.
        path: output path ending with `.tflite`.
        representative_data: normalized input images, in any form
            `export_litert` accepts.
        num_calibration_samples: int. Defaults to 100.

    Returns:
        The path written, as a string.
    """
    import_qat_modules()
    import tensorflow as tf

    path = str(path)
    if not path.endswith(".tflite"):
        raise ValueError(
            "export_qat_litert: the path must end with `.tflite`. "
            f"Received: {path}"
        )
    image_shape = tuple(qat_model.input_shape[1:])
    samples = representative_samples(
        representative_data, num_calibration_samples
    )
    if not samples:
        raise ValueError(
            "export_qat_litert: `representative_data` gave no images."
        )

    @tf.function(input_signature=[tf.TensorSpec((1, *image_shape), tf.float32)])
    def serve(images):
        return qat_model(images, training=False)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], qat_model
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with open(path, "wb") as handle:
        handle.write(converter.convert())
    return path
