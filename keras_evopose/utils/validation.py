"""Argument checks with one message style: what must hold, what came.

`ValueError("`name` must be <what>. Received: name=<value>")`, as Keras
words its own. Ground level: imports nothing else of keras_evopose.
"""

import numbers


def check_positive_int(name, value, owner=None, integral_floats=False):
    """`value` as an int if it is an int > 0 (not a bool), else a
    `ValueError`; with `integral_floats`, `5.0` counts as 5 (counts that
    come from arithmetic or YAML)."""
    integral = isinstance(value, numbers.Integral) or (
        integral_floats
        and isinstance(value, numbers.Real)
        and float(value).is_integer()
    )
    if isinstance(value, bool) or not integral or value <= 0:
        prefix = f"{owner}: " if owner else ""
        raise ValueError(
            f"{prefix}`{name}` must be a positive int. Received: "
            f"{name}={value!r}"
        )
    return int(value)


def check_size(name, size, owner=None):
    """`(height, width)` as two positive ints, else a `ValueError`.

    Integral floats (`64.0`) are accepted: JSON and YAML configs give them.
    """
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and int(value) == value > 0
            for value in size
        )
    ):
        prefix = f"{owner}: " if owner else ""
        raise ValueError(
            f"{prefix}`{name}` must be (height, width) positive ints. "
            f"Received: {name}={size!r}"
        )
    return (int(size[0]), int(size[1]))


def check_multiple_of(size, stride, name="input_size"):
    """`(height, width)` as ints if both sides are positive multiples of
    `stride` (a network's output stride: else the heatmaps would not line
    up with the targets), else a `ValueError` naming `name`, the stride
    and the nearest valid sizes."""
    height, width = (int(side) for side in size)
    if height % stride == 0 and width % stride == 0 and min(size) > 0:
        return height, width

    def nearest(side):
        # The multiples of `stride` just below and above `side`, >= stride.
        below = max(stride, side // stride * stride)
        above = max(stride, -(-side // stride) * stride)
        return sorted({below, above}, key=lambda value: abs(value - side))

    candidates = sorted(
        {(h, w) for h in nearest(height) for w in nearest(width)},
        key=lambda hw: (abs(hw[0] - height) + abs(hw[1] - width), hw),
    )
    suggestions = ", ".join(f"{h}x{w}" for h, w in candidates[:3])
    raise ValueError(
        f"{name} {height}x{width}: height and width must be multiples of "
        f"{stride} (the network's stride); nearest valid sizes: "
        f"{suggestions}"
    )
