"""`keras-evopose check-data`: validate a COCO keypoints dataset and report
its ceiling AP through the crop -> heatmap -> decode path."""

import json
import sys

from keras_evopose.cli import check_file
from keras_evopose.cli import check_input_size
from keras_evopose.cli import check_preset
from keras_evopose.cli import parse_size
from keras_evopose.cli import preset_stride


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "check-data",
        help="validate a COCO keypoints dataset and report its ceiling AP",
        description=(
            "Reads a COCO keypoints JSON and its image folder, counts the "
            "images and person instances, lists what is skipped and why "
            "(naming malformed records), decodes every used image as "
            "training would, counts the labelled joints that fall outside "
            "their crop, and reports the ceiling AP: the pycocotools AP of "
            "the ground truth pushed through crop -> heatmap targets -> "
            "decoding, i.e. the best any model can score through this "
            "pipeline at this resolution. Exit status 1 when an image "
            "cannot be decoded."
        ),
    )
    parser.add_argument("--annotations", required=True, help="COCO JSON")
    parser.add_argument("--images", required=True, help="image folder")
    parser.add_argument(
        "--preset",
        default="small",
        help="model whose heatmap size to use (default: small)",
    )
    parser.add_argument(
        "--input-size",
        default=None,
        help="HEIGHTxWIDTH (default: the preset's, 256x192 for small)",
    )
    parser.add_argument(
        "--heatmap-size",
        default=None,
        help="HEIGHTxWIDTH of the heatmaps (default: the preset's output "
        "at the input size)",
    )
    parser.add_argument(
        "--out-of-crop",
        default="border",
        choices=["border", "ignore"],
        help="target of a labelled joint outside the crop (SampleOptions)",
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


def sample_options(preset, input_size=None, heatmap_size=None, **fields):
    """`SampleOptions` at the sizes of `preset` (or the sizes given)."""
    from keras_evopose.data import SampleOptions

    if input_size is not None and heatmap_size is not None:
        return SampleOptions(input_size, heatmap_size, **fields)
    if input_size is not None:
        check_input_size(input_size, preset_stride(preset))
    from keras_evopose.models import EvoPose2D

    overrides = {} if input_size is None else {"image_shape": (*input_size, 3)}
    model = EvoPose2D.from_preset(preset, **overrides)
    return SampleOptions.for_model(model, **fields)


def check_data(
    annotations,
    images,
    options,
    detections=None,
    refinement="quarter_offset",
    verbose=True,
):
    """Returns the report of `keras-evopose check-data` as a dict."""
    from keras_evopose.data import load_coco_instances
    from keras_evopose.data import out_of_crop_joints
    from keras_evopose.data.coco_instances import read_json
    from keras_evopose.data.image_files import unreadable_images
    from keras_evopose.metrics import ceiling_ap

    data = read_json(annotations)
    instances = load_coco_instances(annotations, images)
    report = {
        "annotations": str(annotations),
        "images": str(images),
        "images_listed": len(data["images"]),
        "images_found": instances.num_images,
        "person_annotations": sum(
            1
            for record in data["annotations"]
            if isinstance(record, dict)
            and record.get("category_id") == instances.category_id
        ),
        "instances": len(instances),
        "skipped": dict(sorted(instances.skipped.items())),
        "skipped_examples": instances.skipped_examples,
        "num_keypoints": instances.layout.num_keypoints,
        "flip_pairs": [list(pair) for pair in instances.layout.flip_pairs],
        "input_size": list(options.input_size),
        "heatmap_size": list(options.heatmap_size),
        "out_of_crop_targets": options.out_of_crop,
        "images_decoded": len(set(instances.image_paths)),
        "unreadable_images": unreadable_images(
            instances.image_paths, verbose=verbose
        ),
        "out_of_crop_joints": out_of_crop_joints(instances, options),
    }
    if report["unreadable_images"]:
        # The ceiling would stop at the first bad file: report them first.
        return report
    fields = {
        name: getattr(options, name)
        for name in ("sigma", "padding", "heatmap_peak", "fill", "out_of_crop")
    }
    report["ceiling_ap"] = {
        "ground_truth_boxes": ceiling_ap(
            annotations,
            images,
            input_size=options.input_size,
            heatmap_size=options.heatmap_size,
            refinement=refinement,
            **fields,
        )
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
            input_size=options.input_size,
            heatmap_size=options.heatmap_size,
            detections=detections,
            refinement=refinement,
            **fields,
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
    check_preset(args.preset)
    input_size = (
        parse_size(args.input_size, "--input-size") if args.input_size else None
    )
    heatmap_size = (
        parse_size(args.heatmap_size, "--heatmap-size")
        if args.heatmap_size
        else None
    )
    check_file(args.annotations, "--annotations")
    check_file(args.images, "--images", kind="folder")
    if args.detections:
        check_file(args.detections, "--detections")
    options = sample_options(
        args.preset, input_size, heatmap_size, out_of_crop=args.out_of_crop
    )
    report = check_data(
        args.annotations,
        args.images,
        options,
        args.detections,
        args.refinement,
        # A live bar only on a terminal (in a pipe it leaves escape codes).
        verbose=not args.json and sys.stdout.isatty(),
    )
    status = 1 if report["unreadable_images"] else 0
    if args.json:
        print(json.dumps(report))
        return status
    print(f"annotations   {report['annotations']}")
    print(
        f"images        {report['images_found']} found of "
        f"{report['images_listed']} listed, {report['images_decoded']} "
        "used and decoded"
    )
    print(
        f"instances     {report['instances']} used of "
        f"{report['person_annotations']} person annotations "
        f"({report['num_keypoints']} keypoints)"
    )
    for reason, count in report["skipped"].items():
        print(f"  skipped     {count:6d}  {reason}")
        for example in report["skipped_examples"].get(reason, []):
            print(f"                      e.g. {example}")
    for path, problem in report["unreadable_images"].items():
        print(f"  unreadable  {path}: {problem}")
    if "detections" in report:
        detections = report["detections"]
        print(
            f"detections    {detections['boxes_used']} boxes used on "
            f"{detections['images_with_boxes']} images"
        )
        for reason, count in detections["skipped"].items():
            print(f"  skipped     {count:6d}  {reason}")
    joints = report["out_of_crop_joints"]
    print(
        f"out of crop   {joints['outside_crop']} of {joints['labelled']} "
        f"labelled joints ({joints['instances_affected']} people) lie "
        "outside their crop:"
    )
    print(
        f"  {joints['outside_box']:6d}  inside the image, outside the "
        "padded box (the box is tighter than the joints)"
    )
    print(f"  {joints['outside_image']:6d}  outside the image")
    print(
        f"  their targets: {report['out_of_crop_targets']} "
        "(see SampleOptions.out_of_crop)"
    )
    if status:
        print(
            f"\n{len(report['unreadable_images'])} image(s) cannot be "
            "decoded: fix or remove them (no ceiling AP computed)."
        )
        return status
    size = "x".join(map(str, report["input_size"]))
    heatmap = "x".join(map(str, report["heatmap_size"]))
    print(
        f"\nceiling AP at {size} -> {heatmap} heatmaps "
        f"({args.refinement} decoding):"
    )
    print(format_ap_table(report["ceiling_ap"]))
    return 0
