"""COCO keypoints JSON (+ optional person detections) -> person instances."""

import collections
import dataclasses
import json
import logging
import os

import numpy as np

from keras_evopose.api_export import deprecated_aliases
from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data.keypoint_layout import KeypointLayout

logger = logging.getLogger("keras_evopose.data")
# Skip summaries already logged in this process: the evaluator reads the
# same JSON more than once and should not repeat them.
_LOGGED = set()


class DataFileError(ValueError):
    """An input data file (annotations, detections) cannot be read; the
    one-line message names it and what is wrong."""


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
    with open(path, "rb") as handle:
        # Invalid UTF-8 (e.g. a file name written as raw bytes) becomes
        # lone surrogates, so the record can be skipped and named instead
        # of the whole file failing to load.
        text = handle.read().decode("utf-8", errors="surrogateescape")
    if not text.strip():
        raise DataFileError(
            f"{path} is empty; check the path or copy the file again"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFileError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno} "
            f"column {error.colno}: truncated or not JSON); check the path "
            "or copy the file again"
        ) from None


def _list_images(images):
    images = str(images)
    if _is_remote(images):
        import tensorflow as tf

        return set(tf.io.gfile.listdir(images))
    if not os.path.isdir(images):
        raise FileNotFoundError(f"Image folder not found: {images}")
    return set(os.listdir(images))


@keras_evopose_export("keras_evopose.data.COCOInstances")
@dataclasses.dataclass
class COCOInstances:
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
        image_sizes: int64 `(N, 2)` image `(height, width)` from the JSON.
        skipped: `collections.Counter` of skip reason -> count.
        num_images: int, images in the JSON that have a file.
        skipped_examples: dict of skip reason -> up to 5 messages naming
            the file and the annotation (or image) id.
    """

    layout: KeypointLayout
    category_id: int
    image_paths: list
    image_ids: np.ndarray
    annotation_ids: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    image_sizes: np.ndarray
    skipped: collections.Counter
    num_images: int
    skipped_examples: dict = dataclasses.field(default_factory=dict)

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


# Skip reasons that mean the data is broken (logged one by one as
# warnings, up to MAX_LOGGED_SKIPS each) rather than routine filtering.
MALFORMED = (
    "annotation of an unlisted image",
    "box of zero or negative size",
    "malformed image record",
    "image file name is not UTF-8",
    "malformed annotation",
    "malformed bbox",
    "malformed keypoints",
    "malformed detection",
)
# What COCO itself holds and the reference skips too: counted at INFO.
EXPECTED = (
    "crowd annotation",
    "no labelled keypoints",
    "detection of another category",
    "detection below min_detection_score",
)
MAX_LOGGED_SKIPS = 10
MAX_SKIP_EXAMPLES = 5


def finite_numbers(value, length):
    """`value` as a float64 array of `length` finite numbers, else None."""
    if not isinstance(value, (list, tuple)) or len(value) != length:
        return None
    if not all(
        isinstance(item, (int, float)) and not isinstance(item, bool)
        for item in value
    ):
        return None
    array = np.asarray(value, "float64")
    return array if np.all(np.isfinite(array)) else None


class _SkipLog:
    """Counts skips by reason; names each malformed record in a warning."""

    def __init__(self, source):
        self.source = source
        self.counts = collections.Counter()
        self.examples = collections.defaultdict(list)

    def skip(self, reason, detail=None):
        self.counts[reason] += 1
        if detail is None:
            return
        message = f"{self.source}: {detail}, skipped ({reason})"
        if len(self.examples[reason]) < MAX_SKIP_EXAMPLES:
            self.examples[reason].append(message)
        if reason in MALFORMED and self.counts[reason] <= MAX_LOGGED_SKIPS:
            logger.warning(message)
        else:
            logger.debug(message)


def _describe_image(record):
    """How to name an image record in a message, whatever it holds."""
    if not isinstance(record, dict):
        return f"image record {_preview(record)}"
    return f"image {record.get('file_name')!r} (id {record.get('id')!r})"


def _image_problem(record):
    """Why an image record cannot be used, or None."""
    if not isinstance(record, dict):
        return "malformed image record", "is not an object"
    name = record.get("file_name")
    if not isinstance(name, str) or not name:
        return "malformed image record", "has no `file_name`"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "image file name is not UTF-8",
            "has a file name that is not UTF-8",
        )
    if isinstance(record.get("id"), bool) or not isinstance(
        record.get("id"), int
    ):
        return "malformed image record", "has no integer `id`"
    for field in ("width", "height"):
        value = record.get(field)
        if finite_numbers([value], 1) is None or value <= 0:
            return (
                "malformed image record",
                f"has no positive `{field}` (received {value!r})",
            )
    return None


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
    images whose file is missing are skipped. Malformed records are
    skipped too: an image record without `file_name`, integer `id` or
    positive `width`/`height`, a file name that is not UTF-8, a `bbox` or
    `keypoints` that are not 4 / 3K finite numbers. Every skip is counted
    by reason in `skipped` (the totals are logged once as a warning); each
    malformed record is named (file and annotation or image id) in a
    warning and in `skipped_examples`. Nothing is dropped silently.

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
        A `COCOInstances`.

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
            raise DataFileError(
                f"{annotations}: not a COCO annotation file, it has no "
                f"`{key}` list. Received keys: {sorted(data)}."
            )
    categories = [c for c in data["categories"] if c.get("keypoints")]
    if not categories:
        raise DataFileError(
            f"{annotations}: no category has a `keypoints` list, so this "
            "is not a COCO keypoints file (expected e.g. "
            "person_keypoints_val2017.json)."
        )
    if len(categories) > 1:
        raise DataFileError(
            f"{annotations}: {len(categories)} keypoint categories "
            f"({[c.get('name') for c in categories]}); one is supported."
        )
    category = categories[0]
    layout = KeypointLayout.from_category(category)
    num_keypoints = layout.num_keypoints

    log = _SkipLog(annotations)
    files = _list_images(images)
    image_records = {}
    listed_ids = {
        record["id"]
        for record in data["images"]
        if isinstance(record, dict) and isinstance(record.get("id"), int)
    }
    for record in data["images"]:
        problem = _image_problem(record)
        if problem is not None:
            reason, detail = problem
            log.skip(reason, f"{_describe_image(record)} {detail}")
            continue
        if record["file_name"] not in files:
            log.skip(
                "missing image file",
                f"{_describe_image(record)} not found in {images}",
            )
            continue
        image_records[record["id"]] = record

    # Ground-truth skips only matter when the ground truth gives the boxes.
    people_log = _SkipLog(annotations)
    people = collections.defaultdict(list)
    for record in data["annotations"]:
        if not isinstance(record, dict):
            people_log.skip(
                "malformed annotation", "an annotation is not an object"
            )
            continue
        if record.get("category_id") != category["id"]:
            continue
        annotation_id = record.get("id")
        image_id = record.get("image_id")
        image = (
            image_records.get(image_id) if isinstance(image_id, int) else None
        )
        where = f"annotation id {annotation_id!r} (image " + (
            f"{image['file_name']!r})"
            if image
            else f"id {record.get('image_id')!r})"
        )
        if isinstance(annotation_id, bool) or not isinstance(
            annotation_id, int
        ):
            people_log.skip(
                "malformed annotation", f"{where} has no integer `id`"
            )
            continue
        keypoints = finite_numbers(record.get("keypoints"), 3 * num_keypoints)
        if keypoints is None:
            value = record.get("keypoints")
            people_log.skip(
                "malformed keypoints",
                f"{where} has keypoints {_preview(value)}; expected "
                f"{3 * num_keypoints} finite numbers ({num_keypoints} "
                "keypoints of the category x (x, y, v))",
            )
            continue
        box = finite_numbers(record.get("bbox"), 4)
        if box is None:
            people_log.skip(
                "malformed bbox",
                f"{where} has bbox {_preview(record.get('bbox'))}; expected "
                "4 finite numbers [x, y, w, h]",
            )
            continue
        if image is None and image_id not in listed_ids:
            people_log.skip(
                "annotation of an unlisted image",
                f"{where} names image_id {image_id!r}, which `images` does "
                "not list",
            )
            continue
        if image is None:
            people_log.skip("image file missing or not listed")
            continue
        if record.get("iscrowd", 0):
            people_log.skip("crowd annotation")
            continue
        keypoints = keypoints.astype("float32").reshape(-1, 3)
        if not np.any(keypoints[:, 2] > 0):
            people_log.skip("no labelled keypoints")
            continue
        if box[2] <= 0 or box[3] <= 0:
            people_log.skip(
                "box of zero or negative size",
                f"{where} has bbox {box.tolist()}: its width and height "
                "must be positive",
            )
            continue
        clipped = _clip_box(box, image["width"], image["height"])
        if clipped[2] <= 0 or clipped[3] <= 0:
            people_log.skip(
                "box outside the image",
                f"{where} has box {box.tolist()} outside its image "
                f"({image['width']}x{image['height']})",
            )
            continue
        people[image["id"]].append((annotation_id, clipped, keypoints))

    rows = []
    if detections is None:
        log.counts.update(people_log.counts)
        for reason, examples in people_log.examples.items():
            log.examples[reason].extend(examples)
        for image_id in sorted(people):
            for annotation_id, box, keypoints in people[image_id]:
                rows.append((image_id, annotation_id, box, keypoints, 1.0))
    else:
        detection_list = read_json(detections)
        if not isinstance(detection_list, list):
            hint = (
                " (a COCO keypoints JSON: pass it as the annotations)"
                if isinstance(detection_list, dict)
                and "annotations" in detection_list
                else ""
            )
            raise DataFileError(
                f"{detections}: expected a COCO results list of "
                "{image_id, category_id, bbox, score}; received a "
                f"{type(detection_list).__name__}{hint}."
            )
        detection_log = _SkipLog(detections)
        empty = np.zeros((num_keypoints, 3), "float32")
        for position, detection in enumerate(detection_list):
            if not isinstance(detection, dict):
                detection_log.skip(
                    "malformed detection",
                    f"detection #{position} is not an object",
                )
                continue
            if detection.get("category_id", category["id"]) != category["id"]:
                detection_log.skip("detection of another category")
                continue
            image_id = detection.get("image_id")
            box = finite_numbers(detection.get("bbox"), 4)
            score = finite_numbers([detection.get("score", 1.0)], 1)
            if box is None or score is None:
                detection_log.skip(
                    "malformed detection",
                    f"detection #{position} (image id {image_id!r}) has bbox "
                    f"{_preview(detection.get('bbox'))} and score "
                    f"{detection.get('score')!r}; expected 4 finite numbers "
                    "and a finite score",
                )
                continue
            if not isinstance(image_id, int) or image_id not in image_records:
                detection_log.skip(
                    "detection on an image not in the annotations"
                )
                continue
            score = float(score[0])
            if score < min_detection_score:
                detection_log.skip("detection below min_detection_score")
                continue
            image = image_records[image_id]
            clipped = _clip_box(box, image["width"], image["height"])
            if clipped[2] <= 0 or clipped[3] <= 0:
                detection_log.skip("box outside the image")
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
        log.counts.update(detection_log.counts)
        for reason, examples in detection_log.examples.items():
            log.examples[reason].extend(examples)

    skipped = log.counts
    for reason, count in sorted(skipped.items()):
        message = f"{annotations}: skipped {count} ({reason})"
        if message not in _LOGGED:
            _LOGGED.add(message)
            level = logging.INFO if reason in EXPECTED else logging.WARNING
            logger.log(level, message)
    if not rows:
        raise ValueError(
            f"{annotations}: no usable person instance (skipped: "
            f"{dict(skipped) or 'nothing'}). Check the image folder "
            f"{images} and the annotations."
        )
    return COCOInstances(
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
        image_sizes=np.asarray(
            [
                [
                    image_records[row[0]]["height"],
                    image_records[row[0]]["width"],
                ]
                for row in rows
            ],
            "int64",
        ),
        skipped=skipped,
        num_images=len(image_records),
        skipped_examples={
            reason: examples[:MAX_SKIP_EXAMPLES]
            for reason, examples in sorted(log.examples.items())
        },
    )


def _preview(value, limit=60):
    """A short repr of a JSON value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Named as COCOEvaluation and COCOSearchConfig are (one release of
# warnings).
__getattr__ = deprecated_aliases(
    __name__, {"CocoInstances": "keras_evopose.data.COCOInstances"}
)
