import json

from keras_evopose.cli import main


def test_info_json(capsys):
    assert main(["info", "test", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["input_size"] == [64, 48]
    assert info["heatmap_size"] == [32, 24]
    assert info["genotype"][0] == "ir_r1_k3_s1_e1_c8_se0.25"
    assert info["params"] == 16921
    assert info["flops"] > 0


def test_info_text_shows_the_paper_numbers(capsys):
    assert main(["info", "extra_small"]) == 0
    out = capsys.readouterr().out
    assert "2,531,199" in out and "(paper 2.53M)" in out
    assert "0.462G" in out and "(paper 0.47G)" in out


def test_unknown_preset_is_one_clear_line(capsys):
    assert main(["info", "huge"]) == 2
    err = capsys.readouterr().err
    assert "Unknown preset 'huge'" in err and "Traceback" not in err
