import itertools
import random

import pytest

from keras_evopose.search.pareto import dominates
from keras_evopose.search.pareto import fitness_order
from keras_evopose.search.pareto import non_dominated_sort
from keras_evopose.search.pareto import pareto_order


def brute_force_fronts(points, directions):
    remaining = set(range(len(points)))
    fronts = []
    while remaining:
        front = sorted(
            i
            for i in remaining
            if not any(
                dominates(points[j], points[i], directions)
                for j in remaining
                if j != i
            )
        )
        fronts.append(front)
        remaining -= set(front)
    return fronts


def test_dominance_respects_directions():
    assert dominates([1.0, 2.0], [1.0, 3.0], ["min", "min"])
    assert not dominates([1.0, 3.0], [1.0, 3.0], ["min", "min"])
    assert dominates([0.8, 2.0], [0.7, 2.0], ["max", "min"])
    assert not dominates([0.7, 2.0], [0.8, 2.0], ["max", "min"])
    assert not dominates([0.8, 3.0], [0.7, 2.0], ["max", "min"])


@pytest.mark.parametrize("directions", [["min", "min"], ["max", "min", "max"]])
def test_matches_brute_force(directions):
    rng = random.Random(1)
    for _ in range(20):
        points = [
            [rng.randint(0, 5) for _ in directions]
            for _ in range(rng.randint(1, 25))
        ]
        fronts = non_dominated_sort(points, directions)
        assert fronts == brute_force_fronts(points, directions)
        assert sorted(itertools.chain(*fronts)) == list(range(len(points)))


def test_empty_and_bad_input():
    assert non_dominated_sort([], ["min"]) == []
    with pytest.raises(ValueError, match="'up'"):
        non_dominated_sort([[1.0]], ["up"])
    with pytest.raises(ValueError, match="one value per objective"):
        non_dominated_sort([[1.0, 2.0]], ["min"])
    with pytest.raises(ValueError, match="finite"):
        non_dominated_sort([[float("nan")]], ["min"])


def test_fitness_order_is_best_first_and_stable():
    assert fitness_order([0.3, 0.1, 0.3, 0.2], "min") == [1, 3, 0, 2]
    assert fitness_order([0.3, 0.1, 0.3, 0.2], "max") == [0, 2, 3, 1]
    assert fitness_order([], "max") == []


def test_pareto_order_keeps_fitness_order_within_a_front():
    # Points 0, 1 and 3 are non-dominated; 2 is dominated by 1.
    points = [[0.9, 5e6], [0.7, 1e6], [0.6, 2e6], [0.8, 3e6]]
    scores = [0.5, 0.9, 0.1, 0.7]
    fronts = pareto_order(points, ["max", "min"], scores, "max")
    assert fronts == [[1, 3, 0], [2]]
    assert pareto_order([], ["max", "min"], [], "max") == []
