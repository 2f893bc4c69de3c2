import json

from keras_evopose.cli import main


def test_check_data_json_report(coco_mini, capsys):
    status = main(
        [
            "check-data",
            "--annotations", str(coco_mini["annotations"]),
            "--images", str(coco_mini["images"]),
            "--input-size", "64x48",
            "--heatmap-size", "32x24",
            "--detections", str(coco_mini["detections"]),
            "--json",
        ]
    )  # fmt: skip
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["instances"] == 80
    assert report["skipped"] == {
        "crowd annotation": 1,
        "no labelled keypoints": 51,
    }
    assert report["detections"]["boxes_used"] == 118
    assert report["unreadable_images"] == {}
    assert report["images_decoded"] == 36
    # 5 labelled joints lie beyond their padded ground-truth box.
    assert report["out_of_crop_joints"]["outside_crop"] == 5
    assert report["out_of_crop_joints"]["outside_box"] == 5
    assert report["out_of_crop_targets"] == "border"
    assert report["ceiling_ap"]["ground_truth_boxes"]["ap"] >= 0.97
    assert report["ceiling_ap"]["detection_boxes"]["ap"] >= 0.97


def test_check_data_user_errors(coco_mini, capsys, tmp_path):
    base = ["check-data", "--images", str(coco_mini["images"])]
    status = main(
        base + ["--annotations", str(coco_mini["annotations"]),
                "--input-size", "256"]
    )  # fmt: skip
    assert status == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err
    assert main(base + ["--annotations", str(tmp_path / "no.json")]) == 2
    assert "--annotations" in (err := capsys.readouterr().err)
    assert "no such file" in err


def test_check_data_with_a_models_contract(coco_mini, capsys, tmp_path):
    from keras_evopose.models import EvoPose2D

    model = EvoPose2D.from_preset(
        "test", sample_options={"padding": 2.0, "out_of_crop": "ignore"}
    )
    model.save(tmp_path / "model.keras")
    data = [
        "--annotations", str(coco_mini["annotations"]),
        "--images", str(coco_mini["images"]),
    ]  # fmt: skip
    status = main(
        ["check-data", "--model", str(tmp_path / "model.keras"), *data]
        + ["--json"]
    )
    assert status == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["sample_options"] == model.sample_options.get_config()
    assert report["out_of_crop_targets"] == "ignore"
    # A box padded by 2 holds the 5 joints a 1.25 padding misses.
    assert report["out_of_crop_joints"]["outside_box"] == 0
    status = main(
        ["check-data", "--model", str(tmp_path / "model.keras"), *data]
        + ["--heatmap-size", "16x12"]
    )
    assert status == 2
    assert "--heatmap-size is the model's" in capsys.readouterr().err
