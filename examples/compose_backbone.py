"""An EvoPose2D backbone inside your own functional model, with your head.

`EvoPose2DBackbone` is a plain Keras functional model: call it on a tensor
like any layer. Here its features feed a custom head (bilinear upsampling +
one conv per level instead of the paper's transposed convs) that predicts
heatmaps, and the whole model trains with `HeatmapMSE` on the bundled COCO
images (or on random data with `--quick`).

    python examples/compose_backbone.py --quick
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
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="random data, one epoch (CI)"
    )
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    model = build_model(args.preset)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras_evopose.losses.HeatmapMSE(),
    )
    input_size = tuple(model.input_shape[1:3])
    heatmap_size = tuple(model.output_shape[1:3])
    print(
        f"{model.name}: {model.count_params():,} params, input {input_size}, "
        f"heatmaps {heatmap_size}"
    )
    if args.quick:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(8, *input_size, 3)).astype("float32")
        y = rng.random((8, *heatmap_size, 17)).astype("float32")
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    else:
        dataset = keras_evopose.data.coco_keypoints_dataset(
            DATA / "annotations" / "person_keypoints_val2017_mini.json",
            DATA / "val2017",
            input_size=input_size,
            heatmap_size=heatmap_size,
            training=True,
            batch_size=16,
            seed=0,
        )
        history = model.fit(dataset, epochs=args.epochs, verbose=2)
    print(f"final loss {history.history['loss'][-1]:.4g}")
    return model


if __name__ == "__main__":
    main()
