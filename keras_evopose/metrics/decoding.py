"""Heatmaps -> keypoints (NumPy): argmax with sub-pixel refinement, flip
test, and the inverse crop transform back to image coordinates."""

import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data import geometry

REFINEMENTS = ("quarter_offset", "dark", "none")


def _check_heatmaps(heatmaps):
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
    import math

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
    """Heatmap maxima with sub-pixel refinement.

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
    heatmaps = _check_heatmaps(heatmaps)
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


@keras_evopose_export("keras_evopose.metrics.flip_back")
def flip_back(heatmaps, flip_permutation):
    """Heatmaps predicted on horizontally flipped crops -> heatmaps of the
    original crops: mirror the width axis and swap left/right channels.

    With the pipeline's pixel alignment (`keras_evopose.data.geometry`) no
    one-pixel shift is needed, unlike the reference code.

    Args:
        heatmaps: array `(batch, height, width, K)`.
        flip_permutation: list of K ints, `KeypointLayout.flip_permutation`.

    Returns:
        The flipped-back array.
    """
    heatmaps = _check_heatmaps(heatmaps)
    return heatmaps[:, :, ::-1, :][..., list(flip_permutation)]


def flip_test_heatmaps(heatmap_function, images, flip_permutation):
    """Averages the heatmaps of `images` and of their mirror images.

    Args:
        heatmap_function: callable, images `(batch, H, W, 3)` -> heatmaps.
        images: array of crops.
        flip_permutation: list of K ints, `KeypointLayout.flip_permutation`.

    Returns:
        float32 array of averaged heatmaps.
    """
    heatmaps = np.asarray(heatmap_function(images), "float32")
    mirrored = heatmap_function(images[:, :, ::-1, :])
    return 0.5 * (heatmaps + flip_back(mirrored, flip_permutation))


@keras_evopose_export("keras_evopose.metrics.heatmaps_to_keypoints")
def heatmaps_to_keypoints(
    heatmaps,
    center,
    scale,
    input_size,
    refinement="quarter_offset",
    heatmap_peak=255.0,
    sigma=None,
):
    """Decodes heatmaps and maps them back to image coordinates.

    Args:
        heatmaps: array `(batch, h, w, K)`.
        center: `(batch, 2)` crop centres (from the dataset metadata).
        scale: `(batch,)` source pixels per crop pixel.
        input_size: `(height, width)` of the crops.
        refinement, heatmap_peak, sigma: see `decode_heatmaps`.

    Returns:
        `(batch, K, 3)` array of image `(x, y, score)`.
    """
    heatmaps = _check_heatmaps(heatmaps)
    coordinates, scores = decode_heatmaps(
        heatmaps, refinement, heatmap_peak, sigma
    )
    crop_x, crop_y = geometry.heatmap_to_crop(
        coordinates[..., 0],
        coordinates[..., 1],
        input_size,
        heatmaps.shape[1:3],
    )
    matrix = geometry.crop_to_image_matrix(
        np.asarray(center, "float32"), np.asarray(scale, "float32"),
        input_size,
    )  # fmt: skip
    points = geometry.apply_affine(matrix, np.stack([crop_x, crop_y], -1))
    return np.concatenate([points, scores[..., None]], -1)
