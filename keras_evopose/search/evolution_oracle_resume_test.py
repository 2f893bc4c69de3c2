"""EvolutionOracle's crash-safety contract, with synthetic metrics.

Each test plays a crash by copying state files between moments (what a
`kill -9` between two writes leaves) and reloads a fresh Oracle from disk.
"""

import json
import shutil

import keras_tuner
import pytest
from keras_tuner.src.engine import trial as trial_module

from keras_evopose.search import evolution_oracle as oracle_module
from keras_evopose.search.evolution_oracle import EvolutionOracle
from keras_evopose.search.evolution_oracle import ResumeError
from keras_evopose.search.evolution_oracle_test import synthetic_metrics
from keras_evopose.search.search_space import SearchSpace
from keras_evopose.utils.state_files import StateFileError

OBJECTIVES = [
    keras_tuner.Objective("val_ap", "max"),
    keras_tuner.Objective("num_params", "min"),
]


def make_oracle(tmp_path, reload=False, **kwargs):
    kwargs.setdefault("objective", OBJECTIVES)
    kwargs.setdefault("search_space", SearchSpace())
    kwargs.setdefault("max_trials", 20)
    oracle = EvolutionOracle(seed=7, **kwargs)
    oracle.verbose = 0
    oracle._set_project_dir(str(tmp_path), "project")
    if reload:
        oracle.reload()
    return oracle


def sent(trial):
    """The copy of `trial` a worker sends back over gRPC."""
    return trial_module.Trial.from_state(trial.get_state())


def finish(oracle, trial, status="COMPLETED"):
    genotype = trial.hyperparameters.values["genotype"]
    oracle.update_trial(trial.trial_id, synthetic_metrics(genotype))
    trial.status = status
    oracle.end_trial(trial)


def run(oracle, tuner_id="tuner0"):
    trial = oracle.create_trial(tuner_id)
    finish(oracle, trial)
    return trial


def genotype(trial):
    return trial.hyperparameters.values["genotype"]


def project(tmp_path):
    return tmp_path / "project"


def test_completed_trial_is_never_run_again_when_the_oracle_write_was_lost(
    tmp_path,
):
    oracle = make_oracle(tmp_path)
    run(oracle)
    trial = oracle.create_trial("tuner0")
    stale = (project(tmp_path) / "oracle.json").read_text()
    finish(oracle, trial)
    # Killed after trial.json turned COMPLETED, before oracle.json was
    # rewritten: oracle.json still lists the trial as running.
    (project(tmp_path) / "oracle.json").write_text(stale)
    resumed = make_oracle(tmp_path, reload=True)
    assert resumed.trials[trial.trial_id].status == "COMPLETED"
    assert resumed.ongoing_trials == {}
    assert trial.trial_id in resumed.end_order
    new = resumed.create_trial("tuner0")
    assert new.trial_id == "02"
    assert genotype(new) not in {genotype(t) for t in oracle.trials.values()}


def test_running_trial_unknown_to_the_oracle_file_runs_again_once(tmp_path):
    oracle = make_oracle(tmp_path)
    run(oracle)
    stale = (project(tmp_path) / "oracle.json").read_text()
    trial = oracle.create_trial("tuner0")
    # Killed between writing trial.json (RUNNING) and oracle.json.
    (project(tmp_path) / "oracle.json").write_text(stale)
    resumed = make_oracle(tmp_path, reload=True)
    again = resumed.create_trial("tuner0")
    # The same trial, same genotype: not orphaned, not duplicated.
    assert (again.trial_id, genotype(again)) == (
        trial.trial_id,
        genotype(trial),
    )
    assert again.metrics.get_config()["metrics"] == {}
    finish(resumed, again)
    assert resumed.create_trial("tuner0").trial_id == "02"


def test_removed_trial_folder_never_makes_a_trial_overwrite_another(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=5)
    for _ in range(4):
        run(oracle)
    shutil.rmtree(project(tmp_path) / "trial_1")
    resumed = make_oracle(tmp_path, reload=True, max_trials=5)
    assert sorted(resumed.trials) == ["0", "2", "3"]
    ids = [run(resumed).trial_id for _ in range(2)]
    # New ids only; the search still ends at max_trials trials on disk.
    assert ids == ["4", "5"]
    assert resumed.create_trial("tuner0").status == "STOPPED"
    assert len(list(project(tmp_path).glob("trial_*/trial.json"))) == 5


@pytest.mark.parametrize("content", ["", '{"trial_id": "01", "hyper'])
def test_damaged_trial_file_is_one_line_naming_it(tmp_path, content):
    oracle = make_oracle(tmp_path)
    run(oracle)
    run(oracle)
    (project(tmp_path) / "trial_01" / "trial.json").write_text(content)
    with pytest.raises(StateFileError) as info:
        make_oracle(tmp_path, reload=True)
    message = str(info.value)
    assert "trial_01/trial.json" in message
    assert "--resume cannot continue; remove" in message
    assert "trial_01 to re-run that trial" in message
    assert "\n" not in message


def test_damaged_oracle_file_is_one_line_naming_it(tmp_path):
    oracle = make_oracle(tmp_path)
    run(oracle)
    (project(tmp_path) / "oracle.json").write_text("")
    with pytest.raises(StateFileError, match="oracle.json is empty"):
        make_oracle(tmp_path, reload=True)
    # Removing it, as the message says, rebuilds from the trial files.
    (project(tmp_path) / "oracle.json").unlink()
    resumed = make_oracle(tmp_path, reload=True)
    assert resumed.trials["00"].status == "COMPLETED"
    assert resumed.create_trial("tuner0").trial_id == "01"


@pytest.mark.parametrize(
    "change, named",
    [
        (
            {"search_space": SearchSpace.from_preset("test")},
            "search_space.ancestor",
        ),
        (
            # Head genes on: the saved space had none.
            {"search_space": SearchSpace(head_steps=(2, 4))},
            "search_space.head_steps: saved None, now [2, 4]",
        ),
        ({"size_weight": -0.1}, "size_weight: saved -0.07, now -0.1"),
        ({"num_parents": 2}, "num_parents: saved 4, now 2"),
        (
            {"objective": [keras_tuner.Objective("val_loss", "min")]},
            "objectives",
        ),
    ],
)
def test_resume_under_other_settings_is_refused(tmp_path, change, named):
    oracle = make_oracle(tmp_path)
    run(oracle)
    with pytest.raises(ResumeError, match="settings differ") as info:
        make_oracle(tmp_path, reload=True, **change)
    assert named in str(info.value)
    # max_trials may change.
    make_oracle(tmp_path, reload=True, max_trials=50)


def test_end_trial_is_idempotent_after_reload(tmp_path):
    oracle = make_oracle(tmp_path)
    trial = run(oracle)
    score = oracle.trials[trial.trial_id].score
    resumed = make_oracle(tmp_path, reload=True)
    again = sent(resumed.trials[trial.trial_id])
    resumed.update_trial(trial.trial_id, {"val_ap": 0.0, "num_params": 1.0})
    again.status = "FAILED"
    resumed.end_trial(again)
    assert resumed.trials[trial.trial_id].score == pytest.approx(score)
    assert resumed.trials[trial.trial_id].status == "COMPLETED"
    assert resumed.end_order == [trial.trial_id]


def test_idle_not_stopped_while_a_trial_runs(tmp_path, monkeypatch):
    oracle = make_oracle(tmp_path)
    run(oracle)
    running = oracle.create_trial("tuner0")
    # Every mutation gives an already tried genotype: nothing new now, but
    # the running trial may become a parent with untried neighbours.
    monkeypatch.setattr(
        oracle_module,
        "mutate",
        lambda specs, space, rng, **kwargs: (list(specs), "no change"),
    )
    assert oracle.create_trial("tuner1").status == "IDLE"
    assert oracle.stop_reason is None
    finish(oracle, running)
    assert oracle.create_trial("tuner1").status == "STOPPED"
    assert "already trained" in oracle.stop_reason


def test_silent_worker_trial_goes_to_another_worker_once(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    clock = [1000.0]
    monkeypatch.setattr(oracle_module.time, "time", lambda: clock[0])
    oracle = make_oracle(tmp_path, heartbeat_timeout=60)
    run(oracle, "tuner0")
    lost = oracle.create_trial("tuner0")
    clock[0] += 30
    oracle.update_trial(lost.trial_id, {})  # a heartbeat
    clock[0] += 50
    # 50 s since the heartbeat: tuner0 still owns it.
    other = oracle.create_trial("tuner1")
    assert other.trial_id != lost.trial_id
    finish(oracle, other)
    clock[0] += 20
    handed = sent(oracle.create_trial("tuner1"))
    assert handed.trial_id == lost.trial_id
    assert "tuner0" not in oracle.ongoing_trials
    # The presumed-dead worker finishes first: its result stands once...
    finish(oracle, lost)
    score = oracle.trials[lost.trial_id].score
    # ...and the second run's end changes nothing.
    handed.status = "FAILED"
    oracle.end_trial(handed)
    assert oracle.trials[lost.trial_id].status == "COMPLETED"
    assert oracle.trials[lost.trial_id].score == score
    assert oracle.end_order.count(lost.trial_id) == 1


def test_restarted_chief_waits_for_the_running_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    clock = [1000.0]
    monkeypatch.setattr(oracle_module.time, "time", lambda: clock[0])
    oracle = make_oracle(tmp_path, heartbeat_timeout=60)
    run(oracle, "tuner0")
    kept = oracle.create_trial("tuner0")
    dead = oracle.create_trial("tuner1")
    # The chief restarts while both workers train.
    chief = make_oracle(tmp_path, reload=True, heartbeat_timeout=60)
    new = chief.create_trial("tuner2")
    assert new.trial_id not in (kept.trial_id, dead.trial_id)
    clock[0] += 40
    chief.update_trial(kept.trial_id, {})  # tuner0 is alive
    clock[0] += 40
    # 80 s: tuner1's trial is handed on, tuner0's is not.
    finish(chief, new)
    handed = chief.create_trial("tuner2")
    assert handed.trial_id == dead.trial_id
    assert chief.ongoing_trials["tuner0"].trial_id == kept.trial_id
    finish(chief, chief.trials[kept.trial_id])
    assert chief.trials[kept.trial_id].status == "COMPLETED"


def test_search_finished_waits_for_live_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    oracle = make_oracle(tmp_path, max_trials=2)
    run(oracle, "tuner0")
    last = oracle.create_trial("tuner1")
    assert oracle.create_trial("tuner0").status == "IDLE"
    assert not oracle.search_finished()
    finish(oracle, last)
    assert not oracle.search_finished()  # both workers still listening
    assert oracle.create_trial("tuner0").status == "STOPPED"
    assert oracle.create_trial("tuner1").status == "STOPPED"
    assert oracle.search_finished()


def test_state_files_are_replaced_never_truncated(tmp_path, monkeypatch):
    writes = []
    real_replace = oracle_module.write_json_atomically.__globals__["os"].replace

    def spy(source, destination):
        writes.append((str(source), str(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(
        oracle_module.write_json_atomically.__globals__["os"], "replace", spy
    )
    oracle = make_oracle(tmp_path)
    run(oracle)
    destinations = {destination for _, destination in writes}
    assert str(project(tmp_path) / "oracle.json") in destinations
    assert str(project(tmp_path) / "trial_00" / "trial.json") in destinations
    for source, destination in writes:
        # Written beside the final file, then renamed over it.
        assert source.rsplit("/", 1)[0] == destination.rsplit("/", 1)[0]
    saved = json.loads((project(tmp_path) / "oracle.json").read_text())
    assert saved["settings"]["num_parents"] == 4
