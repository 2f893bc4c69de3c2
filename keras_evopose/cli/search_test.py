import json

import pytest

from keras_evopose.cli import main
from keras_evopose.cli import search
from keras_evopose.data.coco_split import split_coco_by_image
from keras_evopose.search.coco_search import COCOSearchConfig
from keras_evopose.search.coco_search import ancestor_genotype


def parse(argv):
    from keras_evopose.cli import build_parser

    return build_parser().parse_args(["search", *argv])


def test_settings_precedence(tmp_path):
    config = tmp_path / "search.yaml"
    config.write_text("max_trials: 20\nchild-epochs: 4\npreset: small\n")
    args = parse(["--config", str(config), "--max-trials", "30"])
    config = search.resolve_config(args)
    assert config.max_trials == 30  # the flag wins
    assert config.child_epochs == 4  # from the file, dashes allowed
    assert config.preset == "small"
    assert config.ancestor_epochs == 6  # the default
    # The deprecated spelling still works.
    assert search.resolve_config(
        parse(["--image-size", "128x96"])
    ).input_size == (128, 96)


def test_bad_settings(tmp_path):
    config = tmp_path / "search.json"
    config.write_text(json.dumps({"max_trails": 3}))
    with pytest.raises(search.UsageError, match="unknown setting.*max_trails"):
        search.resolve_config(parse(["--config", str(config)]))
    with pytest.raises(search.UsageError, match="max_trials must be"):
        search.resolve_config(parse(["--max-trials", "0"]))
    with pytest.raises(search.UsageError, match="no search to resume"):
        search.resolve_config(parse(["--resume", str(tmp_path)]))
    with pytest.raises(search.UsageError, match="nearest valid sizes: 64x48"):
        search.resolve_config(parse(["--input-size", "60x50"]))
    with pytest.raises(search.UsageError, match="--annotations .*no such file"):
        search.resolve_config(parse(["--annotations", str(tmp_path / "x")]))


def test_existing_search_needs_resume_or_overwrite(tmp_path, capsys):
    (tmp_path / "tuner").mkdir()
    (tmp_path / "tuner" / "oracle.json").write_text("{}")
    assert main(["search", "--output", str(tmp_path)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_split_by_image_id(tmp_path, coco_mini):
    train, val = split_coco_by_image(coco_mini["annotations"], tmp_path, 0.25)
    full = json.loads(coco_mini["annotations"].read_text())
    train, val = json.loads(train.read_text()), json.loads(val.read_text())
    ids = sorted(image["id"] for image in full["images"])
    assert [im["id"] for im in val["images"]] == [
        i for n, i in enumerate(ids) if n % 4 == 3
    ]
    train_ids = {im["id"] for im in train["images"]}
    val_ids = {im["id"] for im in val["images"]}
    assert not train_ids & val_ids
    assert train_ids | val_ids == set(ids)
    assert len(train["annotations"]) + len(val["annotations"]) == len(
        full["annotations"]
    )
    assert all(a["image_id"] in val_ids for a in val["annotations"])


def test_ancestor_choices():
    def ancestor(name, preset="test"):
        return ancestor_genotype(COCOSearchConfig(ancestor=name, preset=preset))

    assert ancestor("preset")[0] == "ir_r1_k3_s1_e1_c8_se0.25"
    assert len(ancestor("efficientnet-b0")) == 7
    with pytest.raises(ValueError, match="unknown token"):
        ancestor("ir_r1_x")


def test_non_coco_json_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"foo": 1}))
    code = main(
        ["search", "--annotations", str(bad), "--output", str(tmp_path / "o")]
    )
    error = capsys.readouterr().err
    assert code == 2
    assert "not a COCO keypoints file" in error and "'images'" in error
    assert "Traceback" not in error


def test_paper_search_config_file_loads(coco_mini):
    import pathlib

    path = (
        pathlib.Path(search.__file__).resolve().parents[2]
        / "configs"
        / "evopose2d_paper_search.yaml"
    )
    config = COCOSearchConfig.from_dict(search.load_config_file(path))
    assert (config.ancestor_epochs, config.child_epochs) == (30, 5)
    assert (config.batch_size, config.learning_rate) == (512, 0.004)
    assert config.learning_rate_schedule == "cosine"
    assert config.weight_decay == 1e-5
    assert config.ancestor_weights == "imagenet"
    assert config.population == "generational"
    assert (config.num_parents, config.children_per_generation) == (4, 64)
    assert config.gene_weighting == "reference"
    assert (config.rotation_probability, config.scale_factor) == (0.0, 0.0)
    assert config.half_body_probability == 0.5
    assert ancestor_genotype(config) == ancestor_genotype(
        COCOSearchConfig(ancestor="efficientnet-b0")
    )
    # What `keras-evopose search --config FILE --annotations ... --images
    # ...` resolves to: the file, with the data paths from the flags.
    args = parse(
        [
            "--config",
            str(path),
            "--annotations",
            str(coco_mini["annotations"]),
            "--images",
            str(coco_mini["images"]),
        ]
    )
    resolved = search.resolve_config(args)
    assert resolved.annotations == str(coco_mini["annotations"])
    assert resolved.population == "generational"


def test_recipe_settings_are_checked():
    for values, message in (
        ({"learning_rate_schedule": "step"}, "learning_rate_schedule must"),
        ({"population": "islands"}, "population must"),
        ({"ancestor_weights": "coco"}, "ancestor_weights must"),
        ({"half_body_probability": 1.5}, "half_body_probability must"),
        ({"batch_norm_momentum": 1.0}, "batch_norm_momentum must"),
        ({"weight_decay": -1.0}, "weight_decay must"),
    ):
        with pytest.raises(ValueError, match=message):
            COCOSearchConfig.from_dict(values)


@pytest.mark.slow
def test_progress_lines_and_held_out_summary_in_a_file(tmp_path, capsys):
    # stdout captured (not a terminal), as `--verbose 2 > log`.
    output = tmp_path / "run"
    flags = ["--max-trials", "2", "--ancestor-epochs", "1"]
    flags += ["--child-epochs", "1", "--passes-per-epoch", "1"]
    assert (
        main(["search", "--output", str(output), *flags, "--verbose", "2"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    trials = [line for line in lines if line.startswith("trial ")]
    assert len(trials) == 2
    assert trials[0].startswith(
        "trial 0 (generation 0, ancestor): val_heatmap_mse"
    )
    assert "% in training and validation steps (build" in trials[1]
    summary = "\n".join(lines)
    assert "on 80 held-out people (lower is better): untrained" in summary
    assert "Best trial's COCO AP on those people:" in summary
    result = json.loads((output / "pareto.json").read_text())
    held_out = result["held_out"]
    assert held_out["people"] == 80
    assert held_out["untrained"]["val_heatmap_mse"] > 0
    assert {"ancestor", "best", "improvement", "best_coco_ap"} <= set(held_out)
    assert all(trial["seconds"]["wall"] > 0 for trial in result["trials"])


def test_every_trial_failing_ends_with_a_clear_message(tmp_path, capsys):
    output = tmp_path / "run"
    code = main(
        ["search", "--output", str(output), "--max-model-size", "10"]
        + ["--max-trials", "3", "--verbose", "0"]
    )
    printed = capsys.readouterr()
    assert code == 1
    assert "stopped early: no completed trial to mutate" in printed.out
    assert "no trial completed, so there is no best model" in printed.out
    assert "Traceback" not in printed.err
    result = json.loads((output / "pareto.json").read_text())
    assert result["trials"] == [] and result["failed_trials"] == ["0"]
    assert not (output / "best_model.keras").exists()


@pytest.mark.parametrize(
    "change, named",
    [
        (
            [
                "--ancestor",
                "ir_r1_k3_s1_e1_c8_se0.25,ir_r1_k3_s2_e2_c16_se0.25,"
                "ir_r2_k3_s2_e2_c16_se0.25,ir_r1_k3_s2_e2_c24_se0.25",
            ],
            "search_space.ancestor",
        ),
        (["--size-weight", "-0.1"], "size_weight: saved -0.07, now -0.1"),
    ],
)
def test_resume_with_other_settings_is_refused(tmp_path, capsys, change, named):
    output = tmp_path / "run"
    # A search whose one trial fails at once (no training needed).
    flags = ["--max-model-size", "10", "--max-trials", "1", "--verbose", "0"]
    assert main(["search", "--output", str(output), *flags]) == 1
    capsys.readouterr()
    code = main(["search", "--resume", str(output), *change])
    error = capsys.readouterr().err
    assert code == 2
    assert "cannot resume" in error and named in error
    assert len(error.strip().splitlines()) == 1


def test_help_lists_every_setting(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--ancestor-weights",
        "--population",
        "--gene-weighting",
        "--half-body-probability",
        "--learning-rate-schedule",
        "--weight-decay",
    ):
        assert flag in text


def test_a_worker_adopts_its_chiefs_settings_or_names_each_difference(
    tmp_path, monkeypatch, capsys
):
    chief = COCOSearchConfig(
        child_epochs=1, ancestor_epochs=1, output=str(tmp_path)
    )
    (tmp_path / "search_config.json").write_text(json.dumps(chief.to_dict()))
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    # As docs/search.md starts a worker: only --output.
    adopted = search.resolve_config(parse(["--output", str(tmp_path)]))
    assert adopted == chief
    argv = ["search", "--output", str(tmp_path), "--child-epochs", "3"]
    assert main([*argv, "--max-trials", "9"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "differ from its chief's" in error
    assert "child_epochs 3 (chief: 1); max_trials 9 (chief: 5)" in error


def _saved_search(folder, trials=3, **settings):
    config = COCOSearchConfig(output=str(folder), **settings).to_dict()
    (folder / "search_config.json").write_text(json.dumps(config))
    for number in range(trials):
        trial = folder / "tuner" / f"trial_{number}"
        trial.mkdir(parents=True)
        (trial / "trial.json").write_text(json.dumps({"status": "COMPLETED"}))


def test_damaged_or_lost_settings_and_too_few_trials_are_one_line(
    tmp_path, capsys
):
    _saved_search(tmp_path)
    config = tmp_path / "search_config.json"
    before = config.read_text()
    # Fewer trials than already ran.
    argv = ["search", "--resume", str(tmp_path), "--max-trials", "2"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "--max-trials 2 is below the 3 trials" in error
    assert "give --max-trials 3 or more" in error
    assert config.read_text() == before  # refused before any write
    # A type error in the saved settings names the file.
    config.write_text(before.replace('"max_trials": 5', '"max_trials": "5"'))
    assert main(["search", "--resume", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert f"{config}: max_trials must be a int" in error
    # A lost settings file says how to go on.
    config.unlink()
    assert main(["search", "--resume", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "holds 3 trial(s): continue with --resume" in error
    assert "--rebuild-config" in error
    rebuilt = search.resolve_config(
        parse(["--resume", str(tmp_path), "--rebuild-config"])
    )
    assert rebuilt.output == str(tmp_path)


def test_a_misspelled_preset_names_the_flag_and_the_closest_preset(
    tmp_path, capsys
):
    output = tmp_path / "search"
    assert main(["search", "--preset", "smal", "--output", str(output)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert "--preset 'smal'" in error and "did you mean 'small'" in error
    assert not output.exists()


def test_the_oracles_messages_are_lines_of_the_output(
    tmp_path, capsys, monkeypatch
):
    import types

    import keras_evopose.search
    from keras_evopose.search import resumable_oracle

    line = (
        "EvolutionOracle: worker tuner0 has been silent for 190 s; trial 07 "
        "goes to another worker."
    )

    def search_where_a_worker_dies(config, **kwargs):
        resumable_oracle.logger.warning("%s", line)
        return types.SimpleNamespace(role="worker")

    monkeypatch.setattr(
        keras_evopose.search, "run_coco_search", search_where_a_worker_dies
    )
    assert main(["search", "--output", str(tmp_path / "run")]) == 0
    assert line in capsys.readouterr().out.splitlines()
    # Only for the search: the logger is as it was afterwards.
    assert resumable_oracle.logger.handlers == []
    assert resumable_oracle.logger.propagate
