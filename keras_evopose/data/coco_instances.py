"""COCO keypoints JSON (+ optional person detections) -> person instances."""

import collections
import dataclasses
import json
import logging
import os

import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data.keypoint_layout import KeypointLayout

logger = logging.getLogger("keras_evopose.data")
# Skip summaries already logged in this process: the evaluator reads the
# same JSON more than once and should not repeat them.
_LOGGED = set()


def _is_remote(path):
    return "://" in str(path)


def read_json(path):
    """Reads a JSON file from a local path or any `tf.io.gfile` URL."""
    path = str(path)
    if _is_remote(path):
        import tensorflow as tf

        with tf.io.gfile.GFile(path, "r") as handle:
            return json.load(handle)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such JSON file: {path}")
    with open(path) as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None


def _list_images(images):
    images = str(images)
    if _is_remote(images):
        import tensorflow as tf

        return set(tf.io.gfile.listdir(images))
    if not os.path.isdir(images):
        raise FileNotFoundError(f"Image folder not found: {images}")
    return set(os.listdir(images))


@dataclasses.dataclass
class CocoInstances:
    """Person instances ready for the pipeline, and what was skipped.

    Attributes:
        layout: the `KeypointLayout` of the keypoint category.
        category_id: int, that category's id (used in results JSON).
        image_paths: list of str, one per instance.
        image_ids, annotation_ids: int64 arrays (annotation id -1 for a
            detection box).
        boxes: float32 `(N, 4)` COCO `[x, y, w, h]`, clipped to the image.
        keypoints: float32 `(N, K, 3)` `(x, y, visibility)`; zeros for
            detections without keypoints.
        scores: float32 `(N,)` box scores (1 for ground truth).
        skipped: `collections.Counter` of skip reason -> count.
        num_images: int, images in the JSON that have a file.
    """

    layout: KeypointLayout
    category_id: int
    image_paths: list
    image_ids: np.ndarray
    annotation_ids: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    skipped: collections.Counter
    num_images: int

    def __len__(self):
        return len(self.image_paths)


def _box_iou(box, others):
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[0] + box[2], others[:, 0] + others[:, 2])
    y2 = np.minimum(box[1] + box[3], others[:, 1] + others[:, 3])
    intersection = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box[2] * box[3] + others[:, 2] * others[:, 3] - intersection
    return intersection / np.maximum(union, 1e-9)


def _clip_box(box, width, height):
    x1 = min(max(box[0], 0.0), width - 1.0)
    y1 = min(max(box[1], 0.0), height - 1.0)
    x2 = min(max(box[0] + box[2], 0.0), width - 1.0)
    y2 = min(max(box[1] + box[3], 0.0), height - 1.0)
    return [x1, y1, x2 - x1, y2 - y1]


@keras_evopose_export("keras_evopose.data.load_coco_instances")
def load_coco_instances(
    annotations,
    images,
    detections=None,
    min_detection_score=0.0,
    keypoints_from_ground_truth=False,
):
    """Reads person instances from a COCO keypoints JSON.

    Ground-truth people become instances unless they are crowd regions,
    have no labelled keypoint, or have a box with no area inside the image;
    images whose file is missing are skipped. Every skip is counted by
    reason in `skipped` and logged once as a warning. A malformed record
    (wrong keypoint count, missing box) raises `ValueError` naming the file
    and the annotation id.

    Args:
        annotations: path (local or `tf.io.gfile` URL) of the JSON.
        images: folder holding the image files named in the JSON.
        detections: optional path of a COCO results JSON of person boxes
            (`image_id`, `bbox`, `score`); when given, these boxes replace
            the ground-truth boxes (evaluation with a detector).
        min_detection_score: float, detections below it are skipped.
        keypoints_from_ground_truth: bool, give each detection the
            keypoints of the ground-truth person it overlaps most (IoU);
            used to measure the ceiling AP with detector boxes.

    Returns:
        A `CocoInstances`.

    Example:

    >>> instances = keras_evopose.data.load_coco_instances(
    ...     "data/coco_kpt_mini/annotations/person_keypoints_val2017_mini.json",
    ...     "data/coco_kpt_mini/val2017")
    >>> len(instances), instances.layout.num_keypoints
    (80, 17)
    """
    data = read_json(annotations)
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(
                f"{annotations}: not a COCO annotation file, it has no "
                f"`{key}` list. Received keys: {sorted(data)}."
            )
    categories = [c for c in data["categories"] if c.get("keypoints")]
    if not categories:
        raise ValueError(
            f"{annotations}: no category has a `keypoints` list, so this "
            "is not a COCO keypoints file (expected e.g. "
            "person_keypoints_val2017.json)."
        )
    if len(categories) > 1:
        raise ValueError(
            f"{annotations}: {len(categories)} keypoint categories "
            f"({[c.get('name') for c in categories]}); one is supported."
        )
    category = categories[0]
    layout = KeypointLayout.from_category(category)
    num_keypoints = layout.num_keypoints
    skipped = collections.Counter()

    files = _list_images(images)
    image_records = {}
    for record in data["images"]:
        if record["file_name"] not in files:
            skipped["missing image file"] += 1
            logger.debug(
                "%s: image %s (id %s) not found in %s, skipped",
                annotations,
                record["file_name"],
                record["id"],
                images,
            )
            continue
        image_records[record["id"]] = record

    # Ground-truth skips only matter when the ground truth gives the boxes.
    people_skipped = collections.Counter()
    people = collections.defaultdict(list)
    for record in data["annotations"]:
        if record.get("category_id") != category["id"]:
            continue
        annotation_id = record.get("id")
        keypoints = record.get("keypoints")
        box = record.get("bbox")
        if keypoints is None or len(keypoints) != 3 * num_keypoints:
            raise ValueError(
                f"{annotations}: annotation id {annotation_id} has "
                f"{None if keypoints is None else len(keypoints)} keypoint "
                f"values; the category defines {num_keypoints} keypoints, "
                f"so {3 * num_keypoints} (x, y, v) values are expected."
            )
        if box is None or len(box) != 4:
            raise ValueError(
                f"{annotations}: annotation id {annotation_id} has no "
                f"`bbox` [x, y, w, h]. Received: bbox={box}."
            )
        if record["image_id"] not in image_records:
            people_skipped["image file missing or not listed"] += 1
            continue
        if record.get("iscrowd", 0):
            people_skipped["crowd annotation"] += 1
            continue
        keypoints = np.asarray(keypoints, "float32").reshape(-1, 3)
        if not np.any(keypoints[:, 2] > 0):
            people_skipped["no labelled keypoints"] += 1
            continue
        image = image_records[record["image_id"]]
        clipped = _clip_box(box, image["width"], image["height"])
        if clipped[2] <= 0 or clipped[3] <= 0:
            people_skipped["box outside the image"] += 1
            logger.debug(
                "%s: annotation id %s has box %s outside its image "
                "(%dx%d), skipped",
                annotations,
                annotation_id,
                box,
                image["width"],
                image["height"],
            )
            continue
        people[record["image_id"]].append((annotation_id, clipped, keypoints))

    rows = []
    if detections is None:
        skipped.update(people_skipped)
        for image_id in sorted(people):
            for annotation_id, box, keypoints in people[image_id]:
                rows.append((image_id, annotation_id, box, keypoints, 1.0))
    else:
        detection_list = read_json(detections)
        if not isinstance(detection_list, list):
            raise ValueError(
                f"{detections}: expected a COCO results list of "
                "{image_id, category_id, bbox, score}; received a "
                f"{type(detection_list).__name__}."
            )
        empty = np.zeros((num_keypoints, 3), "float32")
        for position, detection in enumerate(detection_list):
            if detection.get("category_id", category["id"]) != category["id"]:
                skipped["detection of another category"] += 1
                continue
            image_id = detection.get("image_id")
            box = detection.get("bbox")
            if box is None or len(box) != 4:
                raise ValueError(
                    f"{detections}: detection #{position} (image id "
                    f"{image_id}) has no `bbox` [x, y, w, h]."
                )
            if image_id not in image_records:
                skipped["detection on an image not in the annotations"] += 1
                continue
            score = float(detection.get("score", 1.0))
            if score < min_detection_score:
                skipped["detection below min_detection_score"] += 1
                continue
            image = image_records[image_id]
            clipped = _clip_box(box, image["width"], image["height"])
            if clipped[2] <= 0 or clipped[3] <= 0:
                skipped["box outside the image"] += 1
                continue
            keypoints = empty
            if keypoints_from_ground_truth and people[image_id]:
                candidates = people[image_id]
                overlaps = _box_iou(
                    np.asarray(clipped),
                    np.asarray([person[1] for person in candidates]),
                )
                keypoints = candidates[int(np.argmax(overlaps))][2]
            rows.append((image_id, -1, clipped, keypoints, score))

    for reason, count in sorted(skipped.items()):
        message = f"{annotations}: skipped {count} ({reason})"
        if message not in _LOGGED:
            _LOGGED.add(message)
            logger.warning(message)
    if not rows:
        raise ValueError(
            f"{annotations}: no usable person instance (skipped: "
            f"{dict(skipped) or 'nothing'}). Check the image folder "
            f"{images} and the annotations."
        )
    return CocoInstances(
        layout=layout,
        category_id=int(category["id"]),
        image_paths=[
            os.path.join(str(images), image_records[row[0]]["file_name"])
            for row in rows
        ],
        image_ids=np.asarray([row[0] for row in rows], "int64"),
        annotation_ids=np.asarray([row[1] for row in rows], "int64"),
        boxes=np.asarray([row[2] for row in rows], "float32"),
        keypoints=np.stack([row[3] for row in rows]).astype("float32"),
        scores=np.asarray([row[4] for row in rows], "float32"),
        skipped=skipped,
        num_images=len(image_records),
    )
