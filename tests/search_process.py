"""One search process for the distributed and kill tests (not collected).

Runs an `EvolutionTuner` on the `test` preset at 32x24 with synthetic data.
A probe callback appends, per trial, the tuner id and the sum of the stem
kernel at the start of training (after the weight transfer) and after every
epoch to `trial_<id>/probe.jsonl`, so a test can tell who trained what and
where a child's weights came from. keras-tuner's distributed mode is chosen
by the KERASTUNER_* environment variables, as for any keras-tuner search.
"""

import argparse
import json
import os
import time

import keras
import keras_tuner
import numpy as np

from keras_evopose.search import EvolutionOracle
from keras_evopose.search import EvolutionTuner
from keras_evopose.search import SearchSpace


class Probe(keras.callbacks.Callback):
    def __init__(self, path, tuner_id, epoch_sleep):
        super().__init__()
        self.path = path
        self.tuner_id = tuner_id
        self.epoch_sleep = epoch_sleep

    def _write(self, event):
        stem = next(
            w for w in self.model.weights if w.path.endswith("stem_conv/kernel")
        )
        record = {
            "event": event,
            "tuner_id": self.tuner_id,
            "stem": float(np.sum(keras.ops.convert_to_numpy(stem))),
        }
        with open(self.path, "a") as file:
            file.write(json.dumps(record) + "\n")

    def on_train_begin(self, logs=None):
        self._write("begin")

    def on_epoch_end(self, epoch, logs=None):
        self._write("epoch")
        time.sleep(self.epoch_sleep)


class ProbeTuner(EvolutionTuner):
    epoch_sleep = 0.0

    def run_trial(self, trial, *args, **kwargs):
        path = os.path.join(self.get_trial_dir(trial.trial_id), "probe.jsonl")
        kwargs["callbacks"] = [Probe(path, self.tuner_id, self.epoch_sleep)]
        return super().run_trial(trial, *args, **kwargs)


class SyntheticData(keras.utils.PyDataset):
    """Random images and heatmaps of the requested size, fixed by seed."""

    def __init__(self, heatmap_size, num_batches=2, batch_size=8, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.batches = [
            (
                rng.normal(size=(batch_size, 32, 24, 3)).astype("float32"),
                rng.random((batch_size, *heatmap_size, 17)).astype("float32"),
            )
            for _ in range(num_batches)
        ]

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--directory", required=True)
    parser.add_argument("--max-trials", type=int, default=5)
    parser.add_argument("--epoch-sleep", type=float, default=0.0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    oracle = EvolutionOracle(
        objective=[
            keras_tuner.Objective("val_loss", "min"),
            keras_tuner.Objective("num_params", "min"),
        ],
        search_space=SearchSpace.from_preset("test"),
        max_trials=args.max_trials,
        seed=3,
    )
    tuner = ProbeTuner(
        oracle,
        preset="test",
        model_kwargs={"image_shape": [32, 24, 3]},
        ancestor_epochs=2,
        child_epochs=1,
        directory=args.directory,
        project_name="search",
        # Only the chief starts the shared project afresh: a worker that
        # overwrote it would delete trials the others are running.
        overwrite=not args.resume
        and "chief" in os.environ.get("KERASTUNER_TUNER_ID", "chief"),
    )
    tuner.epoch_sleep = args.epoch_sleep
    tuner.search(
        SyntheticData,
        validation_data=lambda size: SyntheticData(size, 1, seed=1),
        verbose=0,
    )


if __name__ == "__main__":
    main()
