"""The paper's training recipe (optimizer, schedule, weight decay) as Keras
objects, and a whole training run (`TrainConfig`, `train_pose_model`)."""

from keras_evopose.training.recipe import batch_scaled_learning_rate
from keras_evopose.training.recipe import evopose2d_optimizer
from keras_evopose.training.recipe import evopose2d_regularizer
from keras_evopose.training.recipe import learning_rate_schedule
from keras_evopose.training.train_config import TrainConfig
from keras_evopose.training.train_pose_model import train_pose_model

__all__ = [
    "TrainConfig",
    "batch_scaled_learning_rate",
    "evopose2d_optimizer",
    "evopose2d_regularizer",
    "learning_rate_schedule",
    "train_pose_model",
]
