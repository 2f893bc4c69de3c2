"""An EvoPose2D backbone inside your own functional model, with your head.

`EvoPose2DBackbone` is a plain Keras functional model: call it on a tensor
like any layer. Here its features feed a custom head (bilinear upsampling +
one conv per level instead of the paper's transposed convs) that predicts
heatmaps, and the whole model trains with `HeatmapMSE` on the bundled COCO
images (or on random data with `--quick`). It prints the loss every ten
epochs and the COCO AP on those images before and after training.

    python examples/compose_backbone.py            # ~2 minutes on 2 cores
    python examples/compose_backbone.py --quick    # seconds
"""

import argparse
import pathlib

import keras
import numpy as np

import keras_evopose

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "coco_kpt_mini"


def build_model(preset, num_keypoints=17):
    backbone = keras_evopose.models.EvoPose2DBackbone.from_preset(preset)
    height, width, _ = backbone.input_shape[1:]
    images = keras.Input((height, width, 3), name="images")
    features = backbone(images)
    # A custom head: x2 bilinear upsampling + 3x3 conv, three times.
    x = features
    for level in range(3):
        x = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
        x = keras.layers.Conv2D(
            32, 3, padding="same", use_bias=False, name=f"up{level}_conv"
        )(x)
        x = keras.layers.BatchNormalization(name=f"up{level}_bn")(x)
        x = keras.layers.Activation("swish")(x)
    heatmaps = keras.layers.Conv2D(num_keypoints, 1, name="heatmaps")(x)
    return keras.Model(images, heatmaps, name="my_pose_model")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="test")
    parser.add_argument(
        "--epochs",
        type=int,
        default=100,
        help="passes over the 80 bundled people (100: ~2 min on 2 cores)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="random data, one epoch (CI)"
    )
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    model = build_model(args.preset)
    input_size = tuple(model.input_shape[1:3])
    heatmap_size = tuple(model.output_shape[1:3])
    print(
        f"{model.name}: {model.count_params():,} params, input {input_size}, "
        f"heatmaps {heatmap_size}"
    )
    if args.quick:
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras_evopose.losses.HeatmapMSE(),
        )
        rng = np.random.default_rng(0)
        x = rng.normal(size=(8, *input_size, 3)).astype("float32")
        y = rng.random((8, *heatmap_size, 17)).astype("float32")
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        print(f"final loss {history.history['loss'][-1]:.4g}")
        return model

    from keras_evopose.metrics import evaluate_coco

    annotations = DATA / "annotations" / "person_keypoints_val2017_mini.json"
    images = DATA / "val2017"
    batch_size = 16
    # No augmentation: on 43 images the point is to watch the model fit
    # them (loss down, joints found), not to generalize.
    dataset = keras_evopose.data.coco_keypoints_dataset(
        annotations,
        images,
        input_size=input_size,
        heatmap_size=heatmap_size,
        training=True,
        augment=False,
        batch_size=batch_size,
        seed=0,
        repeat=True,
    )
    num_people = len(
        keras_evopose.data.load_coco_instances(annotations, images)
    )
    steps = max(1, num_people // batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(1e-2, steps * args.epochs)
        ),
        loss=keras_evopose.losses.HeatmapMSE(),
    )
    ap_before = evaluate_coco(model, annotations, images)["ap"]

    def print_loss(epoch, logs):
        if (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1:4d}  loss {logs['loss']:.4g}", flush=True)

    history = model.fit(
        dataset,
        epochs=args.epochs,
        steps_per_epoch=steps,
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=print_loss)],
        verbose=0,
        shuffle=False,  # the dataset shuffles itself
    )
    ap_after = evaluate_coco(model, annotations, images)["ap"]
    losses = history.history["loss"]
    print(
        f"loss {losses[0]:.4g} -> {losses[-1]:.4g}; COCO AP on the same "
        f"{num_people} people {ap_before:.3f} -> {ap_after:.3f} (a fit of "
        "the training images, not a measure of generalization)"
    )
    return model


if __name__ == "__main__":
    main()
