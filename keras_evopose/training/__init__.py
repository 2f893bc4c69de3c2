"""The paper's training recipe (optimizer, schedule, weight decay) as Keras
objects."""

from keras_evopose.training.recipe import batch_scaled_learning_rate
from keras_evopose.training.recipe import evopose2d_optimizer
from keras_evopose.training.recipe import evopose2d_regularizer
from keras_evopose.training.recipe import learning_rate_schedule

__all__ = [
    "batch_scaled_learning_rate",
    "evopose2d_optimizer",
    "evopose2d_regularizer",
    "learning_rate_schedule",
]
