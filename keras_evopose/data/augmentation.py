"""Random crop augmentation (TensorFlow): half-body, scale, rotation, flip.

Drawn once per batch with stateless random ops, so a seeded dataset is
deterministic; only the resulting crop matrices reach the per-sample warp.
"""

import numpy as np

from keras_evopose.data.keypoint_layout import KeypointLayoutError


def half_body_crop(keypoints, use_upper, options, layout):
    """The crop of the upper (or lower) body of each person.

    The half's visible joints give the centre (their mean) and scale
    (1.5 x their padded extent at the crop aspect ratio), as in the
    reference.

    Args:
        keypoints: `(batch, K, 3)` image keypoints.
        use_upper: bool `(batch,)`, the upper half (else the lower one).
        options: `SampleOptions`.
        layout: `KeypointLayout` (`upper_body`).

    Returns:
        `(center, scale, num_selected)`: the crop and the half's visible
        joint count (a crop needs at least 2).
    """
    import tensorflow as tf

    height, width = options.input_size
    upper = np.zeros(layout.num_keypoints, bool)
    upper[list(layout.upper_body)] = True
    upper = tf.constant(upper)
    visible = keypoints[..., 2] > 0
    selected = visible & tf.where(use_upper[:, None], upper, ~upper)
    num_selected = tf.reduce_sum(tf.cast(selected, "float32"), -1)
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
    return mean, 1.5 * options.padding * box_height / height, num_selected


def half_body(keypoints, center, scale, options, layout, seeds):
    """Re-centres some crops on the upper or lower body.

    With probability `options.half_body_probability` (a uniform draw),
    for people with more than `half_body_min_keypoints` visible joints:
    the chosen half (upper or lower, even odds; the other half when the
    chosen one has fewer than 2 visible joints) gives the crop
    (`half_body_crop`).

    Args:
        keypoints: `(batch, K, 3)` image keypoints.
        center: `(batch, 2)`, scale: `(batch,)`: the box crop.
        options: `SampleOptions`.
        layout: `KeypointLayout` (`upper_body`).
        seeds: two stateless seeds `(2, 2)`.

    Returns:
        The new `(center, scale)`.
    """
    import tensorflow as tf

    count = tf.shape(keypoints)[0]
    upper = np.zeros(layout.num_keypoints, bool)
    upper[list(layout.upper_body)] = True
    visible = keypoints[..., 2] > 0
    num_upper = tf.reduce_sum(tf.cast(visible & upper, "int32"), -1)
    num_lower = tf.reduce_sum(tf.cast(visible & ~upper, "int32"), -1)
    choose_upper = tf.random.stateless_uniform([count], seeds[0]) < 0.5
    # Take the chosen half if it has 2 visible joints, else the other.
    use_upper = tf.where(choose_upper, num_upper >= 2, num_lower < 2)
    new_center, new_scale, num_selected = half_body_crop(
        keypoints, use_upper, options, layout
    )
    num_visible = tf.reduce_sum(tf.cast(visible, "int32"), -1)
    draw = tf.random.stateless_uniform([count], seeds[1])
    apply = (
        (draw < options.half_body_probability)
        & (num_visible > options.half_body_min_keypoints)
        & (num_selected >= 2)
    )
    return (
        tf.where(apply[:, None], new_center, center),
        tf.where(apply, new_scale, scale),
    )


def check_layout(options, layout):
    """What augmentation needs of the layout: the upper-body joints for
    half-body, flip pairs for every joint that looks left/right."""
    if options.half_body_probability > 0 and not layout.upper_body:
        raise KeypointLayoutError(
            "half-body augmentation needs the layout's upper-body joints and "
            f"the keypoints {', '.join(layout.names[:6])}, ... have none "
            'known; add "upper_body" (names) to the category or '
            "--keypoint-layout FILE.json, or set half_body_probability=0"
        )
    if options.flip_probability > 0:
        layout.check_flip("flip augmentation")


def augment_crops(keypoints, center, scale, options, layout, random_seed):
    """Draws the augmentation of a batch of crops.

    Args:
        keypoints: `(batch, K, 3)` image keypoints.
        center: `(batch, 2)`, scale: `(batch,)`: the unaugmented crops.
        options: `SampleOptions`.
        layout: `KeypointLayout`.
        random_seed: int64 scalar tensor, this batch's seed.

    Returns:
        `(center, scale, rotation, flip)`: rotation in degrees `(batch,)`
        and flip a bool `(batch,)`; see `SampleOptions` for the
        distributions.
    """
    import tensorflow as tf

    count = tf.shape(keypoints)[0]
    seeds = tf.random.experimental.stateless_split(
        tf.stack([random_seed, tf.constant(0, "int64")]), 6
    )
    if options.half_body_probability > 0:
        center, scale = half_body(
            keypoints, center, scale, options, layout, seeds[:2]
        )
    factor = options.scale_factor
    scale = scale * tf.clip_by_value(
        1.0 + factor * tf.random.stateless_normal([count], seeds[2]),
        1.0 - factor,
        1.0 + factor,
    )
    angle = tf.clip_by_value(
        options.rotation_factor * tf.random.stateless_normal([count], seeds[3]),
        -2.0 * options.rotation_factor,
        2.0 * options.rotation_factor,
    )
    rotate = (
        tf.random.stateless_uniform([count], seeds[4])
        < options.rotation_probability
    )
    rotation = tf.where(rotate, angle, 0.0)
    flip = (
        tf.random.stateless_uniform([count], seeds[5])
        < options.flip_probability
    )
    return center, scale, rotation, flip
