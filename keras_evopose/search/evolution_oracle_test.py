"""EvolutionOracle driven with synthetic metrics and no model."""

import json
import math
import os
import subprocess
import sys
import textwrap
import zlib

import keras_tuner
import pytest

from keras_evopose.models import decode_genotype
from keras_evopose.search import genotype_from_string
from keras_evopose.search.evolution_oracle import EvolutionOracle
from keras_evopose.search.pareto import dominates
from keras_evopose.search.search_space import GENES
from keras_evopose.search.search_space import SearchSpace

OBJECTIVES = [
    keras_tuner.Objective("val_ap", "max"),
    keras_tuner.Objective("num_params", "min"),
]


def synthetic_metrics(genotype_string):
    """Deterministic fake results: bigger networks are more accurate."""
    specs = decode_genotype(genotype_from_string(genotype_string))
    size = sum(s.num_repeats * s.filters * s.kernel_size for s in specs)
    num_params = float(1000 * size)
    val_ap = (
        1.0
        - 1.0 / math.sqrt(size)
        - 0.01 * (zlib.crc32(genotype_string.encode()) % 7)
    )
    return {"val_ap": val_ap, "num_params": num_params}


def make_oracle(tmp_path, max_trials=30, **kwargs):
    kwargs.setdefault("objective", OBJECTIVES)
    kwargs.setdefault("search_space", SearchSpace())
    oracle = EvolutionOracle(max_trials=max_trials, seed=7, **kwargs)
    oracle._set_project_dir(str(tmp_path), "project")
    return oracle


def run_trial(oracle, tuner_id="tuner0", metrics=None, status="COMPLETED"):
    trial = oracle.create_trial(tuner_id)
    if trial.status != "RUNNING":
        return trial
    values = trial.hyperparameters.values
    if metrics is None:
        metrics = synthetic_metrics(values["genotype"])
    oracle.update_trial(trial.trial_id, metrics)
    trial.status = status
    oracle.end_trial(trial)
    return trial


def changed_genes(parent, child):
    parent = decode_genotype(genotype_from_string(parent))
    child = decode_genotype(genotype_from_string(child))
    return [
        (stage, gene)
        for stage, (a, b) in enumerate(zip(parent, child), 1)
        for gene in GENES
        if getattr(a, gene) != getattr(b, gene)
    ]


def test_lineage_validity_and_no_duplicates(tmp_path):
    oracle = make_oracle(tmp_path)
    space = oracle.search_space
    for _ in range(30):
        run_trial(oracle)
    trials = [oracle.trials[i] for i in oracle.start_order]
    assert len(trials) == 30
    first = trials[0].hyperparameters.values
    assert genotype_from_string(first["genotype"]) == space.ancestor
    assert first["parent_trial_id"] == "" and first["generation"] == 0
    genotypes = [t.hyperparameters.values["genotype"] for t in trials]
    assert len(set(genotypes)) == len(genotypes)
    for trial in trials[1:]:
        values = trial.hyperparameters.values
        parent = oracle.trials[values["parent_trial_id"]]
        parent_values = parent.hyperparameters.values
        # Parents are completed trials that started earlier.
        assert parent.status == "COMPLETED"
        assert oracle.start_order.index(parent.trial_id) < (
            oracle.start_order.index(trial.trial_id)
        )
        assert values["generation"] == parent_values["generation"] + 1
        assert len(changed_genes(parent_values["genotype"], values["genotype"]))
        assert space.contains(genotype_from_string(values["genotype"]))
        assert values["mutation"].startswith("stage ")
    # The search stops at max_trials.
    assert run_trial(oracle).status == "STOPPED"


def test_parents_are_the_best_by_fitness(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=40, num_parents=2)
    for _ in range(40):
        trial = oracle.create_trial("tuner0")
        values = trial.hyperparameters.values
        if values["parent_trial_id"]:
            completed = [
                t for t in oracle.trials.values() if t.status == "COMPLETED"
            ]
            best = sorted(completed, key=lambda t: -t.score)[:2]
            assert values["parent_trial_id"] in {t.trial_id for t in best}
        oracle.update_trial(
            trial.trial_id, synthetic_metrics(values["genotype"])
        )
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


def test_fitness_is_the_papers_formula(tmp_path):
    oracle = make_oracle(
        tmp_path,
        objective=[
            keras_tuner.Objective("val_loss", "min"),
            keras_tuner.Objective("num_params", "min"),
        ],
    )
    trial = run_trial(oracle, metrics={"val_loss": 2.0, "num_params": 2.5e6})
    assert trial.score == pytest.approx(2.0 * (5e6 / 2.5e6) ** -0.07)
    assert oracle.fitness_direction == "min"
    # A maximized objective is penalized by size in the same sense.
    oracle = make_oracle(tmp_path / "ap")
    trial = run_trial(oracle, metrics={"val_ap": 0.7, "num_params": 1e7})
    assert trial.score == pytest.approx(0.7 * (5e6 / 1e7) ** 0.07)
    assert trial.score < 0.7


def test_best_trials_are_in_pareto_order(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=40)
    for _ in range(40):
        run_trial(oracle)
    best = oracle.get_best_trials(40)
    assert len(best) == 40

    def point(trial):
        return oracle.objective_values(trial)

    directions = ["max", "min"]
    front = oracle.pareto_front()
    assert best[: len(front)] == front
    for trial in front:
        assert not any(
            dominates(point(other), point(trial), directions) for other in best
        )
    # No trial is dominated by a trial listed after it.
    for i, trial in enumerate(best):
        for later in best[i + 1 :]:
            assert not dominates(point(later), point(trial), directions)
    # Within the front, trials go by fitness (the first objective here).
    scores = [trial.score for trial in front]
    assert scores == sorted(scores, reverse=True)


def test_pareto_selection_draws_parents_from_the_front(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=25, selection="pareto")
    for _ in range(25):
        trial = oracle.create_trial("tuner0")
        values = trial.hyperparameters.values
        if values["parent_trial_id"]:
            pool = [
                t.trial_id for t in oracle.get_best_trials(oracle.num_parents)
            ]
            assert values["parent_trial_id"] in pool
        oracle.update_trial(
            trial.trial_id, synthetic_metrics(values["genotype"])
        )
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


def test_state_round_trips_through_json(tmp_path):
    oracle = make_oracle(tmp_path)
    for _ in range(6):
        run_trial(oracle)
    state = json.loads(json.dumps(oracle.get_state()))
    other = make_oracle(tmp_path / "other")
    other.trials = oracle.trials
    other.set_state(state)
    again = json.loads(json.dumps(other.get_state()))
    # keras-tuner saves a set as a list: its order is arbitrary.
    for saved in (again, state):
        saved["tried_so_far"] = sorted(saved["tried_so_far"])
    assert again == state
    # Same seed state and trials: both propose the same next child.
    a = oracle.populate_space("06")
    b = other.populate_space("06")
    assert a == b and a["status"] == "RUNNING"


def test_never_idle_when_nothing_runs(tmp_path):
    oracle = make_oracle(tmp_path)
    ancestor = oracle.create_trial("tuner0")
    # A second worker must wait while the ancestor trains...
    assert oracle.create_trial("tuner1").status == "IDLE"
    # ...but if the ancestor fails, the search ends instead of idling.
    ancestor.status = "FAILED"
    oracle.end_trial(ancestor)
    assert oracle.create_trial("tuner1").status == "STOPPED"


def test_end_trial_is_idempotent(tmp_path):
    oracle = make_oracle(tmp_path)
    trial = run_trial(oracle)
    score = trial.score
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert oracle.end_order == [trial.trial_id]
    assert oracle.trials[trial.trial_id].score == score
    assert oracle.ongoing_trials == {}


def test_nan_or_oversize_fails_and_three_in_a_row_stop(tmp_path):
    oracle = make_oracle(tmp_path)
    run_trial(oracle)
    nan = run_trial(oracle, metrics={"val_ap": math.nan, "num_params": 1e6})
    assert oracle.trials[nan.trial_id].status == "FAILED"
    # The search goes on after a failure.
    run_trial(oracle)
    oversize = run_trial(oracle, status="FAILED")
    assert oracle.trials[oversize.trial_id].status == "FAILED"
    run_trial(oracle, metrics={"val_ap": math.inf, "num_params": 1e6})
    last = run_trial(oracle, metrics={"val_ap": math.nan, "num_params": 1e6})
    # The stop is recorded, not raised inside end_trial: the last trial is
    # ended and saved, and the search answers STOPPED from now on.
    assert "3 trials in a row failed (trials 03, 04, 05" in oracle.stop_reason
    saved = json.loads((tmp_path / "project" / "oracle.json").read_text())
    assert saved["stop_reason"] == oracle.stop_reason
    trial_file = tmp_path / "project" / f"trial_{last.trial_id}" / "trial.json"
    assert json.loads(trial_file.read_text())["status"] == "FAILED"
    assert oracle.create_trial("tuner0").status == "STOPPED"
    assert oracle.search_finished()
    # Failed trials are never parents.
    failed = {
        t.trial_id for t in oracle.trials.values() if t.status == "FAILED"
    }
    parents = {
        t.hyperparameters.values["parent_trial_id"]
        for t in oracle.trials.values()
    }
    assert not failed & parents


def test_reload_in_a_new_process_retries_the_running_trial(tmp_path):
    oracle = make_oracle(tmp_path)
    for _ in range(4):
        run_trial(oracle)
    interrupted = oracle.create_trial("tuner0")
    script = textwrap.dedent(
        f"""
        import json, keras_tuner
        from keras_evopose.search import SearchSpace
        from keras_evopose.search.evolution_oracle import EvolutionOracle
        oracle = EvolutionOracle(
            objective=[keras_tuner.Objective("val_ap", "max"),
                       keras_tuner.Objective("num_params", "min")],
            search_space=SearchSpace(), max_trials=30, seed=7)
        oracle._set_project_dir({str(tmp_path)!r}, "project")
        oracle.reload()
        trial = oracle.create_trial("tuner0")
        print(json.dumps({{
            "trial_id": trial.trial_id,
            "genotype": trial.hyperparameters.values["genotype"],
            "completed": sorted(
                t.trial_id for t in oracle.trials.values()
                if t.status == "COMPLETED"),
            "scores": {{t.trial_id: t.score for t in oracle.trials.values()
                        if t.status == "COMPLETED"}},
        }}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert reloaded["trial_id"] == interrupted.trial_id
    assert (
        reloaded["genotype"] == (interrupted.hyperparameters.values["genotype"])
    )
    assert reloaded["completed"] == ["00", "01", "02", "03"]
    for trial_id, score in reloaded["scores"].items():
        assert score == pytest.approx(oracle.trials[trial_id].score)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"objective": "val_ap"}, "explicit direction"),
        ({"num_parents": 0}, "num_parents=0"),
        ({"selection": "random"}, "selection='random'"),
        ({"target_params": -1}, "target_params=-1"),
        ({"search_space": ["ir_r1_k3_s1_e1_c16_se0.25"]}, "SearchSpace"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EvolutionOracle(**kwargs)


def test_head_genes_evolve_and_identify_trials(tmp_path):
    from keras_evopose.models import split_genotype

    space = SearchSpace.from_preset(
        "test", head_filter_choices=[8, 16, 32], head_steps=(1, 3)
    )
    oracle = make_oracle(tmp_path, search_space=space)

    def metrics(genotype_string):
        backbone, head = split_genotype(genotype_from_string(genotype_string))
        result = synthetic_metrics(",".join(backbone))
        # A wider, finer head: more accurate and larger.
        result["val_ap"] += 0.01 * len(head) + 0.0001 * sum(head)
        result["num_params"] += 100.0 * sum(head)
        return result

    for _ in range(30):
        trial = oracle.create_trial("tuner0")
        oracle.update_trial(
            trial.trial_id, metrics(trial.hyperparameters.values["genotype"])
        )
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    values = [
        oracle.trials[i].hyperparameters.values for i in oracle.start_order
    ]
    assert genotype_from_string(values[0]["genotype"]) == space.ancestor
    genotypes = [v["genotype"] for v in values]
    assert len(set(genotypes)) == len(genotypes)
    mutations = [v["mutation"] for v in values]
    assert any(m.startswith("head ") for m in mutations), mutations
    for value in values[1:]:
        assert space.contains(genotype_from_string(value["genotype"]))
