"""`keras-evopose predict IMAGE --boxes ...`: draw predicted skeletons."""

import json

from keras_evopose.cli import UsageError


def parse_box(text):
    try:
        values = [float(value) for value in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0:
        raise UsageError(
            f"--boxes takes X,Y,W,H with W, H > 0 (COCO boxes); got {text!r}"
        )
    return values


def add_parser(subparsers):
    from keras_evopose.cli.evaluate import add_model_arguments

    parser = subparsers.add_parser(
        "predict",
        help="predict keypoints for person boxes and draw them on the image",
        description=(
            "Top-down prediction for the given person boxes; writes a PNG "
            "with the boxes, keypoints and skeleton drawn."
        ),
    )
    parser.add_argument("image", help="JPEG or PNG image")
    parser.add_argument(
        "--boxes",
        nargs="+",
        required=True,
        metavar="X,Y,W,H",
        help="person boxes in pixels (COCO [x, y, w, h])",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--annotations",
        default=None,
        help="COCO keypoints JSON giving keypoint names and skeleton "
        "(default: COCO person)",
    )
    parser.add_argument("--output", default=None, help="PNG path")
    parser.add_argument(
        "--min-score",
        type=float,
        default=0.2,
        help="draw joints with a score above this",
    )
    parser.add_argument(
        "--json", action="store_true", help="also print keypoints as JSON"
    )
    parser.set_defaults(func=run)


def draw(image_path, boxes, keypoints, layout, output, min_score=0.2):
    """Writes a PNG of the image with boxes, joints and limbs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    with tf.io.gfile.GFile(str(image_path), "rb") as handle:
        image = tf.io.decode_image(
            handle.read(), channels=3, expand_animations=False
        ).numpy()
    height, width = image.shape[:2]
    figure = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    axes = figure.add_axes([0, 0, 1, 1])
    axes.imshow(image)
    axes.set_axis_off()
    colours = plt.get_cmap("tab10")
    for index, (box, points) in enumerate(zip(boxes, keypoints)):
        colour = colours(index % 10)
        axes.add_patch(
            plt.Rectangle(
                box[:2], box[2], box[3], fill=False, color=colour, lw=1
            )
        )
        shown = points[:, 2] > min_score
        for a, b in layout.skeleton:
            if shown[a] and shown[b]:
                axes.plot(
                    points[[a, b], 0], points[[a, b], 1], color=colour, lw=2
                )
        axes.scatter(
            points[shown, 0], points[shown, 1], s=12, color="white",
            edgecolors=np.array([colour]), zorder=3,
        )  # fmt: skip
    figure.savefig(output, dpi=100)
    plt.close(figure)


def run(args):
    import pathlib

    from keras_evopose.cli.evaluate import load_model
    from keras_evopose.data import KeypointLayout
    from keras_evopose.data.coco_instances import read_json
    from keras_evopose.metrics import predict_keypoints

    if not pathlib.Path(args.image).exists():
        raise FileNotFoundError(f"No such image: {args.image}")
    boxes = [parse_box(text) for text in args.boxes]
    if args.annotations:
        categories = [
            c for c in read_json(args.annotations)["categories"]
            if c.get("keypoints")
        ]  # fmt: skip
        if not categories:
            raise ValueError(f"{args.annotations} has no keypoint category")
        layout = KeypointLayout.from_category(categories[0])
    else:
        layout = KeypointLayout.coco_person()
    model = load_model(args)
    if model.output_shape[-1] != layout.num_keypoints:
        raise ValueError(
            f"the model predicts {model.output_shape[-1]} keypoints but the "
            f"layout has {layout.num_keypoints}; pass --annotations of the "
            "model's dataset"
        )
    keypoints = predict_keypoints(model, args.image, boxes, layout=layout)
    output = args.output or str(
        pathlib.Path(args.image).with_suffix("").name + "_pose.png"
    )
    draw(args.image, boxes, keypoints, layout, output, args.min_score)
    if args.json:
        print(
            json.dumps(
                {
                    "output": output,
                    "keypoints": [
                        [
                            [round(float(v), 2) for v in point]
                            for point in person
                        ]
                        for person in keypoints
                    ],
                }
            )
        )
    else:
        print(f"wrote {output} ({len(boxes)} people)")
    return 0
