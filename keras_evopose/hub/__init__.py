"""keras-hub interop: presets and a pose-estimation `Task`.

Needs the `hub` extra (`pip install -e ".[hub]"`, keras-hub); nothing else
in `keras_evopose` imports this package or keras-hub. Importing it
registers the classes keras-hub's `from_preset` builds from a preset.
Without keras-hub the package imports, and each of its names raises an
`ImportError` naming the install command.
"""

try:
    import keras_hub
except ImportError:
    keras_hub = None

INSTALL_HINT = 'keras_evopose.hub needs keras-hub: pip install -e ".[hub]"'

if keras_hub is None:

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(INSTALL_HINT)

else:
    from keras_evopose.hub.evopose2d_hub_backbone import EvoPose2DHubBackbone
    from keras_evopose.hub.evopose2d_image_converter import (
        EvoPose2DImageConverter,
    )
    from keras_evopose.hub.evopose2d_pose_estimator import (
        EvoPose2DPoseEstimator,
    )
    from keras_evopose.hub.evopose2d_pose_estimator_preprocessor import (
        EvoPose2DPoseEstimatorPreprocessor,
    )

__all__ = [
    "EvoPose2DHubBackbone",
    "EvoPose2DImageConverter",
    "EvoPose2DPoseEstimator",
    "EvoPose2DPoseEstimatorPreprocessor",
]
