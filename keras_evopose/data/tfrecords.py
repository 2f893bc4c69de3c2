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
):
    """Writes the instances of a COCO keypoints JSON as TFRecord shards.

    One example per person: the encoded image file, `image_id`,
    `annotation_id`, `box` (4 floats), `keypoints` (3K floats) and `score`.
    The keypoint layout goes to `{output_prefix}-layout.json`. All paths go
    through `tf.io.gfile`, so `gs://bucket/coco/train` works for TPUs.

    Args:
        annotations, images, detections, min_detection_score: as in
            `load_coco_instances`.
        output_prefix: shards are `{output_prefix}-00000-of-000NN.tfrecord`.
        examples_per_shard: int. Defaults to 1024.

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
                feature = {
                    "image": tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[cache[image_path]])
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
    layout = dataclasses.asdict(instances.layout)
    layout["category_id"] = instances.category_id
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
    **sample_options,
):
    """The `coco_keypoints_dataset` pipeline over `write_tfrecords` shards.

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
    coco_keypoints.check_options(
        options.input_size, options.heatmap_size, options.sigma, batch_size
    )
    # A loose pattern such as `prefix-*` also matches the layout file.
    files = sorted(
        path
        for path in tf.io.gfile.glob(str(file_pattern))
        if not path.endswith("-layout.json")
    )
    if not files:
        raise FileNotFoundError(f"No TFRecord file matches {file_pattern}")
    if layout is None:
        prefix = _SHARD_SUFFIX.sub("", files[0])
        with tf.io.gfile.GFile(_layout_path(prefix), "r") as handle:
            fields = json.load(handle)
        fields.pop("category_id", None)
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
    num_keypoints = layout.num_keypoints
    features = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "image_id": tf.io.FixedLenFeature([], tf.int64),
        "annotation_id": tf.io.FixedLenFeature([], tf.int64),
        "box": tf.io.FixedLenFeature([4], tf.float32),
        "keypoints": tf.io.FixedLenFeature([3 * num_keypoints], tf.float32),
        "score": tf.io.FixedLenFeature([], tf.float32),
    }

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, features)
        return {
            "image_bytes": example["image"],
            "image_id": example["image_id"],
            "annotation_id": example["annotation_id"],
            "box": example["box"],
            "keypoints": tf.reshape(example["keypoints"], [num_keypoints, 3]),
            "score": example["score"],
        }

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
        records, layout, options, augment, seed, batch_size, drop_remainder
    )
    return coco_keypoints.finish_dataset(samples, include_metadata)
