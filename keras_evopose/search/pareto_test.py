import itertools
import random

import pytest

from keras_evopose.search.pareto import dominates
from keras_evopose.search.pareto import non_dominated_sort


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
