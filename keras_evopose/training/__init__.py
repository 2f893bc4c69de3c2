"""The paper's training recipe (optimizer and schedule) as Keras objects."""

from keras_evopose.training.recipe import evopose2d_optimizer
from keras_evopose.training.recipe import learning_rate_schedule

__all__ = ["evopose2d_optimizer", "learning_rate_schedule"]
