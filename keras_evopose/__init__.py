"""keras-evopose: EvoPose2D pose networks and their neuroevolution search.

`keras_evopose.layers`, `.models`, `.search`, `.utils` and `.losses` never
import TensorFlow, so they run on the JAX backend too (`.losses` is imported
here so that saved models compiled with `HeatmapMSE` load). `.data`,
`.training`, `.metrics`, `.callbacks`, `.distribute` and `.export` need
TensorFlow (tf.data, LiteRT) and are imported on first access.
"""

import importlib

from keras_evopose import layers
from keras_evopose import losses
from keras_evopose import models
from keras_evopose import search
from keras_evopose import utils
from keras_evopose.version import __version__

_LAZY_SUBPACKAGES = (
    "callbacks",
    "data",
    "distribute",
    "export",
    "metrics",
    "training",
)


def __getattr__(name):
    # Imported on first use so `import keras_evopose` stays TensorFlow-free.
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"keras_evopose.{name}")
    raise AttributeError(f"module 'keras_evopose' has no attribute {name!r}")


__all__ = [
    "layers",
    "losses",
    "models",
    "search",
    "utils",
    "__version__",
    *_LAZY_SUBPACKAGES,
]
