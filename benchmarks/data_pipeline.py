"""Training-pipeline throughput vs raw JPEG decoding of the same images.

Both pipelines read the same per-person image list with the same tf.data
parallelism and batch size, in one process, alternating rounds so machine
noise hits both; the reported ratio is the median over rounds of
(pipeline / decode samples per second) measured back to back, which is
what docs/benchmarks.md reports.

    python benchmarks/data_pipeline.py [--samples 2000] [--rounds 3]
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = pathlib.Path(__file__).resolve().parents[1]
MINI = ROOT / "data" / "coco_kpt_mini"


def samples_per_second(dataset, num_batches, batch_size):
    iterator = iter(dataset)
    next(iterator)  # warm-up: tracing and thread pools
    start = time.perf_counter()
    for _ in range(num_batches):
        next(iterator)
    return num_batches * batch_size / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--annotations",
        default=str(MINI / "annotations/person_keypoints_val2017_mini.json"),
    )
    parser.add_argument("--images", default=str(MINI / "val2017"))
    parser.add_argument("--input-size", default="256x192")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from keras_evopose.data import coco_keypoints_dataset
    from keras_evopose.data import load_coco_instances

    height, width = (int(v) for v in args.input_size.split("x"))
    instances = load_coco_instances(args.annotations, args.images)
    decode_only = (
        tf.data.Dataset.from_tensor_slices(instances.image_paths)
        .shuffle(len(instances), seed=0)
        .repeat()
        .map(
            lambda path: tf.io.decode_image(
                tf.io.read_file(path), channels=3, expand_animations=False
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        # Images differ in size: batch them ragged, as cheaply as possible.
        .ragged_batch(args.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    pipeline = coco_keypoints_dataset(
        args.annotations,
        args.images,
        input_size=(height, width),
        heatmap_size=(height // 4, width // 4),
        training=True,
        batch_size=args.batch_size,
        seed=0,
        repeat=True,
        half_body_probability=0.3,
    )
    num_batches = max(1, args.samples // args.batch_size)
    decode_rates, pipeline_rates = [], []
    for _ in range(args.rounds):
        decode_rates.append(
            samples_per_second(decode_only, num_batches, args.batch_size)
        )
        pipeline_rates.append(
            samples_per_second(pipeline, num_batches, args.batch_size)
        )
    decode = statistics.median(decode_rates)
    training = statistics.median(pipeline_rates)
    ratios = [p / d for p, d in zip(pipeline_rates, decode_rates)]
    result = {
        "input_size": f"{height}x{width}",
        "batch_size": args.batch_size,
        "samples_per_round": num_batches * args.batch_size,
        "rounds": args.rounds,
        "decode_samples_per_second": round(decode, 1),
        "pipeline_samples_per_second": round(training, 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratios_per_round": [round(ratio, 3) for ratio in ratios],
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "tensorflow": tf.__version__,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:30s} {value}")
    return result


if __name__ == "__main__":
    main()
