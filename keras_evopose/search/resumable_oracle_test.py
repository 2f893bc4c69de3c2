"""ResumableOracle's messages go through `logging`; the CLI prints them
as the lines they were."""

import logging

from keras_evopose.cli.search import PrintedLines
from keras_evopose.search import resumable_oracle
from keras_evopose.search.evolution_oracle_resume_test import make_oracle


def test_a_silent_worker_is_logged_and_the_cli_prints_the_line(
    tmp_path, monkeypatch, caplog, capsys
):
    # The chief of a distributed search, on a clock the test moves.
    chief = {"ORACLE_IP": "127.0.0.1", "ORACLE_PORT": "1", "TUNER_ID": "chief"}
    for name, value in chief.items():
        monkeypatch.setenv(f"KERASTUNER_{name}", value)
    clock = [1000.0]
    monkeypatch.setattr(resumable_oracle.time, "time", lambda: clock[0])
    oracle = make_oracle(tmp_path, heartbeat_timeout=60)
    lost = oracle.create_trial("tuner0")  # the ancestor
    clock[0] += 80
    printed = PrintedLines()
    resumable_oracle.logger.addHandler(printed)
    try:
        with caplog.at_level(logging.WARNING, resumable_oracle.logger.name):
            handed = oracle.create_trial("tuner1")
    finally:
        resumable_oracle.logger.removeHandler(printed)
    assert handed.trial_id == lost.trial_id
    line = (
        "EvolutionOracle: worker tuner0 has been silent for 80 s; trial "
        f"{lost.trial_id} goes to another worker."
    )
    assert [record.getMessage() for record in caplog.records] == [line]
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert capsys.readouterr().out == line + "\n"
