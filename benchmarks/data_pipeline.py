"""Training-pipeline throughput vs raw JPEG decoding of the same images.

Both pipelines read the same per-person image list with the same tf.data
parallelism and batch size, in one process, alternating rounds so machine
noise hits both; the reported ratio is the median over rounds of
(pipeline / decode samples per second) measured back to back, which is
what docs/benchmarks.md reports.

With `--baseline FILE` (an earlier `keras_evopose/data/coco_keypoints.py`,
e.g. `git show 4a0cbc8:keras_evopose/data/coco_keypoints.py > old.py`),
that pipeline is timed in the same rounds and its samples are compared
with today's, sample by sample (same seed, training augmentation on):
pixel differences of the crops in uint8 levels and heatmap differences.

Also timed in the same rounds (`person_crops_model_warp`): the pipeline
over person-crop TFRecords (`write_tfrecords(person_crops=options)`,
written to a temporary folder first) with `warp="model"`, i.e. what the
CPU still does when the warp runs in the model (`CropWarp`). The warp's
own cost on this machine's CPU is timed separately (`crop_warp_ms`), and
its crops are compared with today's pipeline sample by sample. And
`exact_window_decode_only`: decoding, for several draws, exactly each
draw's window re-encoded alone, the bound of any person-region store at
the images' resolution.

    python benchmarks/data_pipeline.py [--samples 2000] [--rounds 3]
        [--baseline old.py]
"""

import argparse
import importlib.util
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = pathlib.Path(__file__).resolve().parents[1]
MINI = ROOT / "data" / "coco_kpt_mini"
# The benchmark's augmentation: everything on, half-body at 0.3.
TRAINING = dict(training=True, seed=0, half_body_probability=0.3)


def samples_per_second(dataset, num_batches, batch_size):
    iterator = iter(dataset)
    next(iterator)  # warm-up: tracing and thread pools
    start = time.perf_counter()
    for _ in range(num_batches):
        next(iterator)
    return num_batches * batch_size / (time.perf_counter() - start)


def load_baseline(path):
    spec = importlib.util.spec_from_file_location("baseline_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # autograph looks modules up here
    spec.loader.exec_module(module)
    return module


def compare_samples(new, old, num_batches):
    """Per-sample differences between two pipelines' batches (the crops
    in uint8 levels, the heatmaps in target units)."""
    import numpy as np

    from keras_evopose.data import IMAGE_STD

    levels = np.asarray(IMAGE_STD, "float32") * 255.0
    pixel, heatmap = [], []
    for (image, heatmaps, _), (old_image, old_heatmaps, _) in zip(
        new.take(num_batches), old.take(num_batches)
    ):
        difference = np.abs(image.numpy() - old_image.numpy()) * levels
        pixel.append(difference.reshape(len(difference), -1))
        heatmap.append(
            np.abs(heatmaps.numpy() - old_heatmaps.numpy()).reshape(
                len(difference), -1
            )
        )
    pixel = np.concatenate(pixel)
    heatmap = np.concatenate(heatmap)
    return {
        "samples": len(pixel),
        "pixel_max_levels": round(float(pixel.max()), 3),
        "pixel_mean_levels": round(float(pixel.mean()), 5),
        "samples_pixel_identical": int(np.sum(pixel.max(1) < 0.5)),
        "samples_within_1_level": int(np.sum(pixel.max(1) < 1.5)),
        "heatmap_max_difference": round(float(heatmap.max()), 4),
    }


def augmented_windows(instances, sizes, seed=0):
    """The crop matrices and decode windows of one augmentation draw of
    every instance (the benchmark's settings)."""
    import tensorflow as tf

    from keras_evopose.data import SampleOptions
    from keras_evopose.data import augmentation
    from keras_evopose.data import coco_keypoints
    from keras_evopose.data import geometry

    options = SampleOptions(**sizes, half_body_probability=0.3)
    center, scale = geometry.box_to_center_scale(
        instances.boxes, options.input_size, options.padding, xp=tf
    )
    center, scale, rotation, flip = augmentation.augment_crops(
        tf.constant(instances.keypoints),
        center,
        scale,
        options,
        instances.layout,
        tf.constant(seed, "int64"),
    )
    matrices = geometry.crop_to_image_matrix(
        center, scale, options.input_size, rotation, flip, xp=tf
    )
    return matrices, coco_keypoints.crop_windows(matrices, options.input_size)


def window_decode_only(instances, sizes, batch_size):
    """What the CPU would still do if the warp ran on the accelerator:
    read and decode each augmented crop's window, batched ragged."""
    import tensorflow as tf

    from keras_evopose.data.image_files import decode_window

    _, windows = augmented_windows(instances, sizes)
    return (
        tf.data.Dataset.from_tensor_slices((instances.image_paths, windows))
        .shuffle(len(instances), seed=0)
        .repeat()
        .map(
            lambda path, window: decode_window(
                tf.io.read_file(path), window, path
            )[0],
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .ragged_batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def exact_window_decode_only(instances, sizes, batch_size, draws=4):
    """The bound of any store of person regions at the images' resolution:
    `draws` augmentation draws of every instance, each draw's window alone
    re-encoded (JPEG quality 95, 4:4:4, as `write_tfrecords(person_crops=)`
    writes), decoded and batched ragged. A store must hold at least the
    window of every draw, so no region format decodes less."""
    import tensorflow as tf

    decoded = {}
    windows = []
    for seed in range(draws):
        _, draw = augmented_windows(instances, sizes, seed=seed)
        for path, window in zip(instances.image_paths, draw.numpy()):
            if path not in decoded:
                decoded[path] = tf.io.decode_image(
                    tf.io.read_file(path), channels=3, expand_animations=False
                )
            height, width = decoded[path].shape[:2]
            x0, y0 = max(0, window[0]), max(0, window[1])
            x1, y1 = min(width, window[2]), min(height, window[3])
            if x1 > x0 and y1 > y0:
                windows.append(
                    tf.io.encode_jpeg(
                        decoded[path][y0:y1, x0:x1],
                        quality=95,
                        chroma_downsampling=False,
                    )
                )
    return (
        tf.data.Dataset.from_tensor_slices(tf.stack(windows))
        .shuffle(len(windows), seed=0)
        .repeat()
        .map(
            lambda data: tf.io.decode_jpeg(data, channels=3),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .ragged_batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def component_milliseconds(instances, sizes, repeats=3):
    """Median milliseconds per sample, one call at a time, of the three
    per-sample steps: full-image decode (what the bare-decode baseline
    does), decoding only the augmented crop's window, and the warp."""
    import numpy as np
    import tensorflow as tf

    from keras_evopose.data import coco_keypoints
    from keras_evopose.data.image_files import decode_window

    input_size = sizes["input_size"]
    matrices, windows = augmented_windows(instances, sizes)
    encoded = [tf.io.read_file(path) for path in instances.image_paths]
    string = tf.TensorSpec([], tf.string)
    full = tf.function(
        lambda data: tf.io.decode_image(
            data, channels=3, expand_animations=False
        ),
        input_signature=[string],
    )
    window = tf.function(
        lambda data, box: decode_window(data, box, tf.constant("")),
        input_signature=[string, tf.TensorSpec([4], tf.int32)],
    )
    warp = tf.function(
        lambda pixels, origin, matrix: coco_keypoints.warp_crop(
            pixels, origin, matrix, input_size
        ),
        input_signature=[
            tf.TensorSpec([None, None, 3], tf.uint8),
            tf.TensorSpec([2], tf.int32),
            tf.TensorSpec([2, 3], tf.float32),
        ],
    )
    decoded = [window(data, box) for data, box in zip(encoded, windows)]
    steps = {
        "full_decode": lambda i: full(encoded[i]),
        "window_decode": lambda i: window(encoded[i], windows[i]),
        "warp": lambda i: warp(decoded[i][0], decoded[i][1], matrices[i]),
    }
    result = {}
    for name, step in steps.items():
        step(0)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for index in range(len(encoded)):
                step(index)
            times.append((time.perf_counter() - start) / len(encoded))
        result[name] = round(1e3 * statistics.median(times), 3)
    fraction = [
        float((w[2] - w[0]) * (w[3] - w[1])) / float(size[0] * size[1])
        for w, size in zip(
            np.clip(
                windows.numpy(),
                0,
                np.tile(instances.image_sizes[:, ::-1], 2),
            ),
            instances.image_sizes,
        )
    ]
    result["window_area_fraction_median"] = round(float(np.median(fraction)), 3)
    return result


def write_person_crops(args, sizes, folder):
    """Person-crop records of the benchmark's data, bounding its
    augmentation; their size and how long writing took."""
    from keras_evopose.data import SampleOptions
    from keras_evopose.data import write_tfrecords

    options = SampleOptions(**sizes, half_body_probability=0.3)
    start = time.perf_counter()
    paths = write_tfrecords(
        args.annotations,
        args.images,
        os.path.join(folder, "train"),
        person_crops=options,
    )
    seconds = time.perf_counter() - start
    with open(os.path.join(folder, "train-layout.json")) as handle:
        summary = json.load(handle)["person_crops"]
    return os.path.join(folder, "train-*"), {
        "write_seconds": round(seconds, 2),
        "record_megabytes": round(
            sum(os.path.getsize(path) for path in paths) / 1e6, 2
        ),
        "people": summary["people"],
        "regions_widened_for_half_body": summary["widened_for_half_body"],
    }


def person_crop_decode_only(pattern, batch_size):
    """The bound of the person-crop pipeline: read each record and
    decode its whole stored region, batched ragged."""
    import tensorflow as tf

    feature = {"image": tf.io.FixedLenFeature([], tf.string)}
    return (
        tf.data.Dataset.list_files(pattern, shuffle=False)
        .filter(lambda path: tf.strings.regex_full_match(path, ".*tfrecord"))
        .interleave(tf.data.TFRecordDataset)
        .shuffle(1000, seed=0)
        .repeat()
        .map(
            lambda record: tf.io.decode_jpeg(
                tf.io.parse_single_example(record, feature)["image"],
                channels=3,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .ragged_batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def person_crop_checks(instances, sizes, draws=20):
    """Regions vs the windows of `draws` augmentation draws of every
    person (a window beyond its region would read black), and the
    regions' share of their images."""
    import numpy as np

    from keras_evopose.data import SampleOptions
    from keras_evopose.data import coco_keypoints

    options = SampleOptions(**sizes, half_body_probability=0.3)
    regions, _ = coco_keypoints.person_crop_regions(
        instances.boxes,
        instances.keypoints,
        instances.image_sizes,
        instances.layout,
        options,
    )
    size = np.tile(instances.image_sizes[:, ::-1], 2)
    beyond = 0
    for seed in range(draws):
        _, windows = augmented_windows(instances, sizes, seed)
        windows = np.clip(windows.numpy(), 0, size)
        beyond += int(
            np.sum(
                np.any(windows[:, :2] < regions[:, :2], 1)
                | np.any(windows[:, 2:] > regions[:, 2:], 1)
            )
        )
    area = np.prod(regions[:, 2:] - regions[:, :2], 1) / np.prod(
        instances.image_sizes, 1
    )
    return {
        "windows_checked": draws * len(instances),
        "windows_beyond_region": beyond,
        "region_area_fraction_median": round(float(np.median(area)), 3),
    }


def compare_model_warp(args, sizes, pattern, batch_size):
    """Today's crops vs person-crop records warped by `CropWarp`, same
    draws (records in file order, no shuffle), every person once, in
    uint8 levels; heatmaps with augmentation and for evaluation."""
    import numpy as np

    from keras_evopose.data import IMAGE_STD
    from keras_evopose.data import coco_keypoints_dataset
    from keras_evopose.data import tfrecord_keypoints_dataset
    from keras_evopose.layers import CropWarp

    levels = np.asarray(IMAGE_STD, "float32") * 255.0
    warp = CropWarp(sizes["input_size"])
    result = {}
    for name, settings in (
        ("training", dict(TRAINING, shuffle=False)),
        ("evaluation", dict(training=False)),
    ):
        common = dict(batch_size=batch_size, **sizes, **settings)
        today = coco_keypoints_dataset(args.annotations, args.images, **common)
        crops = tfrecord_keypoints_dataset(pattern, warp="model", **common)
        pixel, heatmap = [], []
        for (image, heatmaps, _), (inputs, crop_heatmaps, _) in zip(
            today, crops
        ):
            difference = np.abs(np.asarray(warp(inputs)) - image.numpy())
            difference = (difference * levels).reshape(len(image), -1)
            pixel.append(difference)
            heatmap.append(np.abs(heatmaps.numpy() - crop_heatmaps.numpy()))
        pixel = np.concatenate(pixel)
        result[name] = {
            "samples": len(pixel),
            "pixel_max_levels": round(float(pixel.max()), 3),
            "pixel_mean_levels": round(float(pixel.mean()), 4),
            "sample_max_levels_median": round(
                float(np.median(pixel.max(1))), 3
            ),
            "heatmap_max_difference": float(max(h.max() for h in heatmap)),
        }
    return result


def crop_warp_milliseconds(dataset, input_size, batches=5):
    """Milliseconds per sample of `CropWarp` (compiled) on this CPU, over
    batches of the deferred-warp pipeline."""
    import tensorflow as tf

    from keras_evopose.layers import CropWarp

    warp = tf.function(CropWarp(input_size), reduce_retracing=True)
    inputs = [batch[0] for batch in dataset.take(batches)]
    for batch in inputs:  # one trace per padded shape
        warp(batch)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        count = 0
        for batch in inputs:
            warp(batch).numpy()
            count += int(batch["pixels"].shape[0])
        times.append((time.perf_counter() - start) / count)
    return round(1e3 * statistics.median(times), 3)


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
    parser.add_argument(
        "--baseline",
        default=None,
        help="an earlier coco_keypoints.py to time and compare with",
    )
    parser.add_argument(
        "--components",
        action="store_true",
        help="also time full decode, window decode and warp per sample",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    load_at_start = [round(load, 2) for load in os.getloadavg()]

    import tensorflow as tf

    from keras_evopose.data import coco_keypoints_dataset
    from keras_evopose.data import load_coco_instances
    from keras_evopose.data import tfrecord_keypoints_dataset

    height, width = (int(v) for v in args.input_size.split("x"))
    sizes = dict(
        input_size=(height, width), heatmap_size=(height // 4, width // 4)
    )
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
    data = (args.annotations, args.images)
    pipelines = {
        "pipeline": coco_keypoints_dataset(
            *data, batch_size=args.batch_size, repeat=True, **sizes, **TRAINING
        )
    }
    pipelines["window_decode_only"] = window_decode_only(
        instances, sizes, args.batch_size
    )
    pipelines["exact_window_decode_only"] = exact_window_decode_only(
        instances, sizes, args.batch_size
    )
    folder = tempfile.TemporaryDirectory()
    pattern, records = write_person_crops(args, sizes, folder.name)
    pipelines["person_crops_model_warp"] = tfrecord_keypoints_dataset(
        pattern,
        batch_size=args.batch_size,
        repeat=True,
        warp="model",
        shuffle_buffer=len(instances),
        **sizes,
        **TRAINING,
    )
    pipelines["person_crop_decode_only"] = person_crop_decode_only(
        pattern, args.batch_size
    )
    baseline = load_baseline(args.baseline) if args.baseline else None
    if baseline is not None:
        pipelines["baseline"] = baseline.coco_keypoints_dataset(
            *data, batch_size=args.batch_size, repeat=True, **sizes, **TRAINING
        )
    num_batches = max(1, args.samples // args.batch_size)
    rates = {"decode": [], **{name: [] for name in pipelines}}
    for _ in range(args.rounds):
        rates["decode"].append(
            samples_per_second(decode_only, num_batches, args.batch_size)
        )
        for name, dataset in pipelines.items():
            rates[name].append(
                samples_per_second(dataset, num_batches, args.batch_size)
            )
    result = {
        "input_size": f"{height}x{width}",
        "batch_size": args.batch_size,
        "samples_per_round": num_batches * args.batch_size,
        "rounds": args.rounds,
    }
    for name, values in rates.items():
        result[f"{name}_samples_per_second"] = round(
            statistics.median(values), 1
        )
    for name in pipelines:
        ratios = [p / d for p, d in zip(rates[name], rates["decode"])]
        result[f"{name}_ratio"] = round(statistics.median(ratios), 3)
        result[f"{name}_ratios_per_round"] = [round(r, 3) for r in ratios]
    if baseline is not None:
        # Same draws; the baseline had no border targets and black fill.
        comparable = dict(batch_size=args.batch_size, **sizes, **TRAINING)
        result["comparison"] = compare_samples(
            coco_keypoints_dataset(*data, out_of_crop="ignore", **comparable),
            baseline.coco_keypoints_dataset(*data, **comparable),
            num_batches=max(1, len(instances) // args.batch_size + 1),
        )
    if args.components:
        result["milliseconds_per_sample"] = component_milliseconds(
            instances, sizes
        )
    result["person_crops"] = {
        **records,
        **person_crop_checks(instances, sizes),
        "crop_warp_ms_per_sample_this_cpu": crop_warp_milliseconds(
            pipelines["person_crops_model_warp"], sizes["input_size"]
        ),
        "versus_pipeline": compare_model_warp(
            args, sizes, pattern, args.batch_size
        ),
    }
    folder.cleanup()
    result.update(
        cpu_count=os.cpu_count(),
        machine=platform.processor() or platform.machine(),
        tensorflow=tf.__version__,
        load_average_start=load_at_start,
        load_average_end=[round(load, 2) for load in os.getloadavg()],
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:36s} {value}")
    return result


if __name__ == "__main__":
    main()
