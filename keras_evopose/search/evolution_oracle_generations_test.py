"""EvolutionOracle(population="generational") with synthetic metrics."""

import collections
import zlib

import keras_tuner
import pytest

from keras_evopose.search.evolution_oracle import EvolutionOracle
from keras_evopose.search.evolution_oracle import ResumeError
from keras_evopose.search.search_space import SearchSpace

OBJECTIVES = [
    keras_tuner.Objective("val_loss", "min"),
    keras_tuner.Objective("num_params", "min"),
]


def synthetic_metrics(genotype):
    # Deterministic and unrelated to the parent: children often beat
    # their parents, so the parents really change between generations.
    code = zlib.crc32(genotype.encode())
    return {
        "val_loss": 1.0 + (code % 1000) / 1000.0,
        "num_params": 1e6 + (code % 997) * 1e3,
    }


def make_oracle(tmp_path, **kwargs):
    kwargs.setdefault("population", "generational")
    oracle = EvolutionOracle(
        objective=OBJECTIVES,
        search_space=SearchSpace(),
        max_trials=1 + 3 * 64,
        seed=3,
        **kwargs,
    )
    oracle._set_project_dir(str(tmp_path), "project")
    return oracle


def end(oracle, trial):
    oracle.update_trial(
        trial.trial_id,
        synthetic_metrics(trial.hyperparameters.values["genotype"]),
    )
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def run_trials(oracle, count):
    for _ in range(count):
        trial = oracle.create_trial("tuner0")
        assert trial.status == "RUNNING"
        end(oracle, trial)


def by_generation(oracle):
    groups = collections.defaultdict(list)
    for trial in oracle.trials.values():
        groups[oracle.generation_of(trial)].append(trial)
    return groups


def best_four_before(oracle, generation):
    # Independent of the Oracle's selection code: lowest fitness first.
    earlier = [
        t
        for t in oracle.trials.values()
        if t.status == "COMPLETED" and oracle.generation_of(t) < generation
    ]
    earlier.sort(key=lambda t: (t.score, int(t.trial_id)))
    return {t.trial_id for t in earlier[:4]}


def check_generations(oracle, generations):
    groups = by_generation(oracle)
    assert [len(groups[g]) for g in range(generations + 1)] == [1] + [
        64
    ] * generations
    ancestor = groups[0][0].trial_id
    assert {t.hyperparameters.values["parent_trial_id"] for t in groups[1]} == {
        ancestor
    }
    parent_sets = []
    for generation in range(2, generations + 1):
        counts = collections.Counter(
            t.hyperparameters.values["parent_trial_id"]
            for t in groups[generation]
        )
        assert sorted(counts.values()) == [16, 16, 16, 16]
        assert set(counts) == best_four_before(oracle, generation)
        parent_sets.append(set(counts))
    return parent_sets


def test_generations_of_64_children_16_per_reselected_parent(tmp_path):
    oracle = make_oracle(tmp_path)
    run_trials(oracle, 1 + 3 * 64)
    parent_sets = check_generations(oracle, 3)
    # Re-selected: generation 3's parents include a child of generation 2.
    assert parent_sets[0] != parent_sets[1]
    assert any(
        oracle.generation_of(oracle.trials[i]) == 2 for i in parent_sets[1]
    )
    assert oracle.create_trial("tuner0").status == "STOPPED"


def test_idle_until_the_generation_ends_never_when_nothing_runs(tmp_path):
    oracle = make_oracle(tmp_path, num_parents=2, children_per_generation=4)
    run_trials(oracle, 1)
    running = [oracle.create_trial(f"tuner{i}") for i in range(4)]
    assert {oracle.generation_of(t) for t in running} == {1}
    # Generation 1 is handed out: a fifth worker waits for its results.
    assert oracle.create_trial("tuner9").status == "IDLE"
    for trial in running[:3]:
        end(oracle, trial)
    assert oracle.create_trial("tuner9").status == "IDLE"
    running[3].status = "FAILED"
    oracle.end_trial(running[3])
    nxt = oracle.create_trial("tuner9")
    assert nxt.status == "RUNNING"
    assert oracle.generation_of(nxt) == 2


def test_resumes_mid_generation_in_a_new_oracle(tmp_path):
    oracle = make_oracle(tmp_path)
    run_trials(oracle, 1 + 64 + 20)
    parents = best_four_before(oracle, 2)
    # Killed with three trials of generation 2 running.
    for tuner in ("a", "b", "c"):
        assert oracle.create_trial(tuner).status == "RUNNING"
    del oracle

    resumed = make_oracle(tmp_path)
    resumed.reload()
    assert resumed.current_generation() == 2
    assert len(by_generation(resumed)[2]) == 23
    assert {t.trial_id for t in resumed.generation_parents(2)} == parents
    run_trials(resumed, 64 - 20 + 64)
    check_generations(resumed, 3)
    assert len(resumed.trials) == 1 + 3 * 64


def test_generation_settings_are_saved_and_checked(tmp_path):
    oracle = make_oracle(tmp_path, gene_weighting="reference")
    run_trials(oracle, 2)
    settings = oracle.get_settings()
    assert settings["population"] == "generational"
    assert settings["children_per_generation"] == 64
    assert settings["gene_weighting"] == "reference"
    other = make_oracle(tmp_path, population="steady_state")
    with pytest.raises(ResumeError, match="population: saved 'generational'"):
        other.reload()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"population": "mu_plus_one"}, "population='mu_plus_one'"),
        ({"children_per_generation": 0}, "children_per_generation=0"),
        ({"children_per_generation": 3}, "at least num_parents=4"),
        ({"gene_weighting": "paper"}, "gene_weighting='paper'"),
    ],
)
def test_bad_generation_arguments(kwargs, message):
    kwargs.setdefault("population", "generational")
    with pytest.raises(ValueError, match=message):
        EvolutionOracle(**kwargs)
