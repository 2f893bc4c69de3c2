"""A complete EvoPose2D neuroevolution search in plain keras-tuner code.

Trial 0 trains the ancestor; each later trial mutates one gene of one of
the best parents so far, inherits its weights and trains briefly. The data
are functions of the heatmap size (a stride mutation may change it).
`--quick` uses random data at 32x32 (CI); otherwise the bundled COCO images.

    python examples/search_with_keras_tuner.py --quick
"""

import argparse
import pathlib
import tempfile

import keras
import keras_tuner
import numpy as np

import keras_evopose

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "coco_kpt_mini"


class RandomData(keras.utils.PyDataset):
    """Two batches of random images and heatmaps (for --quick)."""

    def __init__(self, heatmap_size):
        super().__init__()
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(2, 4, 32, 32, 3)).astype("float32")
        self.y = rng.random((2, 4, *heatmap_size, 17)).astype("float32")

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return self.x[index], self.y[index]


def coco_data(training):
    def dataset(heatmap_size):
        return keras_evopose.data.coco_keypoints_dataset(
            DATA / "annotations" / "person_keypoints_val2017_mini.json",
            DATA / "val2017",
            input_size=(64, 48),
            heatmap_size=heatmap_size,
            training=training,
            batch_size=16,
            seed=0,
        )

    return dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--directory", default=tempfile.mkdtemp())
    args = parser.parse_args(argv)

    oracle = keras_evopose.search.EvolutionOracle(
        objective=[
            keras_tuner.Objective("val_loss", "min"),
            keras_tuner.Objective("num_params", "min"),
        ],
        search_space=keras_evopose.search.SearchSpace.from_preset("test"),
        max_trials=2 if args.quick else 8,
        seed=1,
    )
    tuner = keras_evopose.search.EvolutionTuner(
        oracle,
        preset="test",
        model_kwargs={"image_shape": [32, 32, 3]} if args.quick else None,
        ancestor_epochs=1 if args.quick else 6,
        child_epochs=1 if args.quick else 2,
        directory=args.directory,
        project_name="evopose",
    )
    if args.quick:
        train_data, val_data = RandomData, RandomData
    else:
        train_data, val_data = coco_data(True), coco_data(False)
    tuner.search(train_data, validation_data=val_data, verbose=0)

    for trial in oracle.pareto_front():
        values = trial.hyperparameters.values
        val_loss, num_params = oracle.objective_values(trial)
        print(
            f"trial {trial.trial_id} ({values['mutation']}, parent "
            f"{values['parent_trial_id'] or '-'}): val_loss {val_loss:.4g}, "
            f"{num_params:,.0f} params, fitness {trial.score:.4g}"
        )
    return oracle


if __name__ == "__main__":
    main()
