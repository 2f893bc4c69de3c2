import json

from keras_evopose.cli import main


def test_export_int8_test_preset(tmp_path, capfd, coco_mini):
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
    captured = capfd.readouterr()  # file descriptors: native lines too
    report = json.loads(captured.out.strip().splitlines()[-1])
    # The converter's MLIR/calibration lines and LiteRT's delegate line
    # are filtered (--log-level info keeps them).
    for noise in ("fully_quantize", "XNNPACK", "I0000", "W0000"):
        assert noise not in captured.err, captured.err
    # One line as each stage starts (stderr, since --json owns stdout).
    stages = [line for line in captured.err.splitlines() if "export [" in line]
    assert len(stages) == 4, captured.err
    assert "calibrating on 16 crops" in stages[2]
    assert output.exists() and report["bytes"] == output.stat().st_size
    # The model's data contract travels beside the file.
    from keras_evopose.data import KeypointLayout
    from keras_evopose.export import LiteRTModel

    assert report["contract"] == str(tmp_path / "test_int8.contract.json")
    litert_model = LiteRTModel(output)
    assert litert_model.keypoint_layout == KeypointLayout.coco_person()
    assert litert_model.sample_options.input_size == (64, 48)
    assert set(report["tensor_dtypes"]) == {"int8", "int32"}
    assert report["num_compared_crops"] == 80
    heatmap_range = report["heatmap_max"] - report["heatmap_min"]
    assert 0 < report["mean_error"] <= report["max_error"] < heatmap_range

    # The written file is scored and drawn like a .keras model.
    status = main(
        [
            "evaluate", "--model", str(output),
            "--annotations", str(coco_mini["annotations"]),
            "--images", str(coco_mini["images"]), "--no-flip", "--json",
        ]
    )  # fmt: skip
    assert status == 0
    stats = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert 0 <= stats["ap"] <= 1
    status = main(
        [
            "predict", str(coco_mini["images"] / "000000000785.jpg"),
            "--boxes", "277,46,225,334", "--model", str(output),
            "--output", str(tmp_path / "pose.png"), "--json",
        ]
    )  # fmt: skip
    assert status == 0
    result = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert len(result["keypoints"][0]) == 17


def test_export_usage_errors(tmp_path, capsys):
    status = main(["export", "--preset", "test", "--annotations", "a.json"])
    assert status == 2
    assert "--images" in capsys.readouterr().err
