"""`keras-evopose evaluate`: COCO keypoint AP of a model (pycocotools)."""

import json

from keras_evopose.cli import UsageError


def add_model_arguments(parser):
    """`--model PATH.keras` or `--preset NAME [--weights PATH]`."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--model", help="a saved .keras model")
    group.add_argument(
        "--preset", help="build a preset (random weights unless --weights)"
    )
    parser.add_argument(
        "--weights", default=None, help=".weights.h5 file for --preset"
    )


def load_model(args):
    """The model named by `add_model_arguments`' flags."""
    import keras

    import keras_evopose.models  # noqa: F401 (registers the classes)

    if args.model:
        return keras.saving.load_model(args.model, compile=False)
    from keras_evopose.models import EvoPose2D

    model = EvoPose2D.from_preset(args.preset)
    if args.weights:
        model.load_weights(args.weights)
    elif args.weights is None:
        print(
            f"note: preset {args.preset!r} has random weights "
            "(pass --weights or --model for a trained one)"
        )
    return model


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="COCO keypoint AP/AR of a model on a COCO JSON + images",
        description=(
            "Crops every person box (ground truth, or --detections), "
            "predicts heatmaps (with the flip test unless --no-flip), "
            "decodes them and prints pycocotools' keypoint AP/AR table."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("--annotations", required=True, help="COCO JSON")
    parser.add_argument("--images", required=True, help="image folder")
    parser.add_argument(
        "--detections", default=None, help="COCO results JSON of person boxes"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--no-flip", action="store_true", help="disable the flip test"
    )
    parser.add_argument(
        "--refinement",
        default="quarter_offset",
        choices=["quarter_offset", "dark", "none"],
    )
    parser.add_argument(
        "--oks-nms",
        type=float,
        default=None,
        metavar="THRESHOLD",
        help="OKS non-maximum suppression of the results (HRNet: 0.9)",
    )
    parser.add_argument(
        "--results", default=None, help="write the results JSON here"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object"
    )
    parser.set_defaults(func=run)


def run(args):
    from keras_evopose.cli.check_data import format_ap_table
    from keras_evopose.metrics import evaluate_coco

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1; got {args.batch_size}")
    model = load_model(args)
    stats = evaluate_coco(
        model,
        args.annotations,
        args.images,
        detections=args.detections,
        batch_size=args.batch_size,
        flip_test=not args.no_flip,
        refinement=args.refinement,
        results_path=args.results,
        oks_nms_threshold=args.oks_nms,
    )
    if args.json:
        print(json.dumps(stats))
        return 0
    boxes = "detection boxes" if args.detections else "ground-truth boxes"
    print(format_ap_table({boxes: stats}))
    print(
        "  ar_medium {ar_medium:.4f}  ar_large {ar_large:.4f}".format(**stats)
    )
    return 0
