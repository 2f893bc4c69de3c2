"""Top-down COCO keypoint samples as a `tf.data` pipeline."""

import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data import augmentation
from keras_evopose.data import geometry
from keras_evopose.data import heatmaps as heatmaps_lib
from keras_evopose.data import sample_options as sample_options_lib
from keras_evopose.data.coco_instances import load_coco_instances
from keras_evopose.data.image_files import decode_window
from keras_evopose.data.keypoint_layout import KeypointLayoutError
from keras_evopose.data.sample_options import SampleOptions
from keras_evopose.utils.validation import check_positive_int

# The crop is warped from the raw image and then normalized;
# `normalize_image` is the only place this happens in the data pipeline.
IMAGE_MEAN = sample_options_lib.IMAGE_MEAN
IMAGE_STD = sample_options_lib.IMAGE_STD


@keras_evopose_export("keras_evopose.data.normalize_image")
def normalize_image(image, mean=IMAGE_MEAN, std=IMAGE_STD):
    """RGB values in [0, 255] (NumPy or TF, any float/uint8) -> the model's
    input: `(image / 255 - mean) / std`, float32; `mean` and `std` are a
    `SampleOptions`' `image_mean` and `image_std` (ImageNet's by
    default)."""
    if isinstance(image, np.ndarray):
        image = image.astype("float32")
    else:
        import tensorflow as tf

        image = tf.cast(image, "float32")
    mean = np.asarray(mean, "float32")
    std = np.asarray(std, "float32")
    return (image / 255.0 - mean) / std


def resolve_options(options, sample_options):
    """`SampleOptions` from `options` and/or keyword overrides."""
    unknown = set(sample_options) - set(SampleOptions.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"Unknown sample options {sorted(unknown)}; expected some of "
            f"{sorted(SampleOptions.__dataclass_fields__)}."
        )
    if options is None:
        # Missing sizes reach SampleOptions' own message, not a TypeError.
        sizes = {"input_size": None, "heatmap_size": None}
        return SampleOptions(**{**sizes, **sample_options})
    if not isinstance(options, SampleOptions):
        raise ValueError(
            "`options` must be a keras_evopose.data.SampleOptions. "
            f"Received: {type(options).__name__}"
        )
    return options.replace(**sample_options) if sample_options else options


def check_batch_size(batch_size):
    """Raises unless `batch_size` is a positive int (the sizes and sigma
    are checked by `SampleOptions` itself)."""
    check_positive_int("batch_size", batch_size, integral_floats=True)


def crop_windows(crop_to_image, input_size):
    """Integer source windows `(batch, 4)` as `[x0, y0, x1, y1)` holding
    every pixel the bilinear warp of each crop reads (before clipping to
    the image): the bounding box of the crop's corners, one pixel wider on
    each side than the interpolation taps need."""
    import tensorflow as tf

    height, width = input_size
    corners = tf.constant(
        [[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]],
        "float32",
    )
    points = geometry.apply_affine(
        crop_to_image,
        tf.broadcast_to(corners, [tf.shape(crop_to_image)[0], 4, 2]),
        xp=tf,
    )
    low = tf.floor(tf.reduce_min(points, 1)) - 1.0
    high = tf.floor(tf.reduce_max(points, 1)) + 3.0
    # Keep far-away crops representable as int32.
    low = tf.clip_by_value(low, -1e6, 1e6)
    high = tf.clip_by_value(high, -1e6, 1e6)
    return tf.cast(tf.concat([low, high], 1), "int32")


def person_crop_regions(boxes, keypoints, image_sizes, layout, options):
    """The image region any augmentation of each person reads.

    The union of `crop_windows` over the augmentation range `options`
    bounds: the largest scale at every rotation the draws allow (1 degree
    steps, one pixel of margin for the arc between steps), of the box crop
    and, when `half_body_probability > 0`, of both half-body crops.
    Smaller scales and flips stay inside. Clipped to the image.

    Args:
        boxes: `(N, 4)` COCO boxes; keypoints: `(N, K, 3)`.
        image_sizes: `(N, 2)` images' `(height, width)`.
        layout: `KeypointLayout`; options: `SampleOptions`.

    Returns:
        `(regions, widened)`: int32 `(N, 4)` `[x0, y0, x1, y1)` and a bool
        `(N,)`, whether a half-body crop reaches beyond the box crop's
        region (so the region was widened for it).
    """
    import tensorflow as tf

    input_size = options.input_size
    keypoints = tf.constant(keypoints, "float32")
    center, scale = geometry.box_to_center_scale(
        boxes, input_size, options.padding, xp=tf
    )
    crops = [(center, scale)]
    if options.half_body_probability > 0 and layout.upper_body:
        for upper in (True, False):
            use_upper = tf.fill([len(boxes)], upper)
            half_center, half_scale, num_selected = augmentation.half_body_crop(
                keypoints, use_upper, options, layout
            )
            possible = num_selected >= 2
            crops.append(
                (
                    tf.where(possible[:, None], half_center, center),
                    tf.where(possible, half_scale, scale),
                )
            )
    limit = 0.0
    if options.rotation_probability > 0:
        limit = 2.0 * options.rotation_factor
    angles = np.linspace(-limit, limit, 2 * int(np.ceil(limit)) + 1)
    windows = []
    for crop_center, crop_scale in crops:
        largest = crop_scale * (1.0 + options.scale_factor)
        windows.append(
            tf.stack(
                [
                    crop_windows(
                        geometry.crop_to_image_matrix(
                            crop_center,
                            largest,
                            input_size,
                            tf.fill([len(boxes)], float(angle)),
                            xp=tf,
                        ),
                        input_size,
                    )
                    for angle in angles
                ]
            )
        )
    windows = tf.concat(windows, 0)  # (crops x angles, N, 4)
    low = tf.reduce_min(windows[..., :2], 0) - 1
    high = tf.reduce_max(windows[..., 2:], 0) + 1
    regions = tf.concat([low, high], 1).numpy()
    box_only = windows[: len(angles)]
    box_region = tf.concat(
        [
            tf.reduce_min(box_only[..., :2], 0) - 1,
            tf.reduce_max(box_only[..., 2:], 0) + 1,
        ],
        1,
    ).numpy()
    image_sizes = np.asarray(image_sizes)
    size = np.concatenate([image_sizes[:, ::-1], image_sizes[:, ::-1]], 1)
    widened = np.any(
        np.clip(regions, 0, size) != np.clip(box_region, 0, size), axis=1
    )
    # Start on the source JPEG's block grid (16 pixels covers 4:2:0):
    # re-encoding the same blocks adds less noise (1.53 vs 2.17 levels
    # at a 3-pixel offset, quality 95, bundled images).
    regions[:, :2] = regions[:, :2] // 16 * 16
    regions = np.clip(regions, 0, size)
    return regions.astype("int32"), widened


# The augmentation fields a person-crop record's region bounds, and how a
# reader's value may differ: at most ("<=") or only if zero ("0").
PERSON_CROP_BOUNDS = {
    "input_size": "==",
    "padding": "<=",
    "scale_factor": "<=",
    "rotation_factor": "<=",
    "half_body_probability": "0",
}


def check_person_crops(written, options, augment):
    """Raises if a reader's `options` may read beyond the regions stored
    with the `written` options (a dict of `PERSON_CROP_BOUNDS` fields)."""
    fields = ["input_size", "padding"]
    if augment:
        fields += ["scale_factor", "half_body_probability"]
        if options.rotation_probability > 0:
            fields.append("rotation_factor")
    for field in fields:
        value, stored = getattr(options, field), written[field]
        if field == "input_size":
            stored = tuple(stored)
        rule = PERSON_CROP_BOUNDS[field]
        if rule == "==":
            ok = value == stored
        elif rule == "<=":
            ok = value <= stored
        else:
            ok = value == 0 or stored > 0
        if not ok:
            raise ValueError(
                f"These person-crop records hold the regions for {field}="
                f"{stored!r}; {field}={value!r} would read beyond them. "
                "Rewrite them with `write_tfrecords(person_crops=options)` "
                "or keep within their options."
            )


def crop_to_pixels_matrix(crop_to_image, origin):
    """The `(2, 3)` crop -> image matrix made to map into a decoded window
    whose top-left pixel is image pixel `origin` `(x, y)`."""
    import tensorflow as tf

    # Window coordinates = image coordinates - origin.
    origin = tf.cast(origin, "float32")
    shift = tf.stack([[0.0, 0.0, origin[0]], [0.0, 0.0, origin[1]]])
    return crop_to_image - shift


def warp_crop(pixels, origin, crop_to_image, input_size):
    """The bilinear warp of one crop from its decoded window (uint8 out,
    black outside the image)."""
    import tensorflow as tf

    height, width = input_size
    matrix = tf.reshape(crop_to_pixels_matrix(crop_to_image, origin), [6])
    crop = tf.raw_ops.ImageProjectiveTransformV3(
        images=pixels[None],
        transforms=tf.concat([matrix, tf.zeros([2])], 0)[None],
        output_shape=tf.constant([height, width], "int32"),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0]
    crop.set_shape((height, width, 3))
    return crop


def image_coverage(crop_to_image, image_size, input_size):
    """`(batch, H, W, 1)` share of each crop pixel's bilinear taps that
    fall inside the image (1 inside, 0 outside, a ramp on the border):
    the warp's weight on the fill value is `1 - coverage`."""
    import tensorflow as tf

    height, width = input_size
    grid_y, grid_x = tf.meshgrid(
        tf.range(height, dtype="float32"),
        tf.range(width, dtype="float32"),
        indexing="ij",
    )
    matrix = crop_to_image[:, :, :, None, None]
    source_x = matrix[:, 0, 0] * grid_x + matrix[:, 0, 1] * grid_y
    source_x += matrix[:, 0, 2]
    source_y = matrix[:, 1, 0] * grid_x + matrix[:, 1, 1] * grid_y
    source_y += matrix[:, 1, 2]
    size = tf.cast(image_size, "float32")[:, :, None, None]
    cover_x = tf.clip_by_value(
        tf.minimum(source_x + 1.0, size[:, 1] - source_x), 0.0, 1.0
    )
    cover_y = tf.clip_by_value(
        tf.minimum(source_y + 1.0, size[:, 0] - source_y), 0.0, 1.0
    )
    return (cover_x * cover_y)[..., None]


def normalize_crops(crops, crop_to_image, image_size, options):
    """Warped crops (`warp_crop`: uint8, black outside the image) -> the
    model's input: `normalize_image` with the options' mean and std, and
    `options.fill` outside the image. The pipeline's last step, also run
    by `keras_evopose.hub.EvoPose2DImageConverter`.

    Args:
        crops: `(batch, H, W, 3)` uint8 crops.
        crop_to_image: `(batch, 2, 3)` crop -> image matrices.
        image_size: `(batch, 2)` images' `(height, width)`.
        options: the `SampleOptions` the crops were made with.
    """
    image = normalize_image(crops, options.image_mean, options.image_std)
    if options.fill == "mean":
        # Bilinear warping is linear: warping the mean-subtracted image
        # with fill 0 (the reference) = this image + mean x (1 - cover).
        coverage = image_coverage(crop_to_image, image_size, options.input_size)
        mean = np.asarray(options.image_mean, "float32")
        std = np.asarray(options.image_std, "float32")
        image = image + (1.0 - coverage) * (mean / std)
    return image


# Deferred-warp batches pad pixels to a multiple of this (per side), so
# a compiled train step sees a few shapes, not one per batch.
PIXELS_PAD_MULTIPLE = 128
WARPS = ("data", "model")


def build_samples(
    records,
    layout,
    options,
    augment,
    seed,
    batch_size,
    drop_remainder,
    warp="data",
):
    """Maps a dataset of instance records to batches of sample dicts.

    A record holds `image_path` (or `image_bytes`: the encoded file),
    `image_id`, `annotation_id`, `box`, `keypoints` `(K, 3)` and `score`;
    a person-crop record (`write_tfrecords(person_crops=...)`) also holds
    `crop_origin` (the stored region's top-left `(x, y)` in the image) and
    `image_size` (the image's `(height, width)`).
    Each output batch dict holds `image` (the normalized crops, or with
    `warp="model"` the `CropWarp` inputs), `heatmaps`
    `(batch, h, w, K)`, `target_weights` `(batch, 1, 1, K)` and the
    metadata needed to map predictions back: `center`, `scale`,
    `image_id`, `annotation_id`, `score`.

    Args:
        records: `tf.data.Dataset` of records.
        layout: `KeypointLayout`.
        options: `SampleOptions`.
        augment: bool.
        seed: int or `None`.
        batch_size: int.
        drop_remainder: bool.
        warp: `"data"`: warp here; `"model"`: yield the decoded pixels
            and matrices for `keras_evopose.layers.CropWarp`.

    Only decoding (of the crop's window) and the warp run per sample;
    augmentation draws, crop matrices, keypoint transforms, normalization
    and Gaussians run once per batch.
    """
    import tensorflow as tf

    if warp not in WARPS:
        raise ValueError(f"`warp` must be one of {WARPS}. Received: {warp!r}")
    if augment:
        augmentation.check_layout(options, layout)
    input_size = options.input_size
    permutation = tf.constant(layout.flip_permutation, "int32")
    reads_bytes = "image_bytes" in records.element_spec

    def plan(batch, random_seed):
        """Crop matrices and heatmap-space keypoints for a batch."""
        keypoints = batch["keypoints"]
        count = tf.shape(keypoints)[0]
        center, scale = geometry.box_to_center_scale(
            batch["box"], input_size, options.padding, xp=tf
        )
        rotation = tf.zeros([count])
        flip = tf.zeros([count], "bool")
        if augment:
            center, scale, rotation, flip = augmentation.augment_crops(
                keypoints, center, scale, options, layout, random_seed
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
            points, input_size, options.heatmap_size
        )
        # Person-crop records also carry their region and image size.
        planned = {
            key: batch[key]
            for key in (
                "image_id",
                "annotation_id",
                "score",
                "crop_origin",
                "image_size",
                "record_size",
            )
            if key in batch
        }
        planned["encoded"] = (
            batch["image_bytes"] if reads_bytes else batch["image_path"]
        )
        planned.update(
            crop_to_image=crop_to_image,
            window=crop_windows(crop_to_image, input_size),
            heatmap_x=heatmap_x,
            heatmap_y=heatmap_y,
            visibility=visibility,
            center=center,
            scale=scale,
        )
        return planned

    def decode(sample):
        encoded = sample.pop("encoded")
        source = tf.strings.format(
            "image id {} (annotation id {})",
            (sample["image_id"], sample["annotation_id"]),
        )
        if not reads_bytes:
            source = encoded
            encoded = tf.io.read_file(encoded)
        window = sample.pop("window")
        crop_origin = sample.pop("crop_origin", None)
        if crop_origin is not None:  # a stored person crop, not the image
            window = window - tf.tile(crop_origin, [2])
        record_size = sample.pop("record_size", None)
        pixels, origin, image_size = decode_window(
            encoded, window, source, record_size
        )
        if crop_origin is not None:
            origin = origin + crop_origin
            image_size = sample.pop("image_size")
        sample["image_size"] = image_size
        if warp == "model":
            sample["pixels"] = pixels
            sample["pixel_size"] = tf.shape(pixels, out_type="int32")[:2]
            sample["crop_to_pixels"] = crop_to_pixels_matrix(
                sample["crop_to_image"], origin
            )
        else:
            sample["image"] = warp_crop(
                pixels, origin, sample["crop_to_image"], input_size
            )
        return sample

    def pad_pixels(pixels):
        """Pads a batch of pixels to a multiple of `PIXELS_PAD_MULTIPLE`."""
        shape = tf.shape(pixels)
        padded = -(-shape[1:3] // PIXELS_PAD_MULTIPLE) * PIXELS_PAD_MULTIPLE
        return tf.pad(
            pixels,
            [
                [0, 0],
                [0, padded[0] - shape[1]],
                [0, padded[1] - shape[2]],
                [0, 0],
            ],
        )

    def render(batch):
        batch = dict(batch)
        crop_to_image = batch.pop("crop_to_image")
        image_size = batch.pop("image_size")
        if warp == "model":
            batch["image"] = {
                "pixels": pad_pixels(batch.pop("pixels")),
                "pixel_size": batch.pop("pixel_size"),
                "crop_to_pixels": batch.pop("crop_to_pixels"),
            }
        else:
            batch["image"] = normalize_crops(
                batch["image"], crop_to_image, image_size, options
            )
        heatmaps, weights = heatmaps_lib.encode_heatmaps(
            batch.pop("heatmap_x"),
            batch.pop("heatmap_y"),
            batch.pop("visibility"),
            options,
        )
        batch["heatmaps"] = heatmaps
        batch["target_weights"] = weights[:, None, None, :]
        return batch

    # Plain graph code (explicit `tf.cond`s, no Python branches on
    # tensors): AutoGraph would only re-write it, ~1 s per process.
    plan, decode, render = map(
        tf.autograph.experimental.do_not_convert, (plan, decode, render)
    )
    randomness = tf.data.Dataset.random(
        seed=seed, rerandomize_each_iteration=True
    )
    batches = records.batch(batch_size, drop_remainder)
    samples = (
        tf.data.Dataset.zip((batches, randomness))
        .map(plan, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    )
    # Decoded windows differ in size: padded with zeros (black, which is
    # also what lies outside the image).
    if warp == "model":
        samples = samples.padded_batch(
            batch_size, drop_remainder=drop_remainder
        )
    else:
        samples = samples.batch(batch_size, drop_remainder)
    samples = samples.map(render, num_parallel_calls=tf.data.AUTOTUNE)
    # unbatch() hides the batch count; without it Keras warns "Your input
    # ran out of data" at the end of every first epoch and evaluation.
    num_batches = batches.cardinality()
    if num_batches == tf.data.UNKNOWN_CARDINALITY:  # e.g. TFRecord files
        return samples
    return samples.apply(tf.data.experimental.assert_cardinality(num_batches))


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


@keras_evopose_export("keras_evopose.data.coco_keypoints_dataset")
def coco_keypoints_dataset(
    annotations,
    images,
    options=None,
    training=False,
    batch_size=32,
    detections=None,
    seed=None,
    shuffle=None,
    augment=None,
    repeat=False,
    drop_remainder=False,
    include_metadata=False,
    min_detection_score=0.0,
    keypoints_from_ground_truth=False,
    warp="data",
    keypoint_layout=None,
    **sample_options,
):
    """Top-down samples from a COCO keypoints JSON and an image folder.

    Each person box is widened to the input aspect ratio, padded by
    `padding` and warped (one bilinear affine warp: crop, scale, rotation,
    flip) to `input_size`; keypoints go through the same matrix. Only the
    part of a JPEG the warp reads is decoded. Targets are unnormalized
    Gaussians of peak `heatmap_peak` centred on the exact (sub-pixel)
    keypoint position at `heatmap_size` (`keras_evopose.data.heatmaps`);
    a labelled joint has target weight 1, an unlabelled one 0 and an
    all-zero heatmap; a labelled joint outside the crop follows
    `out_of_crop`. Geometry conventions: `keras_evopose.data.geometry`.
    Input normalization: `normalize_image`. Every setting is a field of
    `SampleOptions`.

    The dataset yields `(images, heatmaps, target_weights)` batches, i.e.
    Keras' `(x, y, sample_weight)`: `target_weights` has shape
    `(batch, 1, 1, K)` and `keras_evopose.losses.HeatmapMSE` multiplies its
    per-pixel errors by it, so `model.fit(ds)` and `model.evaluate(ds)`
    need nothing else.

    Augmentation (when `augment`, default `training`), in this order:
    half-body, scale, rotation, horizontal flip (left/right joints
    swapped); see `SampleOptions`. Draws are stateless and derived from
    `seed`, so a seeded dataset is deterministic; each new iteration
    (epoch) reshuffles and redraws.

    Args:
        annotations: path or `tf.io.gfile` URL of the COCO keypoints JSON.
        images: folder (or URL) holding its images.
        options: a `SampleOptions`, e.g. `SampleOptions.for_model(model)`.
        training: bool, sets the defaults of `shuffle` and `augment`.
        batch_size: int.
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
        min_detection_score: float, detections below it are skipped.
        keypoints_from_ground_truth: bool, give detections the keypoints of
            the best-overlapping ground-truth person (ceiling AP).
        warp: `"data"` (default): the pipeline warps and normalizes the
            crops (`images` are the model input); `"model"`: it only
            decodes, and `images` is the dict of inputs of
            `keras_evopose.layers.CropWarp` (`pixels`, the decoded uint8
            windows zero-padded per batch; `pixel_size`; `crop_to_pixels`),
            which warps on the accelerator: train
            `keras_evopose.layers.crop_warp_model(model, options.fill)`.
        keypoint_layout: a `KeypointLayout` (flip pairs, upper body)
            instead of the one read from the JSON's keypoint category,
            e.g. from `KeypointLayout.from_json(path)`; same keypoints.
        **sample_options: `SampleOptions` fields (`input_size`,
            `heatmap_size`, `sigma`, `padding`, ...), used instead of
            `options` or replacing its fields.

    Returns:
        A batched `tf.data.Dataset`.

    Example:

    >>> dataset = keras_evopose.data.coco_keypoints_dataset(
    ...     "data/coco_kpt_mini/annotations/person_keypoints_val2017_mini.json",
    ...     "data/coco_kpt_mini/val2017", input_size=(64, 48),
    ...     heatmap_size=(32, 24), batch_size=8)
    >>> images, heatmaps, target_weights = next(iter(dataset))
    >>> tuple(images.shape), tuple(heatmaps.shape), tuple(target_weights.shape)
    ((8, 64, 48, 3), (8, 32, 24, 17), (8, 1, 1, 17))
    """
    import tensorflow as tf

    options = resolve_options(options, sample_options)
    check_batch_size(batch_size)
    shuffle = training if shuffle is None else shuffle
    augment = training if augment is None else augment
    instances = load_coco_instances(
        annotations,
        images,
        detections=detections,
        min_detection_score=min_detection_score,
        keypoints_from_ground_truth=keypoints_from_ground_truth,
    )
    layout = instances.layout
    if keypoint_layout is not None:
        if keypoint_layout.num_keypoints != layout.num_keypoints:
            raise KeypointLayoutError(
                f"the keypoint layout has {keypoint_layout.num_keypoints} "
                f"keypoints but {annotations} has {layout.num_keypoints}; "
                "pass a layout of the annotations' keypoints"
            )
        layout = keypoint_layout
    records = tf.data.Dataset.from_tensor_slices(
        {
            "image_path": instances.image_paths,
            "image_id": instances.image_ids,
            "annotation_id": instances.annotation_ids,
            "box": instances.boxes,
            "keypoints": instances.keypoints,
            "score": instances.scores,
            # What the JSON says: the decoded file must agree.
            "record_size": instances.image_sizes.astype("int32"),
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
        layout,
        options,
        augment,
        seed,
        batch_size,
        drop_remainder,
        warp=warp,
    )
    return finish_dataset(samples, include_metadata)


@keras_evopose_export("keras_evopose.data.out_of_crop_joints")
def out_of_crop_joints(instances, options):
    """Labelled joints that fall outside their (unaugmented) crop.

    Such a joint gets a border target (`out_of_crop="border"`) or none
    (`"ignore"`); either way its position is only known to lie beyond the
    crop, which caps the ceiling AP. Counted with the evaluation crop
    (box widened to the aspect ratio and padded by `options.padding`).

    Args:
        instances: a `COCOInstances`.
        options: a `SampleOptions`.

    Returns:
        dict: `labelled` (joints labelled), `outside_crop` (of those,
        outside the crop), split by why: `outside_image` (the joint lies
        outside the image: the box cannot reach it) and `outside_box`
        (inside the image, but the annotated box is tighter than the
        joints, so the padded box misses it); `instances_affected`.
    """
    center, scale = geometry.box_to_center_scale(
        instances.boxes, options.input_size, options.padding
    )
    matrix = geometry.image_to_crop_matrix(center, scale, options.input_size)
    points = geometry.apply_affine(matrix, instances.keypoints[..., :2])
    x, y = geometry.crop_to_heatmap(
        points, options.input_size, options.heatmap_size
    )
    labelled = instances.keypoints[..., 2] > 0
    outside = labelled & ~heatmaps_lib.inside_heatmap(
        x, y, options.heatmap_size
    )
    size = instances.image_sizes[:, None, :]
    joint_x = instances.keypoints[..., 0]
    joint_y = instances.keypoints[..., 1]
    in_image = (
        (joint_x >= 0)
        & (joint_x <= size[..., 1] - 1)
        & (joint_y >= 0)
        & (joint_y <= size[..., 0] - 1)
    )
    return {
        "labelled": int(labelled.sum()),
        "outside_crop": int(outside.sum()),
        "outside_image": int((outside & ~in_image).sum()),
        "outside_box": int((outside & in_image).sum()),
        "instances_affected": int(outside.any(-1).sum()),
    }
