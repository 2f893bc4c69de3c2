"""The paper's scalar fitness: accuracy traded against model size."""

import math

from keras_evopose.api_export import keras_evopose_export

# EvoPose2D's constants: T = 5e6 parameters, w = -0.07.
TARGET_PARAMS = 5e6
SIZE_WEIGHT = -0.07


@keras_evopose_export("keras_evopose.search.paper_fitness")
def paper_fitness(
    value,
    num_params,
    direction="min",
    target_params=TARGET_PARAMS,
    size_weight=SIZE_WEIGHT,
):
    """EvoPose2D's fitness of one trial, ranked in `direction`.

    For a minimized accuracy objective (a loss) the paper's
    `loss * (target_params / num_params) ** size_weight`; for a maximized
    one (an AP) `ap * (target_params / num_params) ** -size_weight`. With
    the default negative `size_weight` a larger model always ranks worse.

    Args:
        value: float, the trial's accuracy objective (its best epoch).
        num_params: the trial's parameter count
            (`model.count_params()`); ignored when
            `size_weight` is 0.
        direction: `"min"` or `"max"`, the accuracy objective's direction
            and so the fitness's.
        target_params: T of the formula (the paper's 5e6).
        size_weight: w of the formula (the paper's -0.07).

    Returns:
        float; NaN when `value` or `num_params` is missing or not usable.

    Example:

    >>> round(paper_fitness(150.0, 2_531_199), 3)
    143.02
    """
    if direction not in ("min", "max"):
        raise ValueError(
            f"direction={direction!r} must be 'min' or 'max' (the accuracy "
            "objective's direction)."
        )
    if value is None or not math.isfinite(value):
        return float("nan")
    if size_weight == 0:
        return float(value)
    if num_params is None or not math.isfinite(num_params) or num_params <= 0:
        return float("nan")
    weight = size_weight if direction == "min" else -size_weight
    return float(value) * (target_params / num_params) ** weight
