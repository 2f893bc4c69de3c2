"""`keras-evopose check-data`: validate a COCO keypoints dataset and report
its ceiling AP through the crop -> heatmap -> decode path."""

import json
import sys

from keras_evopose.cli import UsageError
from keras_evopose.cli import add_keypoint_layout_argument
from keras_evopose.cli import check_file
from keras_evopose.cli import check_input_size
from keras_evopose.cli import check_preset
from keras_evopose.cli import parse_size
from keras_evopose.cli import preset_stride
from keras_evopose.cli import read_keypoint_layout


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
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "--preset",
        default="small",
        help="model whose heatmap size to use (default: small)",
    )
    model.add_argument(
        "--model",
        default=None,
        help="a .keras (or exported .tflite) model: check with its data "
        "contract (sizes, sigma, padding, fill, keypoint layout)",
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
        default=None,
        choices=["border", "ignore"],
        help="target of a labelled joint outside the crop (SampleOptions; "
        "default: the model's, else border)",
    )
    add_keypoint_layout_argument(
        parser, "replaces the annotations' (and --model's)"
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
    parser.set_defaults(func=run, weights=None)


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
    keypoint_layout=None,
):
    """Returns the report of `keras-evopose check-data` as a dict.

    `keypoint_layout` (a model's, or from `--keypoint-layout`) replaces
    the annotations' keypoint layout; it must have their keypoints."""
    from keras_evopose.data import load_coco_instances
    from keras_evopose.data import out_of_crop_joints
    from keras_evopose.data.coco_instances import read_json
    from keras_evopose.data.image_files import unreadable_images
    from keras_evopose.inference.model_contract import layout_for_data
    from keras_evopose.metrics import ceiling_ap

    data = read_json(annotations)
    instances = load_coco_instances(annotations, images)
    layout = layout_for_data(keypoint_layout, instances.layout, annotations)
    # Before decoding every image: the ceiling AP is scored by OKS.
    layout.check_oks_sigmas()
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
        "num_keypoints": layout.num_keypoints,
        "keypoints": list(layout.names),
        "flip_pairs": [list(pair) for pair in layout.flip_pairs],
        # Joints that look left/right but are no flip pair: flipping
        # (augmentation, flip test) refuses such a layout.
        "missing_flip_pairs": [list(p) for p in layout.missing_flip_pairs],
        "input_size": list(options.input_size),
        "heatmap_size": list(options.heatmap_size),
        "out_of_crop_targets": options.out_of_crop,
        "sample_options": options.get_config(),
        "images_decoded": len(set(instances.image_paths)),
        "unreadable_images": unreadable_images(
            instances.image_paths, verbose=verbose, sizes=instances.image_sizes
        ),
        "out_of_crop_joints": out_of_crop_joints(instances, options),
    }
    if report["unreadable_images"]:
        # The ceiling would stop at the first bad file: report them first.
        return report
    report["ceiling_ap"] = {
        "ground_truth_boxes": ceiling_ap(
            annotations,
            images,
            options=options,
            keypoint_layout=layout,
            refinement=refinement,
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
            options=options,
            keypoint_layout=layout,
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


def model_options(args, input_size, heatmap_size):
    """`(SampleOptions, KeypointLayout)` of `--model`'s data contract."""
    from keras_evopose.cli.evaluate import load_model
    from keras_evopose.inference import model_contract

    if heatmap_size is not None:
        raise UsageError(
            "--heatmap-size is the model's own with --model; leave it out"
        )
    model = load_model(args)
    try:
        options, layout = model_contract(
            model, input_size=input_size, out_of_crop=args.out_of_crop
        )
    except ValueError as error:  # e.g. an input size off the stride
        raise UsageError(f"--model {args.model}: {error}") from None
    return options, layout


def run(args):
    if args.model is None:
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
    layout = read_keypoint_layout(args)
    if args.model:
        options, model_layout = model_options(args, input_size, heatmap_size)
        layout = layout or model_layout
    else:
        options = sample_options(
            args.preset,
            input_size,
            heatmap_size,
            out_of_crop=args.out_of_crop or "border",
        )
    report = check_data(
        args.annotations,
        args.images,
        options,
        args.detections,
        args.refinement,
        # A live bar only on a terminal (in a pipe it leaves escape codes).
        verbose=not args.json and sys.stdout.isatty(),
        keypoint_layout=layout,
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
    pairs = report["flip_pairs"]
    print(
        f"layout        {report['num_keypoints']} keypoints, "
        f"{len(pairs)} flip pairs"
        + (
            ": " + ", ".join(
                "/".join(report["keypoints"][i] for i in pair)
                for pair in pairs[:4]
            ) + (" ..." if len(pairs) > 4 else "")
            if pairs else ""
        )
    )  # fmt: skip
    for left, right in report["missing_flip_pairs"]:
        print(
            f"  warning     {left}/{right} look like a left/right pair but "
            "are no flip pair: flipping refuses this layout (add them to "
            "flip_pairs)"
        )
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
