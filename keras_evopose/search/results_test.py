from keras_evopose.search.evolution_oracle_resume_test import finish
from keras_evopose.search.evolution_oracle_resume_test import make_oracle
from keras_evopose.search.evolution_oracle_test import synthetic_metrics
from keras_evopose.search.results import search_results


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
