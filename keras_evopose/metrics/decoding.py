"""Heatmaps -> image keypoints (NumPy): flip test and the inverse crop
transform. The heatmap decoder itself sits beside its encoder in
`keras_evopose.data.heatmaps`."""

import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data import geometry
from keras_evopose.data.heatmaps import check_heatmaps
from keras_evopose.data.heatmaps import decode_heatmaps


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

    Example:

    >>> heatmaps = np.zeros((1, 1, 3, 2)); heatmaps[0, 0, 0, 0] = 1
    >>> keras_evopose.metrics.flip_back(heatmaps, [1, 0])[0, 0].tolist()
    [[0.0, 0.0], [0.0, 0.0], [0.0, 1.0]]
    """
    heatmaps = check_heatmaps(heatmaps)
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


def crops_to_keypoints(
    heatmap_function,
    images,
    center,
    scale,
    options,
    flip_permutation=None,
    refinement="quarter_offset",
):
    """Image keypoints of a batch of crops: predict (with the flip test
    when `flip_permutation` is given) and decode. What evaluation and
    `predict_keypoints` both do per batch.

    Args:
        heatmap_function: callable, images `(batch, H, W, 3)` -> heatmaps.
        images: the batch's crops.
        center, scale: the batch's crop metadata (see
            `heatmaps_to_keypoints`).
        options: the `SampleOptions` the crops were made with (input
            size; the targets' `heatmap_peak` and `sigma` for decoding).
        flip_permutation: `KeypointLayout.flip_permutation`, or `None` for
            no flip test.
        refinement: see `decode_heatmaps`.

    Returns:
        `(batch, K, 3)` array of image `(x, y, score)`.
    """
    if flip_permutation is None:
        heatmaps = np.asarray(heatmap_function(images), "float32")
    else:
        heatmaps = flip_test_heatmaps(
            heatmap_function, images, flip_permutation
        )
    return heatmaps_to_keypoints(
        heatmaps,
        np.asarray(center),
        np.asarray(scale),
        options.input_size,
        refinement=refinement,
        heatmap_peak=options.heatmap_peak,
        sigma=options.sigma,
    )


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
    heatmaps = check_heatmaps(heatmaps)
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
