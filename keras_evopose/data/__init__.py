"""COCO keypoint data: instances, the tf.data pipeline, TFRecords.

TensorFlow is imported inside the functions that need it.
"""

from keras_evopose.api_export import deprecated_aliases
from keras_evopose.data.coco_instances import COCOInstances
from keras_evopose.data.coco_instances import load_coco_instances
from keras_evopose.data.coco_keypoints import coco_keypoints_dataset
from keras_evopose.data.coco_keypoints import normalize_image
from keras_evopose.data.coco_keypoints import out_of_crop_joints
from keras_evopose.data.coco_split import read_coco_json
from keras_evopose.data.coco_split import split_coco_by_image
from keras_evopose.data.heatmaps import encode_heatmaps
from keras_evopose.data.keypoint_layout import KeypointLayout
from keras_evopose.data.sample_options import IMAGE_MEAN
from keras_evopose.data.sample_options import IMAGE_STD
from keras_evopose.data.sample_options import SampleOptions
from keras_evopose.data.tfrecords import tfrecord_keypoints_dataset
from keras_evopose.data.tfrecords import tfrecords_info
from keras_evopose.data.tfrecords import write_tfrecords

__all__ = [
    "IMAGE_MEAN",
    "IMAGE_STD",
    "COCOInstances",
    "KeypointLayout",
    "SampleOptions",
    "coco_keypoints_dataset",
    "encode_heatmaps",
    "load_coco_instances",
    "normalize_image",
    "out_of_crop_joints",
    "read_coco_json",
    "split_coco_by_image",
    "tfrecord_keypoints_dataset",
    "tfrecords_info",
    "write_tfrecords",
]

# Its one home is keras_evopose.metrics (one release of warnings).
__getattr__ = deprecated_aliases(
    __name__,
    {
        "decode_heatmaps": "keras_evopose.metrics.decode_heatmaps",
        "CocoInstances": "keras_evopose.data.COCOInstances",
    },
)
