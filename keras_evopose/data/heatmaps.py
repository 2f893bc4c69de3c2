"""Keypoints <-> heatmaps: the target encoder and its inverse, the decoder.

`encode_heatmaps` (TensorFlow, inside `tf.data`) draws one Gaussian per
keypoint at its exact sub-pixel heatmap position; `decode_heatmaps`
(NumPy) finds the maximum again with sub-pixel refinement. They are each
other's inverse: a labelled joint inside the crop survives the round trip
within a fraction of a heatmap pixel (`heatmaps_test.py`).

Heatmap coordinates follow `keras_evopose.data.geometry`: the centre of
heatmap pixel column `j` is `x = j`.
"""

import math

import numpy as np

from keras_evopose.api_export import keras_evopose_export

REFINEMENTS = ("quarter_offset", "dark", "none")
# How far outside the map (in sigmas) a border target's centre may lie: its
# peak on the map is then still exp(-BORDER_SIGMAS ** 2 / 2) ~ 1% of full.
BORDER_SIGMAS = 3.0


def inside_heatmap(x, y, heatmap_size):
    """Whether heatmap coordinates fall on a heatmap pixel (NumPy or TF).

    A point belongs to the pixel whose centre is nearest, so the map covers
    `[-0.5, width - 0.5) x [-0.5, height - 0.5)`.
    """
    height, width = heatmap_size
    return (x >= -0.5) & (x < width - 0.5) & (y >= -0.5) & (y < height - 0.5)


@keras_evopose_export("keras_evopose.data.encode_heatmaps")
def encode_heatmaps(x, y, visibility, options):
    """Keypoints in heatmap coordinates -> Gaussian targets and weights.

    Args:
        x, y: float tensors `(batch, K)`, heatmap coordinates.
        visibility: `(batch, K)`, COCO visibility (> 0: labelled).
        options: a `SampleOptions` (`heatmap_size`, `sigma`,
            `heatmap_peak`, `out_of_crop`).

    Returns:
        `(heatmaps, target_weights)`: float32 `(batch, h, w, K)` Gaussians
        of peak `heatmap_peak` (all zeros for an unlabelled joint) and
        `(batch, K)` weights (1 for a labelled joint; a labelled joint
        outside the crop gets weight 1 and a Gaussian on the nearest
        border pixel with `out_of_crop="border"`, weight 0 and zeros with
        `"ignore"`).
    """
    import tensorflow as tf

    height, width = options.heatmap_size
    x = tf.cast(x, "float32")
    y = tf.cast(y, "float32")
    labelled = tf.cast(visibility, "float32") > 0
    inside = inside_heatmap(x, y, options.heatmap_size)
    if options.out_of_crop == "border":
        # The Gaussian stays centred on the joint, so on the map it peaks
        # at the nearest border pixel with a height that falls with the
        # distance (the reference's target). Centres are kept within
        # BORDER_SIGMAS sigma of the map so a far joint's peak stays
        # nonzero (it would underflow and decode to the origin).
        margin = BORDER_SIGMAS * options.sigma
        x = tf.clip_by_value(x, -margin, width - 1.0 + margin)
        y = tf.clip_by_value(y, -margin, height - 1.0 + margin)
        weights = tf.cast(labelled, "float32")
    else:
        weights = tf.cast(labelled & inside, "float32")
    denominator = 2.0 * options.sigma * options.sigma
    gaussian_x = tf.exp(
        -tf.square(tf.range(width, dtype="float32") - x[..., None])
        / denominator
    )
    gaussian_y = tf.exp(
        -tf.square(tf.range(height, dtype="float32") - y[..., None])
        / denominator
    )
    # Separable: outer product of the two 1-D Gaussians, scaled by weight.
    heatmaps = tf.einsum(
        "bky,bkx->byxk",
        gaussian_y * (weights * options.heatmap_peak)[..., None],
        gaussian_x,
    )
    return heatmaps, weights


def check_heatmaps(heatmaps):
    heatmaps = np.asarray(heatmaps, "float32")
    if heatmaps.ndim != 4:
        raise ValueError(
            "Expected heatmaps of shape (batch, height, width, keypoints). "
            f"Received shape: {heatmaps.shape}"
        )
    return heatmaps


def _dark_offsets(heatmaps, x, y, sigma):
    """DARK (Zhang et al., CVPR 2020): Taylor expansion of the log of the
    Gaussian-smoothed heatmap around the argmax."""
    batch, height, width, num_keypoints = heatmaps.shape
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = np.arange(-radius, radius + 1, dtype="float32")
    kernel = np.exp(-(taps**2) / (2 * sigma * sigma))
    kernel /= kernel.sum()
    maxima = heatmaps.max(axis=(1, 2), keepdims=True)
    smoothed = heatmaps
    for axis in (1, 2):
        padded = np.pad(
            smoothed,
            [(radius, radius) if a == axis else (0, 0) for a in range(4)],
            mode="edge",
        )
        smoothed = sum(
            kernel[i]
            * np.take(padded, range(i, i + smoothed.shape[axis]), axis=axis)
            for i in range(len(taps))
        )
    # Keep the original peak height, as DARK does, before the log.
    smoothed = (
        smoothed
        * maxima
        / np.maximum(smoothed.max(axis=(1, 2), keepdims=True), 1e-10)
    )
    logs = np.log(np.maximum(smoothed, 1e-10))
    b, k = np.meshgrid(
        np.arange(batch), np.arange(num_keypoints), indexing="ij"
    )
    xi = np.clip(x.astype(int), 2, width - 3)
    yi = np.clip(y.astype(int), 2, height - 3)

    def at(dy, dx):
        return logs[b, yi + dy, xi + dx, k]

    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    dyy = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    determinant = dxx * dyy - dxy * dxy
    valid = (
        (np.abs(determinant) > 1e-10)
        & (x >= 2)
        & (x <= width - 3)
        & (y >= 2)
        & (y <= height - 3)
    )
    safe = np.where(valid, determinant, 1.0)
    offset_x = -(dyy * dx - dxy * dy) / safe
    offset_y = -(dxx * dy - dxy * dx) / safe
    keep = valid & (np.abs(offset_x) < 1) & (np.abs(offset_y) < 1)
    return np.where(keep, offset_x, 0.0), np.where(keep, offset_y, 0.0)


@keras_evopose_export("keras_evopose.metrics.decode_heatmaps")
def decode_heatmaps(
    heatmaps, refinement="quarter_offset", heatmap_peak=255.0, sigma=None
):
    """Heatmap maxima with sub-pixel refinement (inverse of
    `encode_heatmaps`).

    `"quarter_offset"` moves the argmax a quarter pixel toward the higher
    neighbour on each axis (the reference's decoder); `"dark"` refines it
    with a Taylor expansion of the log heatmap (DARK); `"none"` keeps the
    integer argmax.

    Args:
        heatmaps: array `(batch, height, width, K)`.
        refinement: one of `"quarter_offset"`, `"dark"`, `"none"`.
        heatmap_peak: float, the targets' peak; scores are max / peak.
        sigma: the targets' sigma (DARK's smoothing). Defaults to
            `2 * height / 64`.

    Returns:
        `(coordinates, scores)`: `(batch, K, 2)` heatmap-pixel `(x, y)`
        and `(batch, K)` scores.

    Example:

    >>> heatmaps = np.zeros((1, 8, 8, 1)); heatmaps[0, 3, 4, 0] = 255
    >>> heatmaps[0, 3, 5, 0] = 100
    >>> coordinates, scores = keras_evopose.metrics.decode_heatmaps(heatmaps)
    >>> coordinates.tolist(), scores.tolist()
    ([[[4.25, 3.0]]], [[1.0]])
    """
    if refinement not in REFINEMENTS:
        raise ValueError(
            f"`refinement` must be one of {REFINEMENTS}. "
            f"Received: refinement={refinement!r}"
        )
    heatmaps = check_heatmaps(heatmaps)
    batch, height, width, num_keypoints = heatmaps.shape
    flat = heatmaps.transpose(0, 3, 1, 2).reshape(batch, num_keypoints, -1)
    index = flat.argmax(-1)
    scores = flat.max(-1) / heatmap_peak
    y, x = np.divmod(index, width)
    x = x.astype("float32")
    y = y.astype("float32")
    if refinement == "quarter_offset":
        b, k = np.meshgrid(
            np.arange(batch), np.arange(num_keypoints), indexing="ij"
        )
        xi, yi = x.astype(int), y.astype(int)
        inside = (xi > 0) & (xi < width - 1) & (yi > 0) & (yi < height - 1)
        xc, yc = np.clip(xi, 1, width - 2), np.clip(yi, 1, height - 2)
        step_x = np.sign(
            heatmaps[b, yc, xc + 1, k] - heatmaps[b, yc, xc - 1, k]
        )
        step_y = np.sign(
            heatmaps[b, yc + 1, xc, k] - heatmaps[b, yc - 1, xc, k]
        )
        x = x + np.where(inside, 0.25 * step_x, 0.0)
        y = y + np.where(inside, 0.25 * step_y, 0.0)
    elif refinement == "dark":
        sigma = 2.0 * height / 64.0 if sigma is None else sigma
        offset_x, offset_y = _dark_offsets(heatmaps, x, y, sigma)
        x = x + offset_x
        y = y + offset_y
    return np.stack([x, y], -1).astype("float32"), scores.astype("float32")
