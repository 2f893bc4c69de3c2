import json

import numpy as np
import pytest

from keras_evopose.data import KeypointLayout
from keras_evopose.data import SampleOptions
from keras_evopose.data.keypoint_layout import KeypointLayoutError
from keras_evopose.inference import model_contract
from keras_evopose.inference.model_contract import layout_for_data
from keras_evopose.metrics import evaluate_coco


class FakeModel:
    """A heatmap "model" with a contract: every heatmap peaks at `peak`
    in its centre pixel."""

    input_shape = (None, 64, 48, 3)
    output_shape = (None, 32, 24, 17)

    def __init__(self, peak, sample_options=None, keypoint_layout=None):
        self.peak = peak
        self.sample_options = sample_options
        self.keypoint_layout = keypoint_layout

    def predict_on_batch(self, images):
        heatmaps = np.zeros((len(images), 32, 24, 17), "float32")
        heatmaps[:, 16, 12, :] = self.peak
        return heatmaps


def test_the_models_contract_with_explicit_overrides():
    layout = KeypointLayout.from_names(["nose", "l_eye", "r_eye"])
    options = SampleOptions((64, 48), (32, 24), padding=1.5, fill="mean")
    model = FakeModel(1.0, options, layout)
    model.output_shape = (None, 32, 24, 3)
    assert model_contract(model) == (options, layout)
    got, _ = model_contract(model, padding=1.25, fill=None)
    assert got == options.replace(padding=1.25)
    other = SampleOptions((64, 48), (32, 24))
    assert model_contract(model, options=other)[0] == other
    with pytest.raises(KeypointLayoutError, match="3 heatmaps but the"):
        model_contract(model, keypoint_layout=KeypointLayout.coco_person())


def test_a_model_without_a_contract_gets_todays_defaults():
    options, layout = model_contract(FakeModel(1.0))
    assert options == SampleOptions((64, 48), (32, 24))
    assert layout == KeypointLayout.coco_person()


def test_layout_for_data_takes_the_datas_sigmas_and_checks_counts():
    data = KeypointLayout.from_names(["nose", "neck"], oks_sigmas=[0.1, 0.2])
    model = KeypointLayout.from_names(["nose", "neck"])
    assert layout_for_data(model, data, "x.json").oks_sigmas == (0.1, 0.2)
    assert layout_for_data(None, data, "x.json") is data
    with pytest.raises(KeypointLayoutError, match="x.json has 17"):
        layout_for_data(model, KeypointLayout.coco_person(), "x.json")


def test_evaluation_decodes_with_the_models_heatmap_peak(coco_mini, tmp_path):
    # Scores are heatmap max / heatmap_peak: a model trained with peak
    # 100 scores its joints 1.0 only if evaluation reads its contract.
    options = SampleOptions((64, 48), (32, 24), heatmap_peak=100.0)
    results = tmp_path / "results.json"
    evaluate_coco(
        FakeModel(100.0, options),
        coco_mini["annotations"],
        coco_mini["images"],
        flip_test=False,
        results_path=results,
    )
    scores = {round(r["score"], 4) for r in json.loads(results.read_text())}
    assert scores == {1.0}
    # An explicit argument still overrides the contract.
    evaluate_coco(
        FakeModel(100.0, options),
        coco_mini["annotations"],
        coco_mini["images"],
        flip_test=False,
        heatmap_peak=200.0,
        results_path=results,
    )
    scores = {round(r["score"], 4) for r in json.loads(results.read_text())}
    assert scores == {0.5}


def test_evaluation_refuses_a_flip_that_would_mislabel(coco_mini):
    category = json.loads(coco_mini["annotations"].read_text())["categories"]
    layout = KeypointLayout.from_category({**category[0], "flip_pairs": []})
    with pytest.raises(KeypointLayoutError, match="left_eye/right_eye"):
        evaluate_coco(
            FakeModel(1.0, keypoint_layout=layout),
            coco_mini["annotations"],
            coco_mini["images"],
        )
