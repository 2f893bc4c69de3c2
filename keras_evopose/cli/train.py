"""`keras-evopose train`: train a preset on a COCO keypoints dataset."""

import math
import sys

from keras_evopose.cli import UsageError
from keras_evopose.cli import add_distribution_arguments
from keras_evopose.cli import check_file
from keras_evopose.cli import check_input_size
from keras_evopose.cli import check_preset
from keras_evopose.cli import fit_verbosity
from keras_evopose.cli import parse_size
from keras_evopose.cli import preset_stride


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a preset with the paper's recipe on COCO keypoints",
        description=(
            "Trains an EvoPose2D preset on a COCO keypoints JSON + images "
            "with the paper's recipe (Adam, learning rate scaled with the "
            "batch size, linear warm-up, cosine decay, target-weighted "
            "heatmap MSE) and saves a .keras model. With --val-annotations "
            "and --val-images, COCO AP is logged every epoch."
        ),
    )
    parser.add_argument("--preset", required=True, help="e.g. small, test")
    parser.add_argument(
        "--input-size",
        default=None,
        help="HEIGHTxWIDTH, multiples of the network's stride "
        "(default: the preset's)",
    )
    parser.add_argument("--annotations", required=True, help="COCO JSON")
    parser.add_argument("--images", required=True, help="image folder")
    parser.add_argument("--val-annotations", default=None)
    parser.add_argument("--val-images", default=None)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--warmup-epochs", type=float, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="default: instances / batch size",
    )
    parser.add_argument("--base-learning-rate", type=float, default=2.5e-4)
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=1e-5,
        help="L2 on every conv kernel but the depthwise ones, as the paper "
        "(default 1e-5; 0 turns it off)",
    )
    parser.add_argument("--half-body-probability", type=float, default=0.0)
    parser.add_argument(
        "--no-augment",
        action="store_true",
        help="no scale/rotation/flip/half-body augmentation (the bundled "
        "43-image demo: a small net then fits its images in minutes)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="model.keras")
    parser.add_argument(
        "--verbose",
        type=int,
        default=None,
        help="0 silent, 1 progress bar, 2 one line per epoch "
        "(default: 1 on a terminal, else 2)",
    )
    add_distribution_arguments(parser)
    parser.set_defaults(func=run)


def non_finite_weights(model):
    """Paths of the model's variables that hold NaN or inf."""
    import numpy as np

    return [
        variable.path
        for variable in model.variables
        if not np.all(np.isfinite(np.asarray(variable)))
    ]


def run(args):
    import keras

    from keras_evopose.callbacks import COCOEvaluation
    from keras_evopose.data import coco_keypoints_dataset
    from keras_evopose.data import load_coco_instances
    from keras_evopose.distribute import average_replica_statistics
    from keras_evopose.distribute import distribution_scope
    from keras_evopose.losses import HeatmapMSE
    from keras_evopose.models import EvoPose2D
    from keras_evopose.training import evopose2d_optimizer
    from keras_evopose.training import evopose2d_regularizer

    check_preset(args.preset)
    if (args.val_annotations is None) != (args.val_images is None):
        raise UsageError("give both --val-annotations and --val-images")
    if not args.output.endswith(".keras"):
        raise UsageError(f"--output must end in .keras; got {args.output}")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if args.weight_decay < 0:
        raise UsageError(
            f"--weight-decay must be >= 0; got {args.weight_decay}"
        )
    check_file(args.annotations, "--annotations")
    check_file(args.images, "--images", kind="folder")
    overrides = {}
    if args.input_size:
        height, width = check_input_size(
            parse_size(args.input_size, "--input-size"),
            preset_stride(args.preset),
        )
        overrides["image_shape"] = (height, width, 3)
    keras.utils.set_random_seed(args.seed)
    instances = load_coco_instances(args.annotations, args.images)
    # Build, compile and fit inside the strategy (--tpu / --mirrored).
    with distribution_scope(tpu=args.tpu, mirrored=args.mirrored):
        model = EvoPose2D.from_preset(
            args.preset,
            num_keypoints=instances.layout.num_keypoints,
            kernel_regularizer=evopose2d_regularizer(args.weight_decay),
            **overrides,
        )
        steps = args.steps_per_epoch or math.ceil(
            len(instances) / args.batch_size
        )
        dataset = coco_keypoints_dataset(
            args.annotations,
            args.images,
            input_size=tuple(model.input_shape[1:3]),
            heatmap_size=tuple(model.output_shape[1:3]),
            training=True,
            batch_size=args.batch_size,
            seed=args.seed,
            repeat=True,
            augment=not args.no_augment,
            half_body_probability=args.half_body_probability,
        )
        model.compile(
            optimizer=evopose2d_optimizer(
                args.batch_size,
                steps,
                epochs=args.epochs,
                warmup_epochs=min(args.warmup_epochs, args.epochs - 1),
                base_learning_rate=args.base_learning_rate,
            ),
            loss=HeatmapMSE(),
        )
        # Stop at the first non-finite loss rather than train on garbage.
        callbacks = [keras.callbacks.TerminateOnNaN()]
        if args.val_annotations:
            callbacks.append(
                COCOEvaluation(args.val_annotations, args.val_images)
            )
        history = model.fit(
            dataset,
            epochs=args.epochs,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=fit_verbosity() if args.verbose is None else args.verbose,
            shuffle=False,  # the dataset shuffles (Keras warns otherwise)
        )
    # MirroredStrategy leaves per-replica BN statistics (no-op otherwise).
    average_replica_statistics(model)
    broken = non_finite_weights(model)
    losses = history.history.get("loss", [])
    if broken or not all(math.isfinite(loss) for loss in losses):
        print(
            f"error: training diverged (loss per epoch: {losses}; "
            f"{len(broken)} weight tensors hold NaN/inf, e.g. "
            f"{broken[:3]}); {args.output} was NOT saved. Lower "
            "--base-learning-rate or check the data with "
            "`keras-evopose check-data`.",
            file=sys.stderr,
        )
        return 1
    model.save(args.output)
    print(f"saved {args.output}")
    return 0
