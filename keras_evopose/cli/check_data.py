"""`keras-evopose check-data`: validate a COCO keypoints dataset and report
its ceiling AP through the crop -> heatmap -> decode path."""

import json
import os

from keras_evopose.cli import parse_size
from keras_evopose.data.coco_keypoints import IMAGE_SIGNATURES


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "check-data",
        help="validate a COCO keypoints dataset and report its ceiling AP",
        description=(
            "Reads a COCO keypoints JSON and its image folder, counts the "
            "images and person instances, lists what is skipped and why, "
            "checks that every used image file looks like an image, and "
            "reports the ceiling AP: the pycocotools AP of the ground truth "
            "pushed through crop -> heatmap targets -> decoding, i.e. the "
            "best any model can score through this pipeline at this "
            "resolution."
        ),
    )
    parser.add_argument("--annotations", required=True, help="COCO JSON")
    parser.add_argument("--images", required=True, help="image folder")
    parser.add_argument(
        "--input-size", default="256x192", help="HEIGHTxWIDTH (256x192)"
    )
    parser.add_argument(
        "--heatmap-size",
        default=None,
        help="HEIGHTxWIDTH of the heatmaps (default: input / 4)",
    )
    parser.add_argument(
        "--detections", default=None, help="COCO results JSON of person boxes"
    )
    parser.add_argument(
        "--refinement",
        default="quarter_offset",
        choices=["quarter_offset", "dark", "none"],
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object"
    )
    parser.set_defaults(func=run)


def unreadable_images(paths):
    """Paths whose first bytes are not a JPEG/PNG/GIF/BMP signature."""
    import tensorflow as tf

    bad = []
    for path in sorted(set(paths)):
        with tf.io.gfile.GFile(path, "rb") as handle:
            head = handle.read(8)
        if not head.startswith(IMAGE_SIGNATURES):
            bad.append(path)
    return bad


def check_data(
    annotations,
    images,
    input_size,
    heatmap_size=None,
    detections=None,
    refinement="quarter_offset",
):
    """Returns the report of `keras-evopose check-data` as a dict."""
    from keras_evopose.data import load_coco_instances
    from keras_evopose.data.coco_instances import read_json
    from keras_evopose.metrics import ceiling_ap

    data = read_json(annotations)
    instances = load_coco_instances(annotations, images)
    bad = unreadable_images(instances.image_paths)
    if bad:
        raise ValueError(
            f"{len(bad)} image file(s) are not JPEG/PNG/GIF/BMP, e.g. "
            f"{bad[0]}; fix or remove them before training."
        )
    report = {
        "annotations": str(annotations),
        "images": str(images),
        "images_listed": len(data["images"]),
        "images_found": instances.num_images,
        "person_annotations": sum(
            1
            for record in data["annotations"]
            if record.get("category_id") == instances.category_id
        ),
        "instances": len(instances),
        "skipped": dict(sorted(instances.skipped.items())),
        "num_keypoints": instances.layout.num_keypoints,
        "flip_pairs": [list(pair) for pair in instances.layout.flip_pairs],
        "input_size": list(input_size),
        "heatmap_size": list(heatmap_size) if heatmap_size else None,
        "ceiling_ap": {
            "ground_truth_boxes": ceiling_ap(
                annotations,
                images,
                input_size=input_size,
                heatmap_size=heatmap_size,
                refinement=refinement,
            )
        },
    }
    if detections is not None:
        detected = load_coco_instances(
            annotations, images, detections=detections
        )
        report["detections"] = {
            "boxes_used": len(detected),
            "images_with_boxes": len(set(detected.image_ids.tolist())),
            "skipped": dict(sorted(detected.skipped.items())),
        }
        report["ceiling_ap"]["detection_boxes"] = ceiling_ap(
            annotations,
            images,
            input_size=input_size,
            heatmap_size=heatmap_size,
            detections=detections,
            refinement=refinement,
        )
    return report


def format_ap_table(rows):
    """`{row name: stats dict}` -> a plain-text AP table."""
    columns = ["ap", "ap50", "ap75", "ap_medium", "ap_large", "ar"]
    width = max(len(name) for name in rows) + 2
    lines = [" " * width + " ".join(f"{column:>9s}" for column in columns)]
    for name, stats in rows.items():
        lines.append(
            f"{name:<{width}s}"
            + " ".join(f"{stats[column]:9.4f}" for column in columns)
        )
    return "\n".join(lines)


def run(args):
    input_size = parse_size(args.input_size)
    heatmap_size = parse_size(args.heatmap_size) if args.heatmap_size else None
    for path in (args.annotations, args.detections):
        if path and "://" not in path and not os.path.exists(path):
            raise FileNotFoundError(f"No such file: {path}")
    report = check_data(
        args.annotations,
        args.images,
        input_size,
        heatmap_size,
        args.detections,
        args.refinement,
    )
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"annotations   {report['annotations']}")
    print(
        f"images        {report['images_found']} found of "
        f"{report['images_listed']} listed"
    )
    print(
        f"instances     {report['instances']} used of "
        f"{report['person_annotations']} person annotations "
        f"({report['num_keypoints']} keypoints)"
    )
    for reason, count in report["skipped"].items():
        print(f"  skipped     {count:6d}  {reason}")
    if "detections" in report:
        detections = report["detections"]
        print(
            f"detections    {detections['boxes_used']} boxes used on "
            f"{detections['images_with_boxes']} images"
        )
        for reason, count in detections["skipped"].items():
            print(f"  skipped     {count:6d}  {reason}")
    size = "x".join(map(str, input_size))
    print(f"\nceiling AP at {size} ({args.refinement} decoding):")
    print(format_ap_table(report["ceiling_ap"]))
    return 0
