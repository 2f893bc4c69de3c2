import json

import pytest

from keras_evopose.cli import main

# Adam steps that take the `test` preset from AP 0 to a measurable AP on
# the bundled val people (it overfits them).
TRAINING_STEPS = 100


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


@pytest.mark.slow
def test_export_onnx_of_a_trained_network(tmp_path, capfd, coco_mini):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    import keras

    from keras_evopose.data import coco_keypoints_dataset
    from keras_evopose.losses import HeatmapMSE
    from keras_evopose.metrics import evaluate_coco
    from keras_evopose.models import EvoPose2D

    annotations, images = coco_mini["annotations"], coco_mini["images"]
    # A network that has learned something (AP > 0 on the val people it
    # overfits), so that the AP comparison below can fail.
    model = EvoPose2D.from_preset("test", stochastic_depth_rate=0.0)
    train = (
        coco_keypoints_dataset(
            annotations, images, input_size=(64, 48),
            heatmap_size=(32, 24), sigma=2.0, batch_size=16,
            drop_remainder=True,
        )
        .cache()
        .repeat()
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(2e-2), loss=HeatmapMSE())
    model.fit(train, steps_per_epoch=TRAINING_STEPS, shuffle=False, verbose=0)
    model.save(tmp_path / "trained.keras")

    output = tmp_path / "trained.onnx"
    status = main(
        [
            "export", "--model", str(tmp_path / "trained.keras"),
            "--format", "onnx", "--annotations", str(annotations),
            "--images", str(images), "--output", str(output), "--json",
        ]
    )  # fmt: skip
    assert status == 0
    captured = capfd.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    stages = [line for line in captured.err.splitlines() if "export [" in line]
    assert len(stages) == 4 and "ONNX" in stages[2], captured.err
    for noise in ("FutureWarning", "I0000", "W0000", "tf2onnx"):
        assert noise not in captured.err, captured.err
    assert report["format"] == "onnx" and report["num_compared_crops"] == 80
    assert report["contract"] == str(tmp_path / "trained.contract.json")

    # Heatmaps of ONNX Runtime vs Keras on the 80 crops: float rounding
    # apart, relative to their range.
    scale = report["heatmap_max"] - report["heatmap_min"]
    assert 0 < report["max_error"] <= 1e-5 * scale, report

    # COCO AP of the file through the CLI vs Keras'. No flip test: it
    # doubles the evaluation time, and this early in training its AP
    # swings (0.0017 after 150 steps, measured).
    keras_ap = evaluate_coco(model, annotations, images, flip_test=False)["ap"]
    status = main(
        [
            "evaluate", "--model", str(output),
            "--annotations", str(annotations), "--images", str(images),
            "--no-flip", "--json",
        ]
    )  # fmt: skip
    assert status == 0
    onnx_ap = json.loads(capfd.readouterr().out.strip().splitlines()[-1])["ap"]
    # Learned something: untrained it is 0.0, after these steps 0.017
    # (measured; the margin allows for another TensorFlow build).
    assert keras_ap > 0.005, keras_ap
    assert abs(onnx_ap - keras_ap) <= 0.005, (onnx_ap, keras_ap)

    status = main(
        [
            "predict", str(images / "000000000785.jpg"),
            "--boxes", "277,46,225,334", "--model", str(output),
            "--output", str(tmp_path / "pose.png"), "--json",
        ]
    )  # fmt: skip
    assert status == 0
    result = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert len(result["keypoints"][0]) == 17


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--int8"], "--int8 is a LiteRT quantization"),
        (["--float16"], "--float16 is a LiteRT quantization"),
        (["--output", "x.tflite"], "end the name with .onnx"),
    ],
)
def test_export_onnx_usage_errors(arguments, message, capsys):
    status = main(
        ["export", "--preset", "test", "--format", "onnx", *arguments]
    )
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error, error


def test_missing_onnx_packages_is_one_line(tmp_path, capsys, monkeypatch):
    from keras_evopose.export import onnx

    monkeypatch.setattr(onnx, "missing_onnx_packages", lambda: ["tf2onnx"])
    status = main(["export", "--preset", "test", "--format", "onnx"])
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith('needs tf2onnx: pip install -e ".[onnx]"'), error
    (tmp_path / "model.onnx").write_bytes(b"")
    status = main(
        [
            "evaluate", "--model", str(tmp_path / "model.onnx"),
            "--annotations", "a.json", "--images", str(tmp_path),
        ]
    )  # fmt: skip
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and '".[onnx]"' in error, error
