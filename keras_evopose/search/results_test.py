"""The results a person reads: summary lines and the two plots."""

import re

import pytest

from keras_evopose.search.evolution_oracle_resume_test import finish
from keras_evopose.search.evolution_oracle_resume_test import make_oracle
from keras_evopose.search.evolution_oracle_test import synthetic_metrics
from keras_evopose.search.results import _held_out_section
from keras_evopose.search.results import _number
from keras_evopose.search.results import describe
from keras_evopose.search.results import plot_fitness
from keras_evopose.search.results import plot_pareto
from keras_evopose.search.results import search_results


def trial(trial_id, parent, generation, loss, params):
    return {
        "trial_id": trial_id,
        "parent_trial_id": parent,
        "generation": generation,
        "objectives": {"val_heatmap_mse": loss, "num_params": params},
        "num_params": params,
        "fitness": loss * (5e6 / params) ** -0.07,
        "pareto_optimal": trial_id in ("2", "3"),
    }


def make_result():
    trials = [
        trial("0", "", 0, 140.0, 16921),
        trial("1", "0", 1, 138.0, 20767),
        trial("2", "0", 1, 137.0, 15383),
        trial("3", "2", 2, 152.0, 12435),
    ]
    result = {
        "objectives": [
            {"name": "val_heatmap_mse", "direction": "min"},
            {"name": "num_params", "direction": "min"},
        ],
        "fitness": {
            "direction": "min",
            "target_params": 5e6,
            "size_weight": -0.07,
        },
        "trials": trials,
        "front": [t for t in trials if t["pareto_optimal"]],
        "best": trials[2],
        "failed_trials": [],
        "stop_reason": None,
    }
    result["held_out"] = _held_out_section(
        result,
        {
            "people": 80,
            "untrained": {"val_heatmap_mse": 153.5},
            "best_coco_ap": {"ap": 0.0123, "ap50": 0.05, "ap75": 0, "ar": 0},
        },
    )
    return result


def test_numbers_never_end_with_a_dot():
    assert _number(152.0) == "152.0"
    assert _number(152.34) == "152.3"
    assert _number(12345.6) == "12,346"
    assert _number(None) == "n/a"
    assert re.search(r"(?<![\d.])\d+\.(?!\d)", "loss 152.")


def test_held_out_section_and_summary():
    result = make_result()
    section = result["held_out"]
    assert section["ancestor"]["trial_id"] == "0"
    assert section["best"]["val_heatmap_mse"] == 137.0
    assert section["improvement"]["over_untrained"] == pytest.approx(16.5)
    assert section["improvement"]["over_ancestor"] == pytest.approx(3.0)
    assert section["direction"] == "lower is better"
    text = describe(result)
    assert "untrained 153.5" in text and "ancestor (trial 0) 140.0" in text
    assert "best (trial 2) 137.0" in text and "80 held-out people" in text
    assert "16.50 (10.7%) better than untrained" in text
    assert "3.00 (2.1%) better than the ancestor" in text
    assert "COCO AP on those people: 0.012" in text
    # No number cut short to a bare trailing dot ("152.").
    assert not re.search(r"(?<![\d.])\d+\.(?!\d)", text), text


def test_plots_are_written(tmp_path):
    result = make_result()
    plot_pareto(result, tmp_path / "pareto.png")
    plot_fitness(result, tmp_path / "fitness.png")
    for name in ("pareto.png", "fitness.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_a_nan_score_is_listed_as_failed_with_why(tmp_path):
    oracle = make_oracle(tmp_path)
    finish(oracle, oracle.create_trial("tuner0"))
    child = oracle.create_trial("tuner0")
    metrics = synthetic_metrics(child.hyperparameters.values["genotype"])
    oracle.update_trial(child.trial_id, {**metrics, "val_ap": float("nan")})
    child.status = "COMPLETED"
    oracle.end_trial(child)
    result = search_results(oracle)
    assert [r["trial_id"] for r in result["trials"]] == ["00"]
    # Not silently dropped: listed with the reason.
    assert result["failed_trials"] == [child.trial_id]
    assert "not finite" in result["failures"][child.trial_id]


def test_pareto_json_names_its_best_model_by_hash(tmp_path):
    import pytest

    from keras_evopose.search.results import load_search_results
    from keras_evopose.search.results import write_search_results
    from keras_evopose.utils.state_files import StateFileError

    oracle = make_oracle(tmp_path / "search")
    finish(oracle, oracle.create_trial("tuner0"))
    model = tmp_path / "best_model.keras"
    model.write_bytes(b"the best trial's model")
    write_search_results(oracle, tmp_path, best_model=model)
    result = load_search_results(tmp_path)
    assert result["best_model"]["trial_id"] == result["best"]["trial_id"]
    # A later search wrote another best model, then was killed before
    # pareto.json: the two no longer agree, and reading says so.
    model.write_bytes(b"another trial's model")
    with pytest.raises(StateFileError, match="stopped between writing them"):
        load_search_results(tmp_path)
