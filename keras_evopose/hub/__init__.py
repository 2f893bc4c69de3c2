"""keras-hub interop: presets and a pose-estimation `Task`.

Needs the `hub` extra (`pip install -e ".[hub]"`, keras-hub); nothing else
in `keras_evopose` imports this package or keras-hub. Importing it
registers the classes keras-hub's `from_preset` builds from a preset.
"""

try:
    import keras_hub  # noqa: F401
except ImportError as error:
    raise ImportError(
        'keras_evopose.hub needs keras-hub: pip install -e ".[hub]"'
    ) from error

from keras_evopose.hub.evopose2d_hub_backbone import EvoPose2DHubBackbone
from keras_evopose.hub.evopose2d_image_converter import EvoPose2DImageConverter
from keras_evopose.hub.evopose2d_pose_estimator import EvoPose2DPoseEstimator
from keras_evopose.hub.evopose2d_pose_estimator_preprocessor import (
    EvoPose2DPoseEstimatorPreprocessor,
)

__all__ = [
    "EvoPose2DHubBackbone",
    "EvoPose2DImageConverter",
    "EvoPose2DPoseEstimator",
    "EvoPose2DPoseEstimatorPreprocessor",
]
