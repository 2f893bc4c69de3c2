import json

from keras_evopose.cli import main


def test_export_int8_test_preset(tmp_path, capsys, coco_mini):
    output = tmp_path / "test_int8.tflite"
    status = main(
        [
            "export",
            "--preset",
            "test",
            "--int8",
            "--annotations",
            str(coco_mini["annotations"]),
            "--images",
            str(coco_mini["images"]),
            "--num-calibration-samples",
            "16",
            "--output",
            str(output),
            "--json",
        ]
    )
    assert status == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert output.exists() and report["bytes"] == output.stat().st_size
    assert set(report["tensor_dtypes"]) == {"int8", "int32"}
    assert report["num_compared_crops"] == 80
    heatmap_range = report["heatmap_max"] - report["heatmap_min"]
    assert 0 < report["mean_error"] <= report["max_error"] < heatmap_range


def test_export_usage_errors(tmp_path, capsys):
    status = main(["export", "--preset", "test", "--annotations", "a.json"])
    assert status == 2
    assert "--images" in capsys.readouterr().err
