"""Encoded image files: integrity checks and (windowed) decoding.

The pipeline and `keras-evopose check-data` use the same checks, so a file
that check-data passes never stops training, and a bad file is named.
"""

import concurrent.futures
import os
import re

# First bytes of the image formats `tf.io.decode_image` reads (JPEG, PNG,
# GIF, BMP): checked before decoding so a bad file is named in the error.
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")
# Last bytes of a complete JPEG (end-of-image marker) and PNG (IEND chunk):
# a truncated body lacks them. Searched in the final bytes, since some
# writers append padding after the marker.
IMAGE_TRAILERS = {
    b"\xff\xd8\xff": b"\xff\xd9",
    b"\x89PNG": b"IEND\xaeB`\x82",
}
TRAILER_SEARCH_BYTES = 32


def integrity_checks(encoded, source):
    """`tf.debugging.Assert` ops that fail, naming `source`, when `encoded`
    is not a JPEG/PNG/GIF/BMP file or a JPEG/PNG whose end is missing."""
    import tensorflow as tf

    def starts_with(signature):
        return tf.equal(
            tf.strings.substr(encoded, 0, len(signature)), signature
        )

    checks = [
        tf.debugging.Assert(
            tf.reduce_any([starts_with(s) for s in IMAGE_SIGNATURES]),
            ["Not a JPEG/PNG/GIF/BMP image:", source],
            summarize=1,
        )
    ]
    # The last bytes, left-padded so short files need no special case.
    padded = tf.strings.join([b"\0" * TRAILER_SEARCH_BYTES, encoded])
    tail = tf.strings.substr(
        padded,
        tf.strings.length(padded) - TRAILER_SEARCH_BYTES,
        TRAILER_SEARCH_BYTES,
    )
    for signature, trailer in IMAGE_TRAILERS.items():
        offsets = tf.range(TRAILER_SEARCH_BYTES - len(trailer) + 1)
        pieces = tf.strings.substr(
            tf.fill(tf.shape(offsets), tail),
            offsets,
            tf.fill(tf.shape(offsets), len(trailer)),
        )
        complete = tf.reduce_any(tf.equal(pieces, trailer))
        checks.append(
            tf.debugging.Assert(
                tf.logical_or(tf.logical_not(starts_with(signature)), complete),
                [
                    "Truncated image (its end marker is missing; "
                    "`keras-evopose check-data` lists every bad file):",
                    source,
                ],
                summarize=1,
            )
        )
    return checks


def decode_window(encoded, window, source, record_size=None):
    """Decodes the part of an encoded image inside `window`.

    JPEGs decode only that region (`decode_and_crop_jpeg`: the same pixels
    as a full decode, far less work for a small person in a large image);
    other formats decode fully and are sliced. A file that fails
    `integrity_checks` stops the pipeline with an error naming `source`.

    Args:
        encoded: scalar string tensor, the file's bytes.
        window: int32 `[x0, y0, x1, y1)` (may extend beyond the image).
        source: scalar string tensor naming the file in errors.
        record_size: optional int32 `(height, width)` the annotations give
            the image; a file of another size stops the pipeline naming
            it (its coordinates would put every crop in the wrong place).

    Returns:
        `(pixels, origin, image_size)`: the uint8 window clipped to the
        image (at least 1x1), its top-left `(x, y)` in the image and the
        full image `(height, width)`.
    """
    import tensorflow as tf

    def clip(size):
        limit = tf.stack([size[1], size[0]])
        low = tf.clip_by_value(window[:2], 0, limit - 1)
        high = tf.clip_by_value(window[2:], low + 1, limit)
        return low, high

    def jpeg():
        size = tf.io.extract_jpeg_shape(encoded, output_type="int32")[:2]
        low, high = clip(size)
        pixels = tf.image.decode_and_crop_jpeg(
            encoded,
            tf.stack([low[1], low[0], high[1] - low[1], high[0] - low[0]]),
            channels=3,
        )
        return pixels, low, size

    def other():
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        size = tf.shape(image, out_type="int32")[:2]
        low, high = clip(size)
        return image[low[1] : high[1], low[0] : high[0]], low, size

    with tf.control_dependencies(integrity_checks(encoded, source)):
        is_jpeg = tf.equal(
            tf.strings.substr(encoded, 0, len(IMAGE_SIGNATURES[0])),
            IMAGE_SIGNATURES[0],
        )
        pixels, origin, size = tf.cond(is_jpeg, jpeg, other)
    if record_size is not None:
        record_size = tf.cast(record_size, "int32")
        sizes = tf.strings.as_string(tf.stack([size, record_size]))
        mismatch = tf.strings.join(
            [
                source,
                " is ",
                sizes[0, 1],
                "x",
                sizes[0, 0],
                " but its record in the annotations says ",
                sizes[1, 1],
                "x",
                sizes[1, 0],
                " (width x height)",
            ]
        )
        check = tf.debugging.Assert(
            tf.reduce_all(tf.equal(size, record_size)),
            [
                "the annotation coordinates would be in another frame; fix "
                "the record width/height or the file:",
                mismatch,
            ],
            summarize=1,
        )
        with tf.control_dependencies([check]):
            pixels = tf.identity(pixels)
    pixels.set_shape((None, None, 3))
    return pixels, origin, size


def _decode_problem(path, record_size=None):
    """None if `path` passes the pipeline's checks and decodes (at its
    record's `(height, width)`, if given), else why."""
    import tensorflow as tf

    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            encoded = tf.constant(handle.read())
        with tf.control_dependencies(integrity_checks(encoded, path)):
            image = tf.io.decode_image(
                encoded, channels=3, expand_animations=False
            )
    except (tf.errors.OpError, OSError) as error:
        message = getattr(error, "message", str(error))
        # Keep the decoder's or the check's own words, on one line.
        message = message.split("Summarized data: ")[-1]
        return " ".join(message.split())[:300]
    height, width = (int(side) for side in image.shape[:2])
    if record_size is not None and (height, width) != tuple(record_size):
        return (
            f"is {width}x{height} but its record in the annotations says "
            f"{record_size[1]}x{record_size[0]} (width x height): the "
            "annotation coordinates would be in another frame; fix the "
            "record width/height or the file"
        )
    return None


def unreadable_images(paths, verbose=True, num_threads=None, sizes=None):
    """Decodes every image in `paths` fully, as training would.

    Args:
        paths: image paths (duplicates are read once).
        verbose: bool, show a progress bar.
        num_threads: int, parallel decodes; defaults to the CPU count.
        sizes: optional `(height, width)` per path, as the annotations
            record it; an image of another size is reported.

    Returns:
        dict of path -> why it cannot be used (empty when all decode).
    """
    import keras

    records = {}
    if sizes is not None:
        records = {
            str(path): tuple(int(side) for side in size)
            for path, size in zip(paths, sizes)
        }
    paths = sorted(set(map(str, paths)))
    progress = keras.utils.Progbar(len(paths), interval=1.0, unit_name="image")
    problems = {}
    with concurrent.futures.ThreadPoolExecutor(
        num_threads or os.cpu_count() or 1
    ) as pool:
        for index, (path, problem) in enumerate(
            zip(
                paths,
                pool.map(
                    _decode_problem, paths, [records.get(p) for p in paths]
                ),
            ),
            1,
        ):
            if problem is not None:
                problems[path] = problem
            if verbose:
                progress.update(index)
    if verbose:
        print()
    return problems


# `tf.debugging.Assert` of the data pipeline's image checks:
# "assertion failed: [Not a JPEG/PNG/GIF/BMP image:] [/data/x.jpg]".
_FILE_ASSERTION = re.compile(r"assertion failed: \[([^\]]*)\] \[([^\]]*)\]")
# TensorFlow errors a file can cause (named, not imported: no TensorFlow
# import here).
_FILE_ERRORS = (
    "InvalidArgumentError",
    "NotFoundError",
    "DataLossError",
    "PermissionDeniedError",
    "UnknownError",
)
_FILE_WORDS = ("jpeg", "png", "image", "decode", "no such file", "open")


def environment_cause(error):
    """One line naming the file or I/O error behind a failure (of a
    search's trial, of a command), or `None` when the error is not the
    environment's (a trial's network, its loss)."""
    from keras_evopose.utils.state_files import StateFileError

    if isinstance(error, StateFileError):
        return str(error)
    if isinstance(error, OSError):
        if error.filename:
            return f"{error.strerror or error}: {error.filename}"
        return " ".join(str(error).split())
    if type(error).__name__ not in _FILE_ERRORS:
        return None
    text = str(error)
    match = _FILE_ASSERTION.search(text)
    if match:
        return f"{match.group(2)}: {match.group(1).rstrip(': ')}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if any(word in line.lower() for word in _FILE_WORDS):
            if "[[" in line:
                continue
            return (
                f"an image the decoder cannot read ({line}; keras-evopose "
                "check-data names every unreadable image)"
            )
    return None
