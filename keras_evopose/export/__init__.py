"""Deployment: LiteRT export (post-training quantization), ONNX export
and TFMOT quantization-aware training.

TensorFlow, TFMOT, tf_keras, tf2onnx and ONNX Runtime are imported
inside the functions.
"""

from keras_evopose.export.inference_graph import inference_model
from keras_evopose.export.latency import measure_litert_latency
from keras_evopose.export.litert import export_litert
from keras_evopose.export.litert import tensor_dtypes
from keras_evopose.export.litert_model import LiteRTModel
from keras_evopose.export.onnx import export_onnx
from keras_evopose.export.onnx_model import ONNXModel
from keras_evopose.export.qat import export_qat_litert
from keras_evopose.export.qat import quantize_aware

__all__ = [
    "LiteRTModel",
    "ONNXModel",
    "export_litert",
    "export_onnx",
    "export_qat_litert",
    "inference_model",
    "measure_litert_latency",
    "quantize_aware",
    "tensor_dtypes",
]
