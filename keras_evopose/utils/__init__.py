"""Model size, crash-safe state files and folder locks (no TensorFlow
import)."""

from keras_evopose.utils.folder_lock import FolderLock
from keras_evopose.utils.folder_lock import FolderLockedError
from keras_evopose.utils.model_size import count_flops
from keras_evopose.utils.model_size import count_params
from keras_evopose.utils.state_files import DiskFullError
from keras_evopose.utils.state_files import StateFileError
from keras_evopose.utils.state_files import read_json_state
from keras_evopose.utils.state_files import remove_partial_files
from keras_evopose.utils.state_files import write_atomically
from keras_evopose.utils.state_files import write_json_atomically
from keras_evopose.utils.state_files import write_weights_atomically

__all__ = [
    "DiskFullError",
    "FolderLock",
    "FolderLockedError",
    "StateFileError",
    "count_flops",
    "count_params",
    "read_json_state",
    "remove_partial_files",
    "write_atomically",
    "write_json_atomically",
    "write_weights_atomically",
]
