"""`keras-evopose train` -> `evaluate` -> `predict` on the bundled images."""

import json

from keras_evopose.cli import main


def test_train_evaluate_predict(coco_mini, tmp_path, capsys):
    annotations = str(coco_mini["annotations"])
    images = str(coco_mini["images"])
    run = tmp_path / "run"
    status = main(
        [
            "train", "--preset", "test", "--annotations", annotations,
            "--images", images, "--epochs", "1", "--steps-per-epoch", "2",
            "--batch-size", "4", "--output", str(run), "--verbose", "0",
        ]
    )  # fmt: skip
    assert status == 0
    model_path = str(run / "best.keras")
    capsys.readouterr()

    status = main(
        [
            "evaluate", "--model", model_path, "--annotations", annotations,
            "--images", images, "--no-flip", "--json",
        ]
    )  # fmt: skip
    assert status == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(stats) >= {"ap", "ap50", "ar"}

    output = tmp_path / "pose.png"
    status = main(
        [
            "predict", str(coco_mini["images"] / "000000000785.jpg"),
            "--boxes", "277,46,225,334", "--model", model_path,
            "--output", str(output), "--json",
        ]
    )  # fmt: skip
    assert status == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(result["keypoints"]) == 1 and len(result["keypoints"][0]) == 17
    assert output.read_bytes()[:4] == b"\x89PNG"
    scores = [point[2] for point in result["keypoints"][0]]
    assert result["num_joints_drawn"] == sum(s > 0.2 for s in scores)

    # Nothing above --min-score: the summary says so instead of "1 people".
    status = main(
        [
            "predict", str(coco_mini["images"] / "000000000785.jpg"),
            "--boxes", "277,46,225,334", "--model", model_path,
            "--output", str(output), "--min-score", "1000",
        ]
    )  # fmt: skip
    assert status == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert "0 of 17 joints scored above --min-score 1000" in summary
    assert "no joint drawn" in summary

    status = main(
        [
            "predict", str(coco_mini["images"] / "000000000785.jpg"),
            "--boxes", "1,2,3", "--model", model_path,
        ]
    )  # fmt: skip
    assert status == 2
    assert "X,Y,W,H" in capsys.readouterr().err
