"""Top-down COCO keypoint samples as a `tf.data` pipeline."""

import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data import geometry
from keras_evopose.data.coco_instances import load_coco_instances

# Input normalization, stated once: RGB in [0, 255] -> ImageNet statistics.
# The crop is warped from the raw image (black outside it) and then
# normalized; `normalize_image` is the only place this happens.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


@keras_evopose_export("keras_evopose.data.normalize_image")
def normalize_image(image):
    """RGB values in [0, 255] (NumPy or TF, any float/uint8) -> the model's
    input: `(image / 255 - IMAGE_MEAN) / IMAGE_STD`, float32."""
    if isinstance(image, np.ndarray):
        image = image.astype("float32")
    else:
        import tensorflow as tf

        image = tf.cast(image, "float32")
    mean = np.asarray(IMAGE_MEAN, "float32")
    std = np.asarray(IMAGE_STD, "float32")
    return (image / 255.0 - mean) / std


# First bytes of the image formats `tf.io.decode_image` reads (JPEG, PNG,
# GIF, BMP): checked before decoding so a bad file is named in the error.
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")

# Defaults of the sample options shared by every dataset constructor, in
# `build_samples`' argument order.
SAMPLE_OPTIONS = {
    "padding": 1.25,
    "scale_factor": 0.3,
    "rotation_factor": 40.0,
    "rotation_probability": 0.6,
    "flip_probability": 0.5,
    "half_body_probability": 0.0,
    "half_body_min_keypoints": 8,
    "heatmap_peak": 255.0,
}


def default_heatmap_size(input_size):
    """Heatmap size when none is given: a quarter of the input (the
    extra_small preset); pass `model.output_shape[1:3]` for other models."""
    return (input_size[0] // 4, input_size[1] // 4)


def default_sigma(heatmap_size):
    """The reference's Gaussian width: 2 at 64 heatmap rows, scaled."""
    return 2.0 * heatmap_size[0] / 64.0


def _check_size(name, size):
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(int(v) == v and v > 0 for v in size)
    ):
        raise ValueError(
            f"`{name}` must be (height, width) positive ints. "
            f"Received: {name}={size}"
        )
    return (int(size[0]), int(size[1]))


def build_samples(
    records,
    layout,
    input_size,
    heatmap_size,
    sigma,
    augment,
    seed,
    batch_size,
    drop_remainder,
    padding,
    scale_factor,
    rotation_factor,
    rotation_probability,
    flip_probability,
    half_body_probability,
    half_body_min_keypoints,
    heatmap_peak,
):
    """Maps a dataset of instance records to batches of sample dicts.

    A record holds `image_path` (or `image_bytes`: the encoded file),
    `image_id`, `annotation_id`, `box`, `keypoints` `(K, 3)` and `score`.
    Each output batch dict holds `image` (the normalized crops), `heatmaps`
    `(batch, h, w, K)`, `target_weights` `(batch, 1, 1, K)` and the
    metadata needed to map predictions back: `center`, `scale`,
    `image_id`, `annotation_id`, `score`.

    Only decoding and the warp run per sample; augmentation draws, crop
    matrices, keypoint transforms, normalization and Gaussians run once
    per batch, which keeps the per-sample work close to a bare decode.
    """
    import tensorflow as tf

    height, width = input_size
    heatmap_height, heatmap_width = heatmap_size
    num_keypoints = layout.num_keypoints
    permutation = tf.constant(layout.flip_permutation, "int32")
    upper = np.zeros(num_keypoints, bool)
    upper[list(layout.upper_body)] = True
    upper = tf.constant(upper)
    if half_body_probability > 0 and not layout.upper_body:
        raise ValueError(
            "half_body_probability > 0 needs the layout's upper-body joints; "
            f"the keypoints {layout.names} have none. Pass a KeypointLayout "
            "with `upper_body` or set half_body_probability=0."
        )

    def half_body(keypoints, center, scale, seeds, count):
        visible = keypoints[..., 2] > 0
        num_upper = tf.reduce_sum(tf.cast(visible & upper, "int32"), -1)
        num_lower = tf.reduce_sum(tf.cast(visible & ~upper, "int32"), -1)
        choose_upper = tf.random.stateless_uniform([count], seeds[0]) < 0.5
        # Take the chosen half if it has 2 visible joints, else the other.
        use_upper = tf.where(choose_upper, num_upper >= 2, num_lower < 2)
        selected = visible & tf.where(use_upper[:, None], upper, ~upper)
        num_selected = tf.reduce_sum(tf.cast(selected, "float32"), -1)
        num_visible = tf.reduce_sum(tf.cast(visible, "int32"), -1)
        draw = tf.random.stateless_uniform([count], seeds[1])
        apply = (
            (draw < half_body_probability)
            & (num_visible > half_body_min_keypoints)
            & (num_selected >= 2)
        )
        points = keypoints[..., :2]
        mask = selected[..., None]
        low = tf.reduce_min(tf.where(mask, points, 1e9), -2)
        high = tf.reduce_max(tf.where(mask, points, -1e9), -2)
        mean = tf.math.divide_no_nan(
            tf.reduce_sum(tf.where(mask, points, 0.0), -2),
            num_selected[:, None],
        )
        extent = high - low
        box_height = tf.maximum(extent[:, 1], extent[:, 0] * height / width)
        new_scale = 1.5 * padding * box_height / height
        return (
            tf.where(apply[:, None], mean, center),
            tf.where(apply, new_scale, scale),
        )

    def plan(batch, random_seed):
        """Crop matrices and heatmap-space keypoints for a batch."""
        keypoints = batch["keypoints"]
        count = tf.shape(keypoints)[0]
        center, scale = geometry.box_to_center_scale(
            batch["box"], input_size, padding, xp=tf
        )
        rotation = tf.zeros([count])
        flip = tf.zeros([count], "bool")
        if augment:
            seeds = tf.random.experimental.stateless_split(
                tf.stack([random_seed, tf.constant(0, "int64")]), 6
            )
            if half_body_probability > 0:
                center, scale = half_body(
                    keypoints, center, scale, seeds[:2], count
                )
            scale = scale * tf.clip_by_value(
                1.0
                + scale_factor * tf.random.stateless_normal([count], seeds[2]),
                1.0 - scale_factor,
                1.0 + scale_factor,
            )
            angle = tf.clip_by_value(
                rotation_factor * tf.random.stateless_normal([count], seeds[3]),
                -2.0 * rotation_factor,
                2.0 * rotation_factor,
            )
            rotate = (
                tf.random.stateless_uniform([count], seeds[4])
                < rotation_probability
            )
            rotation = tf.where(rotate, angle, 0.0)
            flip = (
                tf.random.stateless_uniform([count], seeds[5])
                < flip_probability
            )

        crop_to_image = geometry.crop_to_image_matrix(
            center, scale, input_size, rotation, flip, xp=tf
        )
        image_to_crop = geometry.image_to_crop_matrix(
            center, scale, input_size, rotation, flip, xp=tf
        )
        points = geometry.apply_affine(image_to_crop, keypoints[..., :2], xp=tf)
        visibility = keypoints[..., 2]
        # A flipped crop shows the left joints where the right ones were.
        points = tf.where(
            flip[:, None, None], tf.gather(points, permutation, axis=1), points
        )
        visibility = tf.where(
            flip[:, None],
            tf.gather(visibility, permutation, axis=1),
            visibility,
        )
        heatmap_x, heatmap_y = geometry.crop_to_heatmap(
            points, input_size, heatmap_size
        )
        weights = tf.cast(
            (visibility > 0)
            & (heatmap_x >= -0.5)
            & (heatmap_x < heatmap_width - 0.5)
            & (heatmap_y >= -0.5)
            & (heatmap_y < heatmap_height - 0.5),
            "float32",
        )
        planned = {
            key: batch[key] for key in ("image_id", "annotation_id", "score")
        }
        planned["encoded"] = (
            batch["image_bytes"]
            if "image_bytes" in batch
            else batch["image_path"]
        )
        planned.update(
            transform=tf.concat(
                [tf.reshape(crop_to_image, [-1, 6]), tf.zeros([count, 2])], 1
            ),
            heatmap_x=heatmap_x,
            heatmap_y=heatmap_y,
            target_weights=weights,
            center=center,
            scale=scale,
        )
        return planned

    def warp(sample):
        encoded = sample.pop("encoded")
        source = sample["image_id"]
        if not reads_bytes:
            source = encoded
            encoded = tf.io.read_file(encoded)
        # Name the file in the error instead of failing inside the decoder.
        known = tf.reduce_any(
            [
                tf.equal(
                    tf.strings.substr(encoded, 0, len(signature)), signature
                )
                for signature in IMAGE_SIGNATURES
            ]
        )
        check = tf.debugging.Assert(
            known, ["Not a JPEG/PNG/GIF/BMP image:", source], summarize=1
        )
        with tf.control_dependencies([check]):
            image = tf.io.decode_image(
                encoded, channels=3, expand_animations=False
            )
        crop = tf.raw_ops.ImageProjectiveTransformV3(
            images=image[None],
            transforms=sample.pop("transform")[None],
            output_shape=tf.constant([height, width], "int32"),
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )[0]
        crop.set_shape((height, width, 3))
        sample["image"] = crop
        return sample

    def render(batch):
        batch = dict(batch)
        batch["image"] = normalize_image(batch["image"])
        heatmap_x = batch.pop("heatmap_x")
        heatmap_y = batch.pop("heatmap_y")
        weights = batch["target_weights"]
        grid_x = tf.range(heatmap_width, dtype="float32")
        grid_y = tf.range(heatmap_height, dtype="float32")
        denominator = 2.0 * sigma * sigma
        gaussian_x = tf.exp(
            -tf.square(grid_x - heatmap_x[..., None]) / denominator
        )
        gaussian_y = tf.exp(
            -tf.square(grid_y - heatmap_y[..., None]) / denominator
        )
        batch["heatmaps"] = tf.einsum(
            "bky,bkx->byxk",
            gaussian_y * (weights * heatmap_peak)[..., None],
            gaussian_x,
        )
        batch["target_weights"] = weights[:, None, None, :]
        return batch

    reads_bytes = "image_bytes" in records.element_spec
    randomness = tf.data.Dataset.random(
        seed=seed, rerandomize_each_iteration=True
    )
    return (
        tf.data.Dataset.zip(
            (records.batch(batch_size, drop_remainder), randomness)
        )
        .map(plan, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(warp, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder)
        .map(render, num_parallel_calls=tf.data.AUTOTUNE)
    )


def finish_dataset(samples, include_metadata):
    """Batches of sample dicts -> `(images, heatmaps, target_weights)`
    (Keras `(x, y, sample_weight)`), or the dicts with `include_metadata`."""
    import tensorflow as tf

    if not include_metadata:
        samples = samples.map(
            lambda sample: (
                sample["image"],
                sample["heatmaps"],
                sample["target_weights"],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return samples.prefetch(tf.data.AUTOTUNE)


def check_options(input_size, heatmap_size, sigma, batch_size):
    input_size = _check_size("input_size", input_size)
    if heatmap_size is None:
        heatmap_size = default_heatmap_size(input_size)
    heatmap_size = _check_size("heatmap_size", heatmap_size)
    if sigma is None:
        sigma = default_sigma(heatmap_size)
    if sigma <= 0:
        raise ValueError(f"`sigma` must be > 0. Received: sigma={sigma}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: {batch_size}"
        )
    return input_size, heatmap_size, float(sigma)


@keras_evopose_export("keras_evopose.data.coco_keypoints_dataset")
def coco_keypoints_dataset(
    annotations,
    images,
    input_size=(256, 192),
    heatmap_size=None,
    training=False,
    batch_size=32,
    sigma=None,
    detections=None,
    seed=None,
    shuffle=None,
    augment=None,
    repeat=False,
    drop_remainder=False,
    include_metadata=False,
    padding=1.25,
    scale_factor=0.3,
    rotation_factor=40.0,
    rotation_probability=0.6,
    flip_probability=0.5,
    half_body_probability=0.0,
    half_body_min_keypoints=8,
    heatmap_peak=255.0,
    min_detection_score=0.0,
    keypoints_from_ground_truth=False,
):
    """Top-down samples from a COCO keypoints JSON and an image folder.

    Each person box is widened to the input aspect ratio, padded by
    `padding` and warped (one bilinear affine warp: crop, scale, rotation,
    flip) to `input_size`; keypoints go through the same matrix. Targets are
    unnormalized Gaussians of peak `heatmap_peak` centred on the exact
    (sub-pixel) keypoint position at `heatmap_size`; a joint's target
    weight is 1 when it is labelled and inside the crop, else 0 (its
    heatmap is then all zeros). Geometry conventions:
    `keras_evopose.data.geometry`. Input normalization: `normalize_image`.

    The dataset yields `(images, heatmaps, target_weights)` batches, i.e.
    Keras' `(x, y, sample_weight)`: `target_weights` has shape
    `(batch, 1, 1, K)` and `keras_evopose.losses.HeatmapMSE` multiplies its
    per-pixel errors by it, so `model.fit(ds)` and `model.evaluate(ds)`
    need nothing else.

    Augmentation (when `augment`, default `training`), in this order:
    half-body with probability `half_body_probability` (a uniform draw; the
    reference code's normal draw applied it to about half of the people
    with the probability set to 0), scale by `clip(1 + N(0, 1) *
    scale_factor, 1 - scale_factor, 1 + scale_factor)`, rotation by
    `clip(N(0, 1) * rotation_factor, +-2 rotation_factor)` degrees with
    probability `rotation_probability`, horizontal flip with probability
    `flip_probability` (left/right joints swapped). Draws are stateless and
    derived from `seed`, so a seeded dataset is deterministic; each new
    iteration (epoch) reshuffles and redraws.

    Args:
        annotations: path or `tf.io.gfile` URL of the COCO keypoints JSON.
        images: folder (or URL) holding its images.
        input_size: `(height, width)` of the model input.
        heatmap_size: `(height, width)` of the model output, e.g.
            `model.output_shape[1:3]`. Defaults to `input_size / 4`.
        training: bool, sets the defaults of `shuffle` and `augment`.
        batch_size: int.
        sigma: Gaussian standard deviation in heatmap pixels. Defaults to
            `2 * heatmap_height / 64` (2 at 64x48, 4 at 128x96).
        detections: optional COCO results JSON of person boxes to use
            instead of the ground-truth boxes (evaluation).
        seed: int or `None`; fixes the shuffle order and augmentation.
        shuffle: bool, defaults to `training`.
        augment: bool, defaults to `training`.
        repeat: bool, repeat forever (use with `steps_per_epoch`).
        drop_remainder: bool, drop the last partial batch.
        include_metadata: bool, yield dicts with `image`, `heatmaps`,
            `target_weights`, `center`, `scale`, `image_id`,
            `annotation_id` and `score` (used by the evaluator).
        padding: float, box padding factor.
        scale_factor, rotation_factor, rotation_probability,
        flip_probability, half_body_probability, half_body_min_keypoints:
            augmentation settings (see above).
        heatmap_peak: float, the Gaussian's peak (255 in the reference).
        min_detection_score: float, detections below it are skipped.
        keypoints_from_ground_truth: bool, give detections the keypoints of
            the best-overlapping ground-truth person (ceiling AP).

    Returns:
        A batched `tf.data.Dataset`.

    Example:

    >>> dataset = keras_evopose.data.coco_keypoints_dataset(
    ...     "data/coco_kpt_mini/annotations/person_keypoints_val2017_mini.json",
    ...     "data/coco_kpt_mini/val2017", input_size=(64, 48),
    ...     heatmap_size=(32, 24), batch_size=8)
    >>> images, heatmaps, target_weights = next(iter(dataset))
    >>> [tuple(tensor.shape) for tensor in (images, heatmaps, target_weights)]
    [(8, 64, 48, 3), (8, 32, 24, 17), (8, 1, 1, 17)]
    """
    import tensorflow as tf

    input_size, heatmap_size, sigma = check_options(
        input_size, heatmap_size, sigma, batch_size
    )
    shuffle = training if shuffle is None else shuffle
    augment = training if augment is None else augment
    instances = load_coco_instances(
        annotations,
        images,
        detections=detections,
        min_detection_score=min_detection_score,
        keypoints_from_ground_truth=keypoints_from_ground_truth,
    )
    records = tf.data.Dataset.from_tensor_slices(
        {
            "image_path": instances.image_paths,
            "image_id": instances.image_ids,
            "annotation_id": instances.annotation_ids,
            "box": instances.boxes,
            "keypoints": instances.keypoints,
            "score": instances.scores,
        }
    )
    if shuffle:
        records = records.shuffle(
            len(instances), seed=seed, reshuffle_each_iteration=True
        )
    if repeat:
        records = records.repeat()
    samples = build_samples(
        records,
        instances.layout,
        input_size,
        heatmap_size,
        sigma,
        augment,
        seed,
        batch_size,
        drop_remainder,
        padding,
        scale_factor,
        rotation_factor,
        rotation_probability,
        flip_probability,
        half_body_probability,
        half_body_min_keypoints,
        heatmap_peak,
    )
    return finish_dataset(samples, include_metadata)
