"""Model size and crash-safe state files (no TensorFlow import)."""

from keras_evopose.utils.model_size import count_flops
from keras_evopose.utils.model_size import count_params
from keras_evopose.utils.state_files import StateFileError
from keras_evopose.utils.state_files import read_json_state
from keras_evopose.utils.state_files import remove_partial_files
from keras_evopose.utils.state_files import write_atomically
from keras_evopose.utils.state_files import write_json_atomically

__all__ = [
    "StateFileError",
    "count_flops",
    "count_params",
    "read_json_state",
    "remove_partial_files",
    "write_atomically",
    "write_json_atomically",
]
