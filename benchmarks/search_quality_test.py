import importlib.util
import json
import pathlib

import pytest

HERE = pathlib.Path(__file__).resolve().parent


def load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "search_quality", HERE / "search_quality.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hypervolume_of_a_known_front():
    benchmark = load_benchmark()
    reference = (10.0, 100.0)
    # Two points: (2, 50) dominates 8 * 50; (5, 20) adds 5 * 30.
    points = [(2.0, 50.0), (5.0, 20.0), (6.0, 60.0), (11.0, 1.0)]
    assert benchmark.hypervolume(points, reference) == pytest.approx(550.0)
    assert benchmark.hypervolume([], reference) == 0.0
    assert benchmark.pareto_points(points) == [
        (2.0, 50.0),
        (5.0, 20.0),
        (11.0, 1.0),
    ]


@pytest.mark.slow
def test_quick_mode_runs_every_method(tmp_path):
    benchmark = load_benchmark()
    benchmark.main(["--quick", "--output", str(tmp_path)])
    result = json.loads((tmp_path / "search_quality.json").read_text())
    assert (tmp_path / "search_quality.png").stat().st_size > 0
    expected = set(benchmark.METHODS) - set(result["skipped"])
    assert set(result["runs"]) == expected
    assert result["seeds"] == [0]
    reference = result["reference_point"]
    assert reference["val_loss"] > 0 and reference["num_params"] > 0
    budget = result["budget"]["steps"]
    for method, runs in result["runs"].items():
        run = runs["0"]
        assert run["num_completed"] >= (
            1 if method == "ancestor_full_budget" else 2
        ), method
        assert 0 < run["steps_used"] <= budget, method
        assert 0 <= run["hypervolume"] <= 1, method
        assert len(run["hypervolume_curve"]) == len(result["checkpoints"])
        assert run["best_fitness"] > 0, method
        trials = result["trials"][method]["0"]
        assert all(
            trial["num_params"] <= reference["num_params"] for trial in trials
        )
        summary = result["summary"][method]
        assert summary["hypervolume"]["mean"] == pytest.approx(
            run["hypervolume"]
        )
    for method in result["runs"]:
        if method.startswith("evolution"):
            assert result["trials"][method]["0"][1]["parent_trial_id"] == "0"
