"""Crash-safe state files and folder locks: ground level (no TensorFlow
import, nothing else of keras_evopose)."""

from keras_evopose.api_export import deprecated_aliases
from keras_evopose.utils.folder_lock import FolderLock
from keras_evopose.utils.folder_lock import FolderLockedError
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
    "read_json_state",
    "remove_partial_files",
    "write_atomically",
    "write_json_atomically",
    "write_weights_atomically",
]

# Moved for one release: FLOPs live beside the models they count, and
# Keras' own `model.count_params()` is the parameter count.
__getattr__ = deprecated_aliases(
    __name__,
    {
        "count_flops": "keras_evopose.models.count_flops",
        "count_params": (
            "keras_evopose.models.model_size.count_params",
            "model.count_params()",
        ),
    },
)
