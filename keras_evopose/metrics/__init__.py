"""Decoding and COCO keypoint evaluation (pycocotools)."""

from keras_evopose.api_export import deprecated_aliases
from keras_evopose.metrics.coco_evaluation import ceiling_ap
from keras_evopose.metrics.coco_evaluation import coco_keypoint_ap
from keras_evopose.metrics.coco_evaluation import coco_results
from keras_evopose.metrics.coco_evaluation import evaluate_coco
from keras_evopose.metrics.coco_evaluation import oks_nms
from keras_evopose.metrics.decoding import decode_heatmaps
from keras_evopose.metrics.decoding import flip_back
from keras_evopose.metrics.decoding import heatmaps_to_keypoints
from keras_evopose.metrics.heatmap_mse import HeatmapMSE

__all__ = [
    "HeatmapMSE",
    "ceiling_ap",
    "coco_keypoint_ap",
    "coco_results",
    "decode_heatmaps",
    "evaluate_coco",
    "flip_back",
    "heatmaps_to_keypoints",
    "oks_nms",
]

# Moved: its one home is keras_evopose.inference (one release of warnings).
__getattr__ = deprecated_aliases(
    __name__,
    {"predict_keypoints": "keras_evopose.inference.predict_keypoints"},
)
