import json

import numpy as np
import pytest

from keras_evopose.training import TrainConfig
from keras_evopose.training.network import NetworkError
from keras_evopose.training.network import build_network


def _search_folder(folder, layout):
    """A search folder as `keras-evopose search` leaves it: settings,
    pareto.json and two trials' checkpoints (trial 01 the best)."""
    from keras_evopose.models import EvoPose2D
    from keras_evopose.models import presets
    from keras_evopose.search import COCOSearchConfig

    (folder / "tuner").mkdir(parents=True)
    config = COCOSearchConfig(output=str(folder), preset="test")
    (folder / "search_config.json").write_text(json.dumps(config.to_dict()))
    genotype = presets.preset_arguments("test", "backbone")["genotype"]
    records, models = [], {}
    for trial_id, head in (("00", [8, 8]), ("01", [16, 16])):
        model = EvoPose2D.from_preset(
            "test", head_filters=head, keypoint_layout=layout
        )
        for variable in model.weights:  # Recognisable trained weights.
            variable.assign(np.full(variable.shape, float(trial_id) + 0.5))
        trial = folder / "tuner" / f"trial_{trial_id}"
        trial.mkdir()
        model.save_weights(trial / "checkpoint.weights.h5")
        models[trial_id] = model
        strings = list(genotype) + [f"up_c{width}" for width in head]
        records.append({"trial_id": trial_id, "genotype": strings})
    results = {"trials": records, "best": records[1]}
    (folder / "pareto.json").write_text(json.dumps(results))
    return models


def test_from_search_starts_from_the_trial_weights(coco_mini, tmp_path):
    from keras_evopose.data import load_coco_instances

    layout = load_coco_instances(
        coco_mini["annotations"], coco_mini["images"]
    ).layout
    trained = _search_folder(tmp_path / "search", layout)
    data = dict(
        annotations=str(coco_mini["annotations"]),
        images=str(coco_mini["images"]),
        output=str(tmp_path / "run"),
        from_search=str(tmp_path / "search"),
    )
    for trial, expected in ((None, "01"), ("00", "00")):
        model, report = build_network(TrainConfig(**data, trial=trial), layout)
        # The same network: every weight as it was.
        assert report is None or {e.status for e in report.entries} == {
            "copied"
        }
        assert model.head_filters == trained[expected].head_filters
        for got, want in zip(model.weights, trained[expected].weights):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    with pytest.raises(NetworkError, match="no completed trial '07'"):
        build_network(TrainConfig(**data, trial="07"), layout)
    # At another input size every weight still carries over.
    model, report = build_network(
        TrainConfig(**data, input_size=(128, 96)), layout
    )
    assert tuple(model.input_shape[1:3]) == (128, 96)
    for got, want in zip(model.weights, trained["01"].weights):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
