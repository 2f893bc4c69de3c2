"""`keras-evopose predict IMAGE --boxes ...`: draw predicted skeletons."""

import json

from keras_evopose.cli import UsageError
from keras_evopose.cli import check_file


def parse_box(text, image_size=None):
    """`"X,Y,W,H"` -> floats; UsageError unless W, H > 0 and the box
    overlaps the image (`image_size` = `(height, width)`)."""
    try:
        values = [float(value) for value in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0:
        raise UsageError(
            f"--boxes takes X,Y,W,H with W, H > 0 (COCO boxes); got {text!r}"
        )
    if image_size is not None:
        height, width = image_size
        x, y, box_width, box_height = values
        outside = x >= width or y >= height
        if outside or x + box_width <= 0 or y + box_height <= 0:
            raise UsageError(
                f"--boxes {text} lies outside the image ({width}x{height} "
                "pixels, width x height); boxes are X,Y,W,H in pixels from "
                "the top-left corner"
            )
    return values


def add_parser(subparsers):
    from keras_evopose.cli.evaluate import add_model_arguments

    parser = subparsers.add_parser(
        "predict",
        description=(
            "Top-down prediction for the given person boxes; writes a PNG "
            "with the boxes, the keypoints scoring above --min-score and "
            "the limbs between them drawn. The model is a .keras file, a "
            ".tflite file from `export` or a preset."
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


def read_image(path):
    """The image at `path` as a `(H, W, 3)` uint8 array (local or URL)."""
    import tensorflow as tf

    with tf.io.gfile.GFile(str(path), "rb") as handle:
        data = handle.read()
    try:
        return tf.io.decode_image(
            data, channels=3, expand_animations=False
        ).numpy()
    except tf.errors.InvalidArgumentError:
        raise UsageError(
            f"{path} is not a JPEG, PNG, GIF or BMP image; pass one"
        ) from None


def draw(image, boxes, keypoints, layout, output, min_score=0.2):
    """Writes a PNG of `image` (an array) with boxes, joints and limbs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

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
    from keras_evopose.inference import predict_keypoints

    check_file(args.image, "image")
    image = read_image(args.image)
    boxes = [parse_box(text, image.shape[:2]) for text in args.boxes]
    if args.annotations:
        check_file(args.annotations, "--annotations")
        data = read_json(args.annotations)
        categories = [
            c for c in (data.get("categories") or []
                        if isinstance(data, dict) else [])
            if isinstance(c, dict) and c.get("keypoints")
        ]  # fmt: skip
        if not categories:
            raise UsageError(
                f"--annotations {args.annotations} has no category with "
                "'keypoints'; pass a COCO keypoints JSON"
            )
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
    draw(image, boxes, keypoints, layout, output, args.min_score)
    shown = keypoints[:, :, 2] > args.min_score
    summary = (
        f"wrote {output}: {len(boxes)} box(es), {int(shown.sum())} of "
        f"{shown.size} joints scored above --min-score {args.min_score:g}"
    )
    if not shown.any():
        summary += (
            f" (best score {float(keypoints[:, :, 2].max()):.3f}); no joint "
            "drawn: is the model trained? A lower --min-score draws weaker "
            "guesses"
        )
    if args.json:
        print(
            json.dumps(
                {
                    "output": output,
                    "num_joints_drawn": int(shown.sum()),
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
        print(summary)
    return 0
