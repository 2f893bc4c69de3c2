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
    assert set(result["runs"]) == set(benchmark.DEFAULT_METHODS)
    assert result["seeds"] == [0]
    reference = result["reference_point"]
    for key in (benchmark.OBJECTIVE, "num_params", "latency_ms"):
        assert reference[key] > 0, key
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
    # Quick mode times one method's trial (an export each). Its 2x2 timed
    # calls are noisy: the trial counts only if it is inside the box.
    latency_run = result["runs"]["ancestor_full_budget"]["0"]
    timed = result["trials"]["ancestor_full_budget"]["0"][0]
    assert timed["latency_ms"] > 0
    inside = (
        timed["latency_ms"] < reference["latency_ms"]
        and timed[benchmark.OBJECTIVE] < reference[benchmark.OBJECTIVE]
    )
    assert 0 <= latency_run["hypervolume_latency"] <= 1
    assert (latency_run["hypervolume_latency"] > 0) == inside
    assert result["runs"]["evolution"]["0"]["hypervolume_latency"] is None
    # Evolution mutates; the restart control continues its parent as is.
    for method, changed in (("evolution", True), ("restart_control", False)):
        trials = {t["trial_id"]: t for t in result["trials"][method]["0"]}
        children = [t for t in trials.values() if t["parent_trial_id"]]
        assert children, method
        for child in children:
            parent = trials[child["parent_trial_id"]]
            assert (child["genotype"] != parent["genotype"]) == changed
            assert (child["mutation"] == "restart (no mutation)") != changed


def test_merge_refuses_other_settings(tmp_path):
    benchmark = load_benchmark()
    base = {
        "task": {
            "input_size": [64, 48],
            "train": "/a/checkout/data/train.json",
            "validation": ["/a/checkout/data/val.json", "/a/checkout/data"],
        },
        "budget": {"steps": 960},
        "reference_point": {
            "val_heatmap_mse": 160.0,
            "num_params": 100.0,
            "latency_ms": 0.1,
        },
        "checkpoints": [0, 960],
        "seeds": [0],
        "runs": {},
        "trials": {},
        "machine_before": {},
    }
    for name, budget in (("a", 960), ("b", 480)):
        (tmp_path / name).mkdir()
        run = dict(base, budget={"steps": budget})
        (tmp_path / name / "search_quality.json").write_text(json.dumps(run))
    with pytest.raises(SystemExit, match="another budget"):
        benchmark.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    # Each process times the reference itself: latency may differ; the
    # same bundled files may be read from another checkout.
    (tmp_path / "d").mkdir()
    timed = dict(
        base,
        reference_point=dict(base["reference_point"], latency_ms=0.2),
        task=dict(
            base["task"],
            train="/other/checkout/data/train.json",
            validation=["/other/checkout/data/val.json", "/other/data"],
        ),
    )
    (tmp_path / "d" / "search_quality.json").write_text(json.dumps(timed))
    merged = benchmark.merge([tmp_path / "a", tmp_path / "d"], tmp_path / "m")
    assert merged["reference_point"]["latency_ms"] == 0.1
    with pytest.raises(SystemExit, match="missing"):
        benchmark.merge([tmp_path / "a", tmp_path / "c"], tmp_path / "m")
