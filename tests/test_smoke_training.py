"""Smoke training: the `test` preset overfits the bundled COCO images."""

import copy

import keras
import pytest

from keras_evopose.callbacks import COCOEvaluation
from keras_evopose.data import coco_keypoints_dataset
from keras_evopose.losses import HeatmapMSE
from keras_evopose.metrics import evaluate_coco
from keras_evopose.models import EvoPose2D
from keras_evopose.training import evopose2d_optimizer

STEPS_PER_EPOCH = 200
EPOCHS = 3


@pytest.mark.slow
def test_test_preset_overfits_bundled_images(coco_mini):
    annotations, images = coco_mini["annotations"], coco_mini["images"]
    model = EvoPose2D.from_preset("test", stochastic_depth_rate=0.0)
    untrained = evaluate_coco(model, annotations, images, flip_test=False)
    # No augmentation and cached crops: this checks that the model, the
    # targets, the loss and the decoder agree, in ~30 s on 2 cores.
    train = (
        coco_keypoints_dataset(
            annotations, images, input_size=(64, 48),
            heatmap_size=(32, 24), sigma=2.0, batch_size=16,
            drop_remainder=True,
        )
        .cache()
        .shuffle(8, seed=0)
        .repeat()
    )  # fmt: skip
    model.compile(
        optimizer=evopose2d_optimizer(
            16, STEPS_PER_EPOCH, epochs=EPOCHS, warmup_epochs=0,
            base_learning_rate=2e-2,
        ),
        loss=HeatmapMSE(),
    )  # fmt: skip
    evaluation = COCOEvaluation(annotations, images, frequency=EPOCHS)
    history = model.fit(
        train,
        epochs=EPOCHS,
        steps_per_epoch=STEPS_PER_EPOCH,
        callbacks=[copy.deepcopy(evaluation)],
        shuffle=False,  # the dataset shuffles; Keras warns otherwise
        verbose=0,
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0], losses
    trained_ap = history.history["val_ap"][-1]
    assert trained_ap > untrained["ap"] + 0.08, (untrained, trained_ap)
    assert len(history.history["val_ap"]) == 1  # frequency respected


def test_coco_evaluation_callback_survives_deepcopy(coco_mini):
    callback = COCOEvaluation(coco_mini["annotations"], coco_mini["images"])
    clone = copy.deepcopy(callback)
    assert clone.annotations == str(coco_mini["annotations"])
    assert isinstance(clone, keras.callbacks.Callback)
    with pytest.raises(ValueError, match="frequency"):
        COCOEvaluation("a.json", "images", frequency=0)
