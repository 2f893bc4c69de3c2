"""Keras callbacks: COCO keypoint evaluation, weight transfer from a parent."""

from keras_evopose.callbacks.coco_evaluation import COCOEvaluation
from keras_evopose.callbacks.litert_latency import LiteRTLatency
from keras_evopose.callbacks.model_size_logger import ModelSizeLogger
from keras_evopose.callbacks.weight_transfer_callback import (
    WeightTransferCallback,
)

__all__ = [
    "COCOEvaluation",
    "LiteRTLatency",
    "ModelSizeLogger",
    "WeightTransferCallback",
]
