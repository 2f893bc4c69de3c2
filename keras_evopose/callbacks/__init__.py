"""Keras callbacks: COCO keypoint evaluation into the epoch logs."""

from keras_evopose.callbacks.coco_evaluation import COCOEvaluation

__all__ = ["COCOEvaluation"]
