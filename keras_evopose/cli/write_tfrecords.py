"""`keras-evopose write-tfrecords`: COCO keypoints -> sharded TFRecords."""

from keras_evopose.cli import UsageError
from keras_evopose.cli import check_file


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "write-tfrecords",
        help="write a COCO keypoints JSON + images as sharded TFRecords",
        description=(
            "Writes one example per person (the image file, box, keypoints) "
            "as PREFIX-00000-of-000NN.tfrecord shards and the keypoint "
            "layout as PREFIX-layout.json, locally or on gs://, for "
            "`keras-evopose train --tfrecords 'PREFIX-*'` (TPUs read them "
            "from a bucket)."
        ),
    )
    parser.add_argument("--annotations", required=True, help="COCO JSON")
    parser.add_argument("--images", required=True, help="image folder")
    parser.add_argument(
        "--output",
        required=True,
        metavar="PREFIX",
        help="shard prefix, e.g. records/train or gs://bucket/coco/train",
    )
    parser.add_argument(
        "--examples-per-shard",
        type=int,
        default=1024,
        help="default 1024 (the reference's)",
    )
    parser.set_defaults(func=run)


def run(args):
    import os

    from keras_evopose.data import write_tfrecords

    check_file(args.annotations, "--annotations")
    check_file(args.images, "--images", kind="folder")
    if args.examples_per_shard < 1:
        raise UsageError("--examples-per-shard must be >= 1")
    if "://" not in args.output:
        parent = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(parent):
            raise UsageError(
                f"--output {args.output}: folder {parent} does not exist; "
                "create it first"
            )
    shards = write_tfrecords(
        args.annotations,
        args.images,
        args.output,
        examples_per_shard=args.examples_per_shard,
    )
    print(
        f"wrote {len(shards)} shard(s) and {args.output}-layout.json; "
        f"train with --tfrecords '{args.output}-*'"
    )
    return 0
