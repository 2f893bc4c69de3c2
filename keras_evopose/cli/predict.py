"""`keras-evopose predict IMAGE`: draw predicted skeletons.

Person boxes come from `--boxes`, from `--detections` (a COCO results
file, or a COCO keypoints JSON whose annotated boxes are used), or, with
neither, one box over the whole image (said so).
"""

import json
import math
import os
import pathlib
import sys
import tempfile

from keras_evopose.cli import UsageError
from keras_evopose.cli import add_keypoint_layout_argument
from keras_evopose.cli import check_file
from keras_evopose.cli import check_output
from keras_evopose.cli import read_keypoint_layout

# The drawing's longest side in pixels: the overlay is drawn at most this
# large, so drawing memory does not grow with the photo (a 12000x9000
# photo drawn at full size took 13.7 GB).
MAX_DRAWING_SIDE = 2000


def _check_box(values, image_size, source):
    """UsageError naming `source` unless `values` is a finite X,Y,W,H with
    W, H > 0 that overlaps the image (`image_size` = `(height, width)`)."""
    if (
        len(values) != 4
        or not all(math.isfinite(value) for value in values)
        or values[2] <= 0
        or values[3] <= 0
    ):
        raise UsageError(
            f"{source} takes X,Y,W,H: finite numbers, W, H > 0 (COCO boxes)"
        )
    if image_size is not None:
        height, width = image_size
        x, y, box_width, box_height = values
        outside = x >= width or y >= height
        if outside or x + box_width <= 0 or y + box_height <= 0:
            raise UsageError(
                f"{source} lies outside the image ({width}x{height} "
                "pixels, width x height); boxes are X,Y,W,H in pixels from "
                "the top-left corner"
            )
    return values


def parse_box(text, image_size=None):
    """`"X,Y,W,H"` -> floats; UsageError unless they are finite, W, H > 0
    and the box overlaps the image (`image_size` = `(height, width)`)."""
    try:
        values = [float(value) for value in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise UsageError(
            "--boxes takes X,Y,W,H: finite numbers, W, H > 0 (COCO boxes); "
            f"got {text!r}"
        )
    return _check_box(values, image_size, f"--boxes {text}")


def image_id_of(image, data, image_id=None):
    """The COCO image id of the file `image` in a COCO JSON `data` (a
    results list or a keypoints dict): `image_id` if given, else its
    record's id (by file name), else a numeric file name
    (`000000000785.jpg` -> 785), else the only id the file holds."""
    if image_id is not None:
        return image_id
    name = pathlib.Path(image).name
    if isinstance(data, dict):
        for record in data.get("images") or []:
            if isinstance(record, dict) and record.get("file_name") == name:
                return record.get("id")
    stem = pathlib.Path(image).stem
    if stem.isdigit():
        return int(stem)
    records = data.get("annotations") if isinstance(data, dict) else data
    ids = {r.get("image_id") for r in records or [] if isinstance(r, dict)}
    if len(ids) == 1:
        return ids.pop()
    return None


def detection_boxes(path, image, image_size, score_threshold, image_id=None):
    """Person boxes of `image` in the COCO file at `path`.

    A COCO results file (a list of `{"image_id", "bbox", "score",
    "category_id"}`) gives its boxes scoring at least `score_threshold`;
    a COCO keypoints JSON gives the annotated (non-crowd) boxes.

    Returns:
        `(boxes, description)`: X,Y,W,H lists and a few words on where
        they came from.
    """
    from keras_evopose.data.coco_instances import read_json

    try:
        data = read_json(path)
    except ValueError as error:
        raise UsageError(f"--detections: {error}") from None
    annotated = isinstance(data, dict) and "annotations" in data
    if not annotated and not isinstance(data, list):
        raise UsageError(
            f"--detections {path} is neither a COCO results list nor a COCO "
            "keypoints JSON; pass one"
        )
    wanted = image_id_of(image, data, image_id)
    if wanted is None:
        raise UsageError(
            f"--detections {path}: cannot tell which image_id is "
            f"{pathlib.Path(image).name}; pass --image-id"
        )
    category = None
    if annotated:
        records = data["annotations"]
        category = next(
            (
                c.get("id")
                for c in data.get("categories") or []
                if isinstance(c, dict) and c.get("keypoints")
            ),
            None,
        )
    else:
        records = data
    boxes, scores = [], []
    for index, record in enumerate(records):
        if not isinstance(record, dict) or record.get("image_id") != wanted:
            continue
        if category is not None and record.get("category_id") != category:
            continue
        if annotated and record.get("iscrowd"):
            continue
        if not annotated and record.get("category_id", 1) != 1:
            continue
        box = record.get("bbox")
        try:
            values = [float(value) for value in box]
        except (TypeError, ValueError):
            values = []
        where = f"--detections {path} record {index} (bbox {box})"
        if len(values) != 4:
            raise UsageError(f"{where}: bbox must be [x, y, w, h]")
        _check_box(values, image_size, where)
        score = 1.0 if annotated else record.get("score")
        if not isinstance(score, (int, float)) or not math.isfinite(score):
            raise UsageError(f"{where}: score must be a finite number")
        boxes.append(values)
        scores.append(float(score))
    if annotated:
        if not boxes:
            raise UsageError(
                f"--detections {path} annotates no person box for image_id "
                f"{wanted}; pass --boxes or another file"
            )
        return boxes, f"{len(boxes)} annotated box(es) of image {wanted}"
    kept = [box for box, s in zip(boxes, scores) if s >= score_threshold]
    if not kept:
        best = f", best score {max(scores):.3f}" if scores else ""
        raise UsageError(
            f"--detections {path} holds {len(boxes)} person box(es) for "
            f"image_id {wanted}, none scoring >= --score-threshold "
            f"{score_threshold:g}{best}; lower --score-threshold"
        )
    return kept, (
        f"{len(kept)} of {len(boxes)} detected box(es) of image {wanted} "
        f"scoring >= {score_threshold:g}"
    )


def add_parser(subparsers):
    from keras_evopose.cli.evaluate import add_model_arguments

    parser = subparsers.add_parser(
        "predict",
        description=(
            "Top-down prediction for person boxes (--boxes, --detections, "
            "or one box over the whole image); writes a PNG with the boxes, "
            "the keypoints scoring above --min-score and the limbs between "
            "them drawn (at most "
            f"{MAX_DRAWING_SIDE} pixels on its longest side). The model is "
            "a .keras file, a .tflite or .onnx file from `export` or a "
            "preset."
        ),
    )
    parser.add_argument("image", help="JPEG or PNG image")
    boxes = parser.add_mutually_exclusive_group()
    boxes.add_argument(
        "--boxes",
        nargs="+",
        default=None,
        metavar="X,Y,W,H",
        help="person boxes in pixels (COCO [x, y, w, h])",
    )
    boxes.add_argument(
        "--detections",
        default=None,
        metavar="JSON",
        help="person boxes of this image from a COCO results file (a list "
        "of image_id, bbox, score), or the annotated boxes of a COCO "
        "keypoints JSON (default without --boxes: the whole image)",
    )
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=0.5,
        help="--detections: use boxes scoring at least this (default 0.5)",
    )
    parser.add_argument(
        "--image-id",
        type=int,
        default=None,
        help="--detections: the image's id in that file (default: from its "
        "file name)",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--annotations",
        default=None,
        help="COCO keypoints JSON giving keypoint names and skeleton "
        "(default: the model's keypoint layout, else COCO person)",
    )
    add_keypoint_layout_argument(
        parser, "replaces the model's (flip pairs, skeleton drawn)"
    )
    parser.add_argument(
        "--output",
        default=None,
        help="PNG path (default: IMAGE's name + _pose.png, here)",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=0.2,
        help="draw joints with a score above this",
    )
    parser.add_argument(
        "--no-flip",
        action="store_true",
        help="no flip test (for a model trained without flips)",
    )
    parser.add_argument(
        "--json", action="store_true", help="also print keypoints as JSON"
    )
    parser.set_defaults(func=run)


def read_image(path, max_side=MAX_DRAWING_SIDE):
    """The image at `path` (local or URL) for drawing: `(array, (height,
    width))`, the array `(h, w, 3)` uint8 at most `max_side` pixels on
    its longest side, `(height, width)` the full image's. A JPEG is
    decoded at 1/2, 1/4 or 1/8 scale when that still covers `max_side`,
    so a large photo is never held at full size here."""
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    with tf.io.gfile.GFile(str(path), "rb") as handle:
        data = handle.read()
    try:
        if tf.io.is_jpeg(data):
            height, width = (
                int(v) for v in tf.io.extract_jpeg_shape(data)[:2].numpy()
            )
            ratio = 1
            while ratio < 8 and max(height, width) / (2 * ratio) >= max_side:
                ratio *= 2
            image = tf.io.decode_jpeg(data, channels=3, ratio=ratio).numpy()
        else:
            image = tf.io.decode_image(
                data, channels=3, expand_animations=False
            ).numpy()
            height, width = image.shape[:2]
    except tf.errors.InvalidArgumentError:
        raise UsageError(
            f"image {path} is not a JPEG, PNG, GIF or BMP image; pass one"
        ) from None
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if image.shape[1::-1] != size:
        image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    return image, (height, width)


def draw(image, boxes, keypoints, layout, output, min_score=0.2, scale=1.0):
    """Writes a PNG of `image` (an array, `scale` times the size of the
    frame of `boxes` and `keypoints`) with boxes, joints and limbs,
    through a temporary file in the same folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    height, width = image.shape[:2]
    boxes = np.asarray(boxes, "float32") * scale
    points_xy = keypoints[:, :, :2] * scale
    figure = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    axes = figure.add_axes([0, 0, 1, 1])
    axes.imshow(image)
    axes.set_axis_off()
    colours = plt.get_cmap("tab10")
    for index, (box, points, xy) in enumerate(zip(boxes, keypoints, points_xy)):
        colour = colours(index % 10)
        axes.add_patch(
            plt.Rectangle(
                box[:2], box[2], box[3], fill=False, color=colour, lw=1
            )
        )
        shown = points[:, 2] > min_score
        for a, b in layout.skeleton:
            if shown[a] and shown[b]:
                axes.plot(xy[[a, b], 0], xy[[a, b], 1], color=colour, lw=2)
        axes.scatter(
            xy[shown, 0], xy[shown, 1], s=12, color="white",
            edgecolors=np.array([colour]), zorder=3,
        )  # fmt: skip
    folder = os.path.dirname(os.path.abspath(output))
    handle, temporary = tempfile.mkstemp(
        dir=folder, prefix=".predict-", suffix=".png"
    )
    os.close(handle)
    try:
        figure.savefig(temporary, dpi=100, format="png")
        os.replace(temporary, output)
    finally:
        plt.close(figure)
        if os.path.exists(temporary):
            os.remove(temporary)


def run(args):
    from keras_evopose.cli.evaluate import check_model_arguments
    from keras_evopose.cli.evaluate import load_model
    from keras_evopose.data import KeypointLayout
    from keras_evopose.data.coco_instances import read_json
    from keras_evopose.inference import model_contract
    from keras_evopose.inference import predict_keypoints

    check_model_arguments(args)
    check_file(args.image, "image")
    if args.detections:
        check_file(args.detections, "--detections")
    if args.annotations:
        check_file(args.annotations, "--annotations")
    for flag, value in (
        ("--score-threshold", args.score_threshold),
        ("--min-score", args.min_score),
    ):
        if not math.isfinite(value):
            raise UsageError(f"{flag} must be a finite number; got {value}")
    output = args.output or (
        pathlib.Path(args.image).with_suffix("").name + "_pose.png"
    )
    check_output(output, "--output", inputs=[args.image])
    image, (height, width) = read_image(args.image)
    note = None
    if args.boxes:
        boxes = [parse_box(text, (height, width)) for text in args.boxes]
    elif args.detections:
        boxes, source = detection_boxes(
            args.detections,
            args.image,
            (height, width),
            args.score_threshold,
            args.image_id,
        )
        note = f"note: {source} from {args.detections}"
    else:
        boxes = [[0.0, 0.0, float(width), float(height)]]
        note = (
            f"note: no --boxes or --detections: one box over the whole "
            f"image ({width}x{height}); for several or small people pass "
            "their boxes"
        )
    layout = read_keypoint_layout(args)
    if layout is None and args.annotations:
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
    # After every input is read: a bad file is the only line printed.
    if note:
        print(note, file=sys.stderr)
    model = load_model(args)
    # The model's layout (or COCO person for 17 heatmaps) unless given.
    _, layout = model_contract(model, keypoint_layout=layout)
    keypoints = predict_keypoints(
        model, args.image, boxes, layout=layout, flip_test=not args.no_flip
    )
    if layout is None:  # nothing to draw limbs with
        layout = KeypointLayout(
            [f"keypoint_{i}" for i in range(keypoints.shape[1])]
        )
    scale = image.shape[1] / width
    draw(image, boxes, keypoints, layout, output, args.min_score, scale)
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
                    "output": str(output),
                    "boxes": [[round(v, 2) for v in box] for box in boxes],
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
