"""Pareto dominance, non-dominated sorting, and the orderings a search
ranks its trials by (fitness, Pareto fronts, parent selection)."""

import numpy as np

from keras_evopose.api_export import keras_evopose_export

_DIRECTIONS = ("min", "max")


def _as_minimized(points, directions):
    """Points as a float array where smaller is better in every column."""
    directions = list(directions)
    for direction in directions:
        if direction not in _DIRECTIONS:
            raise ValueError(
                f"Objective direction {direction!r} is not allowed; each "
                "direction must be 'min' or 'max'."
            )
    array = np.asarray(points, dtype="float64")
    if array.size == 0:
        return array.reshape(0, len(directions))
    if array.ndim != 2 or array.shape[1] != len(directions):
        raise ValueError(
            f"Expected one value per objective ({len(directions)} "
            f"directions); received points of shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(
            "Objective values must be finite numbers; received "
            f"{array[~np.all(np.isfinite(array), axis=1)].tolist()}."
        )
    signs = np.array([1.0 if d == "min" else -1.0 for d in directions])
    return array * signs


@keras_evopose_export("keras_evopose.search.dominates")
def dominates(a, b, directions):
    """Whether point `a` Pareto-dominates point `b`.

    `a` dominates `b` when it is at least as good in every objective and
    strictly better in one.

    Args:
        a: sequence of objective values.
        b: sequence of objective values.
        directions: sequence of `"min"` or `"max"`, one per objective.

    Example:

    >>> keras_evopose.search.dominates([0.7, 2e6], [0.6, 3e6], ["max", "min"])
    True
    """
    a, b = _as_minimized([a, b], directions)
    return bool(np.all(a <= b) and np.any(a < b))


@keras_evopose_export("keras_evopose.search.non_dominated_sort")
def non_dominated_sort(points, directions):
    """Splits points into Pareto fronts (NSGA-II's non-dominated sorting).

    Front 0 holds the points no other point dominates; front k those
    dominated only by points of earlier fronts. Vectorized: one dominance
    matrix, so 500 points sort in milliseconds.

    Args:
        points: sequence of sequences of finite objective values.
        directions: sequence of `"min"` or `"max"`, one per objective.

    Returns:
        A list of fronts, each a list of indices into `points` in ascending
        order.

    Example:

    >>> keras_evopose.search.non_dominated_sort(
    ...     [[0.7, 3e6], [0.6, 2e6], [0.5, 3e6]], ["max", "min"])
    [[0, 1], [2]]
    """
    array = _as_minimized(points, directions)
    if len(array) == 0:
        return []
    # One (n, n) comparison per objective: reducing an (n, n, m) array over
    # its short last axis is several times slower.
    num_points = len(array)
    no_worse = np.ones((num_points, num_points), dtype=bool)
    better = np.zeros((num_points, num_points), dtype=bool)
    for column in array.T:
        no_worse &= column[:, None] <= column[None, :]
        better |= column[:, None] < column[None, :]
    # dominated_by[i, j]: point j dominates point i.
    dominated_by = (no_worse & better).T
    num_dominators = dominated_by.sum(axis=1)
    remaining = np.ones(len(array), dtype=bool)
    fronts = []
    while remaining.any():
        front = np.flatnonzero(remaining & (num_dominators == 0))
        fronts.append(front.tolist())
        remaining[front] = False
        num_dominators -= dominated_by[:, front].sum(axis=1)
    return fronts


def fitness_order(scores, direction):
    """Indices of `scores`, best first in `direction` (`"min"` or
    `"max"`); equal scores keep their input order."""
    sign = 1.0 if direction == "min" else -1.0
    return sorted(range(len(scores)), key=lambda i: (sign * scores[i], i))


def pareto_order(points, directions, scores, fitness_direction):
    """Pareto fronts of `points` (lists of indices, front 0 first), each
    front in fitness order (`fitness_order(scores, fitness_direction)`)."""
    order = fitness_order(scores, fitness_direction)
    fronts = non_dominated_sort([points[i] for i in order], directions)
    # Indices ascend within a front, so each keeps the fitness order.
    return [[order[i] for i in front] for front in fronts]
