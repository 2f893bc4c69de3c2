"""COCO keypoint instances <-> sharded TFRecords (local or `gs://`)."""

import dataclasses
import json
import math
import re

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data import coco_keypoints
from keras_evopose.data.coco_instances import load_coco_instances
from keras_evopose.data.keypoint_layout import KeypointLayout

_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}\.tfrecord$")


def _layout_path(prefix):
    return f"{prefix}-layout.json"


@keras_evopose_export("keras_evopose.data.write_tfrecords")
def write_tfrecords(
    annotations,
    images,
    output_prefix,
    detections=None,
    examples_per_shard=1024,
    min_detection_score=0.0,
    person_crops=None,
    jpeg_quality=95,
):
    """Writes the instances of a COCO keypoints JSON as TFRecord shards.

    One example per person: the encoded image file, `image_id`,
    `annotation_id`, `box` (4 floats), `keypoints` (3K floats) and `score`.
    The keypoint layout goes to `{output_prefix}-layout.json`. All paths go
    through `tf.io.gfile`, so `gs://bucket/coco/train` works for TPUs.

    With `person_crops` (a `SampleOptions`), each example holds instead of
    the image file only the region of it that any augmentation within
    those options reads (`person_crop_regions`: largest scale, every
    rotation, half-body crops when enabled), at the image's resolution,
    re-encoded as JPEG, with its origin and the image size: the pipeline
    then decodes a person-sized JPEG rather than the whole image, and
    yields the same samples up to JPEG re-encoding noise. Readers must
    stay within these options (same `input_size`; `padding`,
    `scale_factor`, `rotation_factor` at most these; half-body only if
    enabled here); `tfrecord_keypoints_dataset` checks it.

    Args:
        annotations, images, detections, min_detection_score: as in
            `load_coco_instances`.
        output_prefix: shards are `{output_prefix}-00000-of-000NN.tfrecord`.
        examples_per_shard: int. Defaults to 1024.
        person_crops: `None` (whole image files) or a `SampleOptions`.
        jpeg_quality: int, quality of the re-encoded person crops.

    Returns:
        The list of shard paths.
    """
    import tensorflow as tf

    instances = load_coco_instances(
        annotations,
        images,
        detections=detections,
        min_detection_score=min_detection_score,
    )
    layout = dataclasses.asdict(instances.layout)
    layout["category_id"] = instances.category_id
    regions = None
    if person_crops is not None:
        written = {
            field: getattr(person_crops, field)
            for field in coco_keypoints.PERSON_CROP_BOUNDS
        }
        if person_crops.rotation_probability == 0:
            written["rotation_factor"] = 0.0  # no rotation was bounded
        regions, widened = coco_keypoints.person_crop_regions(
            instances.boxes,
            instances.keypoints,
            instances.image_sizes,
            instances.layout,
            person_crops,
        )
        layout["person_crops"] = {
            "options": written,
            "people": len(instances),
            "widened_for_half_body": int(widened.sum()),
        }
    num_shards = max(1, math.ceil(len(instances) / examples_per_shard))
    paths = [
        f"{output_prefix}-{index:05d}-of-{num_shards:05d}.tfrecord"
        for index in range(num_shards)
    ]

    def floats(values):
        return tf.train.Feature(
            float_list=tf.train.FloatList(value=list(map(float, values)))
        )

    def ints(values):
        return tf.train.Feature(
            int64_list=tf.train.Int64List(value=list(map(int, values)))
        )

    def crop_record(encoded, row):
        """The encoded region of `row`'s person and its extra features."""
        x0, y0, x1, y1 = (int(v) for v in regions[row])
        pixels = tf.io.decode_image(
            encoded, channels=3, expand_animations=False
        )
        # Full-resolution chroma: subsampling the already upsampled chroma
        # again costs up to 80 levels at colour edges (4:2:0, measured).
        crop = tf.io.encode_jpeg(
            pixels[y0:y1, x0:x1],
            quality=jpeg_quality,
            chroma_downsampling=False,
        )
        return crop.numpy(), {
            "crop_origin": ints([x0, y0]),
            "image_size": ints(instances.image_sizes[row]),
        }

    cache = {}
    for index, path in enumerate(paths):
        with tf.io.TFRecordWriter(path) as writer:
            start = index * examples_per_shard
            for row in range(
                start, min(start + examples_per_shard, len(instances))
            ):
                image_path = instances.image_paths[row]
                if image_path not in cache:
                    cache.clear()
                    with tf.io.gfile.GFile(image_path, "rb") as handle:
                        cache[image_path] = handle.read()
                encoded, extra = cache[image_path], {}
                if regions is not None:
                    encoded, extra = crop_record(encoded, row)
                feature = {
                    **extra,
                    "image": tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[encoded])
                    ),
                    "image_id": ints([instances.image_ids[row]]),
                    "annotation_id": ints([instances.annotation_ids[row]]),
                    "box": floats(instances.boxes[row]),
                    "keypoints": floats(instances.keypoints[row].ravel()),
                    "score": floats([instances.scores[row]]),
                }
                example = tf.train.Example(
                    features=tf.train.Features(feature=feature)
                )
                writer.write(example.SerializeToString())
    with tf.io.gfile.GFile(_layout_path(output_prefix), "w") as handle:
        json.dump(layout, handle)
    return paths


@keras_evopose_export("keras_evopose.data.tfrecord_keypoints_dataset")
def tfrecord_keypoints_dataset(
    file_pattern,
    options=None,
    training=False,
    batch_size=32,
    seed=None,
    shuffle=None,
    augment=None,
    repeat=False,
    drop_remainder=False,
    include_metadata=False,
    shuffle_buffer=10000,
    layout=None,
    warp="data",
    **sample_options,
):
    """The `coco_keypoints_dataset` pipeline over `write_tfrecords` shards.

    Person-crop records (`write_tfrecords(person_crops=...)`) are read
    alike; `options` beyond the ones they were written for raise.

    Args:
        file_pattern: glob of the shards (local or `gs://`).
        options: a `SampleOptions`.
        layout: a `KeypointLayout`, or `None` to read the
            `{prefix}-layout.json` written beside the shards.
        shuffle_buffer: int, shuffle buffer size (examples).
        **sample_options: `SampleOptions` fields (`input_size`,
            `heatmap_size`, ...) used instead of `options` or replacing
            its fields.
        Other arguments: as in `coco_keypoints_dataset`.

    Returns:
        A batched `tf.data.Dataset` of `(images, heatmaps, target_weights)`.
    """
    import tensorflow as tf

    options = coco_keypoints.resolve_options(options, sample_options)
    coco_keypoints.check_batch_size(batch_size)
    # A loose pattern such as `prefix-*` also matches the layout file.
    files = sorted(
        path
        for path in tf.io.gfile.glob(str(file_pattern))
        if not path.endswith("-layout.json")
    )
    if not files:
        raise FileNotFoundError(f"No TFRecord file matches {file_pattern}")
    layout_path = _layout_path(_SHARD_SUFFIX.sub("", files[0]))
    fields = {}
    if layout is None or tf.io.gfile.exists(layout_path):
        with tf.io.gfile.GFile(layout_path, "r") as handle:
            fields = json.load(handle)
    fields.pop("category_id", None)
    person_crops = fields.pop("person_crops", None)
    if layout is None:
        layout = KeypointLayout(
            **{
                key: tuple(map(tuple, value))
                if key in ("flip_pairs", "skeleton")
                else (tuple(value) if value is not None else None)
                for key, value in fields.items()
            }
        )
    shuffle = training if shuffle is None else shuffle
    augment = training if augment is None else augment
    if person_crops is not None:
        coco_keypoints.check_person_crops(
            person_crops["options"], options, augment
        )
    num_keypoints = layout.num_keypoints
    features = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "image_id": tf.io.FixedLenFeature([], tf.int64),
        "annotation_id": tf.io.FixedLenFeature([], tf.int64),
        "box": tf.io.FixedLenFeature([4], tf.float32),
        "keypoints": tf.io.FixedLenFeature([3 * num_keypoints], tf.float32),
        "score": tf.io.FixedLenFeature([], tf.float32),
    }
    if person_crops is not None:
        features["crop_origin"] = tf.io.FixedLenFeature([2], tf.int64)
        features["image_size"] = tf.io.FixedLenFeature([2], tf.int64)

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, features)
        record = {
            "image_bytes": example["image"],
            "image_id": example["image_id"],
            "annotation_id": example["annotation_id"],
            "box": example["box"],
            "keypoints": tf.reshape(example["keypoints"], [num_keypoints, 3]),
            "score": example["score"],
        }
        for key in ("crop_origin", "image_size"):
            if key in example:
                record[key] = tf.cast(example[key], "int32")
        return record

    records = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        records = records.shuffle(len(files), seed=seed)
    records = records.interleave(
        tf.data.TFRecordDataset,
        # Without shuffling, read shards in order (same order as the JSON).
        cycle_length=min(len(files), 10) if shuffle else 1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed)
    if repeat:
        records = records.repeat()
    records = records.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    samples = coco_keypoints.build_samples(
        records,
        layout,
        options,
        augment,
        seed,
        batch_size,
        drop_remainder,
        warp=warp,
    )
    return coco_keypoints.finish_dataset(samples, include_metadata)


@keras_evopose_export("keras_evopose.data.tfrecords_info")
def tfrecords_info(file_pattern, count=True):
    """What `write_tfrecords` shards hold, without building a pipeline.

    Args:
        file_pattern: glob of the shards (local or `gs://`).
        count: bool, also count the examples (reads every shard).

    Returns:
        `(layout, num_examples)`: the `KeypointLayout` written beside the
        shards and the number of examples (`None` unless `count`).

    Raises:
        FileNotFoundError: no shard matches, or the layout file is missing.
    """
    import tensorflow as tf

    files = sorted(
        path
        for path in tf.io.gfile.glob(str(file_pattern))
        if not path.endswith("-layout.json")
    )
    if not files:
        raise FileNotFoundError(f"No TFRecord file matches {file_pattern}")
    layout_path = _layout_path(_SHARD_SUFFIX.sub("", files[0]))
    if not tf.io.gfile.exists(layout_path):
        raise FileNotFoundError(
            f"{layout_path} is missing: write the shards with "
            "`keras-evopose write-tfrecords` (or write_tfrecords)"
        )
    with tf.io.gfile.GFile(layout_path, "r") as handle:
        fields = json.load(handle)
    for key in ("category_id", "person_crops"):
        fields.pop(key, None)
    layout = KeypointLayout(
        **{
            key: tuple(map(tuple, value))
            if key in ("flip_pairs", "skeleton")
            else (tuple(value) if value is not None else None)
            for key, value in fields.items()
        }
    )
    num_examples = None
    if count:
        records = tf.data.TFRecordDataset(files)
        num_examples = int(records.reduce(0, lambda total, _: total + 1))
    return layout, num_examples
