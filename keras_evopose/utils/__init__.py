"""Model-size utilities (no TensorFlow import)."""

from keras_evopose.utils.model_size import count_flops
from keras_evopose.utils.model_size import count_params

__all__ = ["count_flops", "count_params"]
