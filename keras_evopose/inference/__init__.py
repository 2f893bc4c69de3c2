"""Inference on new images: keypoints of people given their boxes.

It crops exactly like evaluation (`keras_evopose.data`) and decodes with
`keras_evopose.metrics`; TensorFlow is imported inside the function.
"""

from keras_evopose.inference.model_contract import model_contract
from keras_evopose.inference.predict_keypoints import predict_keypoints

__all__ = ["model_contract", "predict_keypoints"]
