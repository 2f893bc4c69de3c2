"""Trials failed by their environment run again on resume."""

from keras_evopose.data.image_files import environment_cause
from keras_evopose.search.evolution_oracle import ENVIRONMENT_FAILURE
from keras_evopose.search.evolution_oracle_resume_test import genotype
from keras_evopose.search.evolution_oracle_resume_test import make_oracle

BAD_IMAGE = "/data/x.jpg: Not a JPEG/PNG/GIF/BMP image"


def fail(oracle, message):
    trial = oracle.create_trial("tuner0")
    trial.status = "FAILED"
    trial.message = f"Traceback ...\nFailedTrialError: {message}"
    oracle.end_trial(trial)
    return trial


def test_an_environment_failure_reruns_on_resume_with_its_id(tmp_path):
    oracle = make_oracle(tmp_path)
    ancestor = fail(oracle, f"{ENVIRONMENT_FAILURE} {BAD_IMAGE}; fix it")
    assert oracle.create_trial("tuner0").status == "STOPPED"
    assert oracle.stop_reason
    resumed = make_oracle(tmp_path, reload=True)
    assert resumed.retried == [(ancestor.trial_id, f"{BAD_IMAGE}; fix it")]
    assert resumed.stop_reason is None
    again = resumed.create_trial("tuner0")
    assert again.status == "RUNNING"
    assert again.trial_id == ancestor.trial_id
    assert genotype(again) == genotype(ancestor)


def test_other_failures_rerun_only_when_asked(tmp_path):
    oracle = make_oracle(tmp_path)
    failed = fail(oracle, "the training loss is nan at epoch 1.")
    assert make_oracle(tmp_path, reload=True).retried == []
    asked = make_oracle(tmp_path)
    asked.retry_failed = True
    asked.reload()
    cause = "FailedTrialError: the training loss is nan at epoch 1."
    assert asked.retried == [(failed.trial_id, cause)]
    assert asked.create_trial("tuner0").trial_id == failed.trial_id


def test_environment_causes_name_the_file():
    class InvalidArgumentError(Exception):
        pass

    assert environment_cause(
        FileNotFoundError(2, "No such file", "/a.jpg")
    ) == ("No such file: /a.jpg")
    pipeline = InvalidArgumentError(
        "Graph execution error:\n\nassertion failed: [Truncated image (its "
        "end marker is missing):] [/data/y.jpg]\n\t [[{{node Assert}}]]\n\t "
        "[[IteratorGetNext]] [Op:__inference_multi_step_on_iterator_1]"
    )
    assert environment_cause(pipeline) == (
        "/data/y.jpg: Truncated image (its end marker is missing)"
    )
    decoder = InvalidArgumentError(
        "Graph execution error:\nInvalid JPEG data or size.\n\t "
        "[[IteratorGetNext]]"
    )
    assert environment_cause(decoder).startswith(
        "an image the decoder cannot read (Invalid JPEG data or size.;"
    )
    # The network's own errors are not the environment's.
    shapes = InvalidArgumentError("Incompatible shapes: [16,8] vs. [16,4]")
    assert environment_cause(shapes) is None
    assert environment_cause(ValueError("bad genotype")) is None


def test_a_bad_genotype_in_a_trial_file_is_named(tmp_path):
    import json

    import pytest

    from keras_evopose.search.evolution_oracle import ResumeError

    oracle = make_oracle(tmp_path)
    trial = fail(oracle, "the loss is nan")
    path = tmp_path / "project" / f"trial_{trial.trial_id}" / "trial.json"
    state = json.loads(path.read_text())
    state["hyperparameters"]["values"]["genotype"] = "ir_r1_garbage"
    path.write_text(json.dumps(state))
    with pytest.raises(ResumeError) as error:
        make_oracle(tmp_path, reload=True)
    assert str(error.value).startswith(
        f"{path} holds no valid genotype ('ir_r1_garbage': "
    )
    remedy = f"remove {path.parent} to re-run that trial"
    assert str(error.value).endswith(remedy)
