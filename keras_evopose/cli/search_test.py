import json

import pytest

from keras_evopose.cli import main
from keras_evopose.cli import search


def parse(argv):
    from keras_evopose.cli import build_parser

    return build_parser().parse_args(["search", *argv])


def test_settings_precedence(tmp_path):
    config = tmp_path / "search.yaml"
    config.write_text("max_trials: 20\nchild-epochs: 4\npreset: small\n")
    args = parse(["--config", str(config), "--max-trials", "30"])
    settings = search.resolve_settings(args)
    assert settings["max_trials"] == 30  # the flag wins
    assert settings["child_epochs"] == 4  # from the file, dashes allowed
    assert settings["preset"] == "small"
    assert settings["ancestor_epochs"] == 6  # the default


def test_bad_settings(tmp_path):
    config = tmp_path / "search.json"
    config.write_text(json.dumps({"max_trails": 3}))
    with pytest.raises(search.UsageError, match="unknown setting.*max_trails"):
        search.resolve_settings(parse(["--config", str(config)]))
    with pytest.raises(search.UsageError, match="max_trials must be"):
        search.resolve_settings(parse(["--max-trials", "0"]))
    with pytest.raises(FileNotFoundError, match="no search to resume"):
        search.resolve_settings(parse(["--resume", str(tmp_path)]))


def test_existing_search_needs_resume_or_overwrite(tmp_path, capsys):
    (tmp_path / search.PROJECT).mkdir()
    assert main(["search", "--output", str(tmp_path)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_split_by_image_id(tmp_path, coco_mini):
    train, val = search.split_annotations(
        coco_mini["annotations"], tmp_path, 0.25
    )
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
    assert (
        search.ancestor_genotype({"ancestor": "preset", "preset": "test"})[0]
        == "ir_r1_k3_s1_e1_c8_se0.25"
    )
    assert (
        len(
            search.ancestor_genotype(
                {"ancestor": "efficientnet-b0", "preset": "x"}
            )
        )
        == 7
    )
    with pytest.raises(ValueError, match="unknown token"):
        search.ancestor_genotype({"ancestor": "ir_r1_x", "preset": "test"})
