import importlib.util
import json
import math
import pathlib

import pytest

HERE = pathlib.Path(__file__).resolve().parent


def load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "fitness_rank_correlation", HERE / "fitness_rank_correlation.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Ties in x and in y (values from scipy 1.17's kendalltau / spearmanr;
# the first by hand: 7 concordant, 1 discordant, 1 pair tied in each,
# tau-b = 6 / sqrt(9 * 9)).
TIED = [
    ([1, 2, 2, 3, 4], [1, 3, 2, 2, 5], 2 / 3, 0.7631578947368421),
    (
        [1, 2, 2, 3, 4, 4],
        [2, 1, 3, 3, 5, 4],
        0.7412493166611013,
        0.8508410434878082,
    ),
]


def test_own_rank_statistics_match_known_values():
    benchmark = load_benchmark()
    for x, y, tau, rho in TIED:
        assert benchmark._kendall_tau_b(x, y) == pytest.approx(tau, rel=1e-12)
        assert benchmark._spearman_rho(x, y) == pytest.approx(rho, rel=1e-12)
        # The statistics used (scipy's when present) agree with ours.
        assert benchmark.kendall_tau_b(x, y) == pytest.approx(tau, rel=1e-9)
        assert benchmark.spearman_rho(x, y) == pytest.approx(rho, rel=1e-9)
    assert benchmark._kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == (
        pytest.approx((5 - 1) / 6)
    )
    assert benchmark._spearman_rho([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    assert math.isnan(benchmark._kendall_tau_b([1, 1, 1], [1, 2, 3]))
    assert benchmark._ranks([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]


def test_bootstrap_interval_brackets_a_perfect_ranking():
    benchmark = load_benchmark()
    x = list(range(12))
    low, high = benchmark.bootstrap_interval(
        x, [2 * v for v in x], benchmark.kendall_tau_b, 100, 0
    )
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    y = [5, 3, 8, 1, 9, 0, 2, 7, 4, 6, 11, 10]
    low, high = benchmark.bootstrap_interval(
        x, y, benchmark.kendall_tau_b, 200, 0
    )
    assert -1 <= low < benchmark.kendall_tau_b(x, y) < high <= 1


@pytest.mark.slow
def test_quick_mode(tmp_path, capsys):
    benchmark = load_benchmark()
    benchmark.main(["--quick", "--output", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    # One progress line per child, then the table.
    assert sum(" child " in line for line in lines) == 3
    result = json.loads(
        (tmp_path / "fitness_rank_correlation.json").read_text()
    )
    assert (tmp_path / "fitness_rank_correlation.png").stat().st_size > 0
    assert not list(tmp_path.glob("*.tmp*"))
    outcome = result["seeds"]["0"]
    children = outcome["children"]
    assert len({tuple(c["genotype"]) for c in children}) == 3
    for child in children:
        assert child["mutation"].startswith("stage ")
        runs = child["runs"]
        assert (
            runs["long_scratch"]["steps"] == 2 * runs["short_scratch"]["steps"]
        )
        assert all(run["val_heatmap_mse"] > 0 for run in runs.values())
        assert child["params"] > 0 and child["flops"] > 0
    table = outcome["correlations"]
    assert set(table) == set(benchmark.TARGETS)
    for scores in table.values():
        assert set(scores) == set(benchmark.CHEAP_SCORES)
        for row in scores.values():
            assert -1 <= row["kendall_tau"] <= 1 or math.isnan(
                row["kendall_tau"]
            )


def _part(tmp_path, name, indices, settings):
    # A run's JSON as `main` writes it (`partial`: stopped after these
    # children), with losses that rank the children by index.
    children = [
        {
            "index": index,
            "genotype": [f"g{index}"],
            "mutation": f"stage 1 kernel_size {index}",
            "params": 1000.0 + index,
            "flops": 5000.0 - index,
            "runs": {
                name: {"val_heatmap_mse": 150.0 + index + bump, "steps": 10}
                for name, bump in (
                    ("short_transfer", 0.5),
                    ("short_scratch", 0.0),
                    ("long_transfer", 0.25),
                    ("long_scratch", 0.0),
                )
            },
        }
        for index in indices
    ]
    folder = tmp_path / name
    folder.mkdir()
    result = {
        "settings": settings,
        "machine_before": {},
        "seeds": {"0": {"partial": True, "children": children}},
    }
    (folder / "fitness_rank_correlation.json").write_text(json.dumps(result))
    return str(folder)


def test_merge_joins_the_parts_of_a_seed(tmp_path):
    benchmark = load_benchmark()
    settings = {"bootstrap": 20, "part": [0, 2], "seeds": [0]}
    first = _part(tmp_path, "a", [0, 2, 4], settings)
    # Child 2 twice: a --reverse process met the forward one there.
    second = _part(tmp_path, "b", [3, 2, 1], {**settings, "part": [1, 2]})
    out = tmp_path / "merged"
    merged = benchmark.main(["--merge", first, second, "--output", str(out)])
    children = merged["seeds"]["0"]["children"]
    assert [child["index"] for child in children] == [0, 1, 2, 3, 4]
    table = merged["seeds"]["0"]["correlations"]["long_scratch"]
    assert table["short_transfer"]["kendall_tau"] == pytest.approx(1.0)
    assert table["flops"]["spearman"] == pytest.approx(-1.0)
    assert (out / "fitness_rank_correlation.png").stat().st_size > 0
    assert merged["seed_agreement"] == {}  # one seed: nothing to compare
    assert benchmark.seed_agreement(
        {"seeds": {"0": merged["seeds"]["0"], "1": merged["seeds"]["0"]}}
    )["0 vs 1"]["long_scratch"] == pytest.approx(1.0)
    other = _part(tmp_path, "c", [5], {**settings, "bootstrap": 30})
    with pytest.raises(SystemExit, match="other settings"):
        benchmark.merge([first, other], tmp_path / "bad")
