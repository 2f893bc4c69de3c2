"""keras-evopose: EvoPose2D pose networks and their neuroevolution search.

`keras_evopose.layers`, `.models`, `.search` and `.utils` never import
TensorFlow, so they run on the JAX backend too; `.data`, `.export` and
`.metrics` import it lazily where they need it.
"""

from keras_evopose import layers
from keras_evopose import models
from keras_evopose import search
from keras_evopose import utils
from keras_evopose.version import __version__

__all__ = ["layers", "models", "search", "utils", "__version__"]
