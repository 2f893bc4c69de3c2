"""keras-evopose: EvoPose2D pose networks and their neuroevolution search.

`keras_evopose.layers`, `.models`, `.search`, `.utils`, `.losses` and
`.metrics` never import TensorFlow at import time, so they run on the JAX
backend too; they are imported here so that every class a saved model
refers to (layers, the `HeatmapMSE` loss and metric) is registered and
`keras.saving.load_model` needs nothing else. `.data`, `.training`,
`.inference`, `.callbacks`, `.distribute` and `.export` need TensorFlow
(tf.data, LiteRT) when used and are imported on first access.
"""

import importlib
import os
import sys

from keras_evopose.version import __version__

# Imported by `import keras_evopose`: they register every class a saved
# model can refer to, so `keras.saving.load_model` finds them.
_SERIALIZABLE_SUBPACKAGES = (
    "layers",
    "losses",
    "metrics",
    "models",
    "search",
    "utils",
)
_LAZY_SUBPACKAGES = (
    "callbacks",
    "data",
    "distribute",
    "export",
    "inference",
    "training",
)


def _import_serializable():
    for name in _SERIALIZABLE_SUBPACKAGES:
        importlib.import_module(f"keras_evopose.{name}")


def __getattr__(name):
    # Imported on first use so `import keras_evopose` stays TensorFlow-free.
    if name in _SERIALIZABLE_SUBPACKAGES + _LAZY_SUBPACKAGES:
        return importlib.import_module(f"keras_evopose.{name}")
    raise AttributeError(f"module 'keras_evopose' has no attribute {name!r}")


def _started_as_command_line():
    """`keras-evopose ...` or `python -m keras_evopose ...`."""
    script = os.path.basename((getattr(sys, "argv", None) or [""])[0])
    command = list(getattr(sys, "orig_argv", None) or [])
    return script in ("keras-evopose", "keras-evopose.exe") or (
        ("-m", "keras_evopose") in zip(command, command[1:])
    )


# The command line imports Keras (and so TensorFlow) only when a subcommand
# runs, after it has set TensorFlow's log level, so that `keras-evopose
# --help` takes a fraction of a second (see cli/__init__.py).
if not _started_as_command_line():
    _import_serializable()

__all__ = [
    *_SERIALIZABLE_SUBPACKAGES,
    "__version__",
    *_LAZY_SUBPACKAGES,
]
