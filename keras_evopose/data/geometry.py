"""Crop geometry shared by the pipeline (TensorFlow) and the decoder (NumPy).

Conventions (stated once, used everywhere):
- Coordinates are pixel-index coordinates: the centre of pixel column `i`
  is `x = i`, as in COCO keypoints and TensorFlow's image warps.
- A crop of `input_size = (height, width)` has its centre at
  `((width - 1) / 2, (height - 1) / 2)`; `scale` is source pixels per crop
  pixel (isotropic); `rotation` is in degrees; `flip` mirrors the crop
  horizontally about its centre.
- Heatmap pixel `j` covers crop pixels `[j * stride, (j + 1) * stride)`, so
  its centre is crop coordinate `j * stride + (stride - 1) / 2`. With this
  alignment a horizontal flip of the crop is exactly a flip of the heatmap
  (no one-pixel shift is needed in the flip test).

Every function takes `xp` (`numpy` or `tensorflow`) so the same formula runs
inside `tf.data` and in NumPy post-processing.
"""

import math

import numpy as np


def box_to_center_scale(box, input_size, padding=1.25, xp=np):
    """COCO `[x, y, w, h]` box(es) -> crop centre and scale.

    The box is widened or heightened to the crop's aspect ratio, then
    padded by `padding`; scale = padded box height / crop height.
    """
    height, width = input_size
    aspect = width / height
    box = xp.cast(box, "float32") if xp is not np else np.asarray(box, "f4")
    x, y, w, h = box[..., 0], box[..., 1], box[..., 2], box[..., 3]
    center = xp.stack([x + w * 0.5, y + h * 0.5], axis=-1)
    h = xp.maximum(h, w / aspect)
    scale = padding * h / height
    return center, scale


def image_to_crop_matrix(
    center, scale, input_size, rotation=0.0, flip=False, xp=np
):
    """2x3 matrix(es) mapping image points to crop points."""
    height, width = input_size
    cast = (lambda v: xp.cast(v, "float32")) if xp is not np else np.float32
    angle = cast(rotation) * (math.pi / 180.0)
    sign = 1.0 - 2.0 * cast(flip)
    inverse_scale = 1.0 / cast(scale)
    cos = xp.cos(angle) * inverse_scale
    sin = xp.sin(angle) * inverse_scale
    # u = R (p - c) / s, q = q0 + diag(sign, 1) u.
    a00, a01 = sign * cos, -sign * sin
    a10, a11 = sin, cos
    cx, cy = center[..., 0], center[..., 1]
    t0 = (width - 1) / 2.0 - (a00 * cx + a01 * cy)
    t1 = (height - 1) / 2.0 - (a10 * cx + a11 * cy)
    rows = [xp.stack([a00, a01, t0], axis=-1), xp.stack([a10, a11, t1], -1)]
    return xp.stack(rows, axis=-2)


def crop_to_image_matrix(
    center, scale, input_size, rotation=0.0, flip=False, xp=np
):
    """2x3 matrix(es) mapping crop points back to image points."""
    height, width = input_size
    cast = (lambda v: xp.cast(v, "float32")) if xp is not np else np.float32
    angle = cast(rotation) * (math.pi / 180.0)
    sign = 1.0 - 2.0 * cast(flip)
    scale = cast(scale)
    cos = xp.cos(angle) * scale
    sin = xp.sin(angle) * scale
    # p = c + s R^T diag(sign, 1) (q - q0).
    b00, b01 = sign * cos, sin
    b10, b11 = -sign * sin, cos
    x0, y0 = (width - 1) / 2.0, (height - 1) / 2.0
    t0 = center[..., 0] - (b00 * x0 + b01 * y0)
    t1 = center[..., 1] - (b10 * x0 + b11 * y0)
    rows = [xp.stack([b00, b01, t0], axis=-1), xp.stack([b10, b11, t1], -1)]
    return xp.stack(rows, axis=-2)


def apply_affine(matrix, points, xp=np):
    """Applies 2x3 `matrix` (..., 2, 3) to `points` (..., N, 2)."""
    linear = matrix[..., :2]
    offset = matrix[..., 2]
    return (
        xp.einsum("...ij,...nj->...ni", linear, points) + offset[..., None, :]
    )


def heatmap_strides(input_size, heatmap_size):
    """Crop pixels per heatmap pixel, `(stride_y, stride_x)`."""
    return (
        input_size[0] / heatmap_size[0],
        input_size[1] / heatmap_size[1],
    )


def crop_to_heatmap(points, input_size, heatmap_size):
    """Crop coordinates (..., 2) as `(x, y)` -> heatmap coordinates."""
    stride_y, stride_x = heatmap_strides(input_size, heatmap_size)
    x = (points[..., 0] - (stride_x - 1) / 2.0) / stride_x
    y = (points[..., 1] - (stride_y - 1) / 2.0) / stride_y
    return x, y


def heatmap_to_crop(x, y, input_size, heatmap_size):
    """Heatmap coordinates -> crop coordinates (the inverse above)."""
    stride_y, stride_x = heatmap_strides(input_size, heatmap_size)
    return (
        x * stride_x + (stride_x - 1) / 2.0,
        y * stride_y + (stride_y - 1) / 2.0,
    )
