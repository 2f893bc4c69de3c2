import dataclasses
import json

import pytest

from keras_evopose.cli import build_parser
from keras_evopose.cli import main
from keras_evopose.cli import search
from keras_evopose.search import ResumeError
from keras_evopose.search.coco_search import check_worker_config
from keras_evopose.search.coco_search import load_saved_config
from keras_evopose.search.coco_search_config import COCOSearchConfig


def parse(argv):
    return build_parser().parse_args(["search", *argv])


def test_settings_are_typed_and_read_from_text_by_type():
    config = COCOSearchConfig(head_filter_choices=[8, 16, 32], head_steps="1-3")
    assert config.head_filter_choices == (8, 16, 32)
    assert config.head_steps == (1, 3)
    assert config == COCOSearchConfig(
        head_filter_choices="8,16,32", head_steps=(1, 3)
    )
    assert COCOSearchConfig.parse("max_model_size", "10") == 10
    assert COCOSearchConfig.parse("learning_rate", "1e-3") == 1e-3
    assert COCOSearchConfig.parse("head_steps", "2-4") == (2, 4)
    assert COCOSearchConfig.parse("head_filter_choices", "8") == (8,)
    with pytest.raises(ValueError, match="batch_size must be a int"):
        COCOSearchConfig.parse("batch_size", "x")
    with pytest.raises(ValueError, match="head_steps must be like '1-3'"):
        COCOSearchConfig(head_steps=[1, 2, 3])
    # Saved as JSON lists; read back equal.
    saved = json.loads(json.dumps(config.to_dict()))
    assert saved["head_steps"] == [1, 3]
    assert COCOSearchConfig.from_dict(saved) == config


def test_the_input_size_is_a_height_width_tuple_read_from_text_or_a_list():
    assert COCOSearchConfig.parse("input_size", "128x96") == (128, 96)
    assert COCOSearchConfig.parse("input_size", "128X96") == (128, 96)
    config = COCOSearchConfig(input_size=[128, 96])  # a config file's list
    assert config.input_size == (128, 96)
    assert config == COCOSearchConfig(input_size="128x96")
    assert config.to_dict()["input_size"] == [128, 96]
    assert config.resolve().input_size == (128, 96)
    assert COCOSearchConfig().resolve().input_size == (64, 48)  # the preset's
    for bad in ("128", "128x96x3", "128-96", "axb", [128], [128.0, 96]):
        with pytest.raises(
            ValueError, match="input_size must be like '128x96'"
        ):
            COCOSearchConfig(input_size=bad)


def test_a_bad_input_size_is_one_line_naming_the_flag_or_field(
    tmp_path, capsys
):
    output = str(tmp_path / "o")
    assert main(["search", "--output", output, "--input-size", "128by96"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "--input-size: input_size must be like '128x96'" in error
    settings = tmp_path / "search.yaml"
    settings.write_text("input_size: 128,96\n")
    assert main(["search", "--config", str(settings)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "input_size must be like '128x96'; received '128,96'" in error
    settings.write_text("input_size: [128, 96]\n")
    config = search.resolve_config(parse(["--config", str(settings)]))
    assert config.input_size == (128, 96)


def test_a_search_folder_saved_with_the_input_size_as_text_still_loads(
    tmp_path,
):
    # search_config.json as the code before the typed input size wrote it.
    old = COCOSearchConfig(output=str(tmp_path)).to_dict()
    old["input_size"] = "128x96"
    (tmp_path / "search_config.json").write_text(json.dumps(old, indent=2))
    saved = load_saved_config(tmp_path)
    assert saved.input_size == (128, 96)
    assert saved.resolve().input_size == (128, 96)
    # --resume reads it (its flags on top); a worker given the chief's
    # settings agrees with them, one given another size is refused.
    resumed = search.resolve_config(parse(["--resume", str(tmp_path)]))
    assert resumed.input_size == (128, 96)
    check_worker_config(resumed, verbose=0)
    other = dataclasses.replace(resumed, input_size=(64, 48))
    with pytest.raises(
        ResumeError, match=r"input_size \(64, 48\) \(chief: \(128, 96\)\)"
    ):
        check_worker_config(other, verbose=0)


def test_resolve_derives_the_ancestor_once_and_checks_the_input_size():
    config = COCOSearchConfig(head_steps="1-3", input_size="128x96")
    resolved = config.resolve()
    assert (
        resolved
        is COCOSearchConfig(head_steps=(1, 3), input_size="128x96").resolve()
    )
    assert resolved.input_size == (128, 96)
    assert resolved.stride == 16
    assert list(resolved.ancestor.head_filters) == [16, 16, 16]
    assert resolved.search_space().head_steps == (1, 3)
    bad = COCOSearchConfig(ancestor="efficientnet-b0")  # stride 32, 64x48
    assert bad.derive().stride == 32
    with pytest.raises(ValueError, match="nearest valid sizes: 64x32, 64x64"):
        bad.resolve()


def test_a_bad_flag_value_is_one_line_naming_the_flag(tmp_path, capsys):
    argv = ["search", "--output", str(tmp_path / "o"), "--batch-size", "x"]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "--batch-size: batch_size must be a int; received 'x'" in error


def test_a_search_saved_before_typed_settings_resumes(tmp_path, capsys):
    output = tmp_path / "run"
    # One trial that fails at once (no training needed).
    flags = ["--max-model-size", "10", "--max-trials", "1", "--verbose", "0"]
    flags += ["--head-filter-choices", "8,16,32", "--head-steps", "1-3"]
    flags += ["--input-size", "128x96"]
    assert main(["search", "--output", str(output), *flags]) == 1
    # search_config.json as the code before typed settings wrote it: every
    # setting, the head genes and the input size as text.
    path = output / "search_config.json"
    old = json.loads(path.read_text())
    assert (old["head_filter_choices"], old["head_steps"]) == (
        [8, 16, 32],
        [1, 3],
    )
    assert old["input_size"] == [128, 96]
    old.update(
        head_filter_choices="8,16,32", head_steps="1-3", input_size="128x96"
    )
    path.write_text(json.dumps(old, indent=2))
    assert load_saved_config(output).head_steps == (1, 3)
    capsys.readouterr()
    code = main(["search", "--resume", str(output), "--max-trials", "2"])
    printed = capsys.readouterr()
    # Resumed (the Oracle's saved head genes equal the text's): it stops
    # as before, for want of a completed parent.
    assert code == 1, printed.err
    assert "cannot resume" not in printed.err
    assert "no completed trial to mutate" in printed.out
    assert json.loads(path.read_text())["head_steps"] == [1, 3]
    assert json.loads(path.read_text())["input_size"] == [128, 96]


def _walk(space, draws, seed=0):
    """Every child of `draws` mutations, each of a random earlier one."""
    import random

    from keras_evopose.search import mutate

    rng = random.Random(seed)
    pool = [space.ancestor]
    for _ in range(draws):
        child, _ = mutate(pool[rng.randrange(len(pool))], space, rng)
        pool.append(child)
    return pool[1:]


def _old_space(resolved):
    # What `search_space()` built before the cap: saved searches hold it.
    from keras_evopose.search import SearchSpace

    return SearchSpace(ancestor=resolved.ancestor, **resolved.head_genes())


def test_the_stride_cap_leaves_existing_searches_space_config_unchanged():
    import pathlib

    paper = (
        pathlib.Path(search.__file__).resolve().parents[2]
        / "configs"
        / "evopose2d_paper_search.yaml"
    )
    configs = [
        COCOSearchConfig(),  # the main job: `test`, no stride genes, 64x48
        COCOSearchConfig(head_steps="1-3", input_size="128x96"),
        COCOSearchConfig.from_dict(search.load_config_file(paper)),
        COCOSearchConfig(preset="small"),
        COCOSearchConfig(preset="small", input_size="128x96"),
    ]
    for config in configs:
        resolved = config.resolve()
        config_now = resolved.search_space().get_config()
        assert config_now == _old_space(resolved).get_config()
        assert config_now["max_output_stride"] == 32
    assert configs[2].resolve().input_size == (256, 192)
    assert configs[2].resolve().search_space().stride_stages == (5, 6, 7)


def test_stride_genes_stay_within_what_divides_the_input():
    from keras_evopose.models import EvoPose2D
    from keras_evopose.models.genotype import Genotype

    resolved = COCOSearchConfig(preset="small", input_size="64x48").resolve()
    space = resolved.search_space()
    assert space.stride_stages == (5, 6, 7)
    assert space.max_output_stride == 16  # 64 = 2**6, 48 = 16 * 3
    children = _walk(space, 300)
    strides = {Genotype.from_strings(c).output_stride for c in children}
    assert strides == {16}
    # The same walk without the cap reaches stride 32, which 48 is not a
    # multiple of: these children would fail as trials.
    uncapped = _walk(_old_space(resolved), 300)
    assert 32 in {Genotype.from_strings(c).output_stride for c in uncapped}
    for child in (children[-1], children[len(children) // 2]):
        model = EvoPose2D.from_preset(
            "small", genotype=child, image_shape=(64, 48, 3)
        )
        assert model.output_shape[1:3] == (32, 24)


def test_without_a_cap_children_still_reach_stride_32_at_256x192():
    from keras_evopose.models.genotype import Genotype

    resolved = COCOSearchConfig(preset="small").resolve()
    space = resolved.search_space()
    assert space == _old_space(resolved)
    strides = {
        Genotype.from_strings(c).output_stride for c in _walk(space, 300)
    }
    assert strides == {16, 32}


def test_an_ancestor_stride_the_input_does_not_allow_is_still_one_line():
    config = COCOSearchConfig(
        preset="small", ancestor="efficientnet-b0", input_size="64x48"
    )
    for call in (config.resolve, config.derive().search_space):
        with pytest.raises(ValueError, match="multiples of 32") as error:
            call()
        assert "\n" not in str(error.value)
    # Head genes are checked on construction, before the input size.
    assert dataclasses.replace(config, head_steps="1-3").derive().stride == 32
