"""The `keras-evopose` command line.

Each subcommand lives in its own module of this package with two functions:
`add_parser(subparsers)` (registers the subcommand and its flags and sets
`func`) and the function it points to, which returns an exit code. To add a
subcommand, write the module and list it in `SUBCOMMANDS`; a module that
sets `IMPORTS_FRAMEWORKS = False` (`info`) runs without Keras.

Start-up is kept fast and quiet: `keras-evopose --help`, `--version` and
usage errors import neither Keras nor TensorFlow (only the chosen
subcommand's module is imported), and Keras/TensorFlow are imported once,
after `--log-level` has set TensorFlow's log threshold, with the start-up
lines of TensorFlow's native libraries (CUDA probing, CPU features, oneDNN)
dropped unless `--log-level info` or `debug` asks for them.
"""

import argparse
import contextlib
import importlib
import logging
import os
import re
import sys
import tempfile

# name: (module, one-line help for `keras-evopose --help`).
SUBCOMMANDS = {
    "info": (
        "keras_evopose.cli.info",
        "print a preset's genotype, input size, params and FLOPs",
    ),
    "search": (
        "keras_evopose.cli.search",
        "evolve EvoPose2D networks (Pareto: loss vs parameters)",
    ),
    "train": (
        "keras_evopose.cli.train",
        "train any EvoPose2D network into a crash-safe run folder",
    ),
    "evaluate": (
        "keras_evopose.cli.evaluate",
        "COCO keypoint AP/AR of a model on a COCO JSON + images",
    ),
    "predict": (
        "keras_evopose.cli.predict",
        "predict keypoints for person boxes and draw them on the image",
    ),
    "check-data": (
        "keras_evopose.cli.check_data",
        "validate a COCO keypoints dataset and report its ceiling AP",
    ),
    "write-tfrecords": (
        "keras_evopose.cli.write_tfrecords",
        "write a COCO keypoints JSON + images as sharded TFRecords",
    ),
    "export": (
        "keras_evopose.cli.export",
        "write a LiteRT .tflite (int8 by --int8) or an ONNX file",
    ),
}

LOG_LEVELS = ("debug", "info", "warning", "error")
# TF_CPP_MIN_LOG_LEVEL per --log-level: 0 shows everything, 2 only errors.
# TensorFlow's native warnings are start-up and end-of-dataset chatter
# (e.g. "Local rendezvous is aborting ... End of sequence"), so the
# default "warning" keeps only its errors.
_TF_CPP_LEVELS = {"debug": "0", "info": "0", "warning": "2", "error": "3"}
# A line of absl/TensorFlow native logging, severity + date, time, thread,
# file:line: "I0000 00:00:1795546291.206504   10407 port.cc:153] ...".
_NATIVE_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\] ")
_NATIVE_LOG_NOTICES = (
    "WARNING: All log messages before absl::InitializeLog() is called",
    # The second line of cpu_feature_guard's message.
    "To enable the following instructions:",
    # LiteRT's own logger ("INFO: Created TensorFlow Lite XNNPACK
    # delegate for CPU.") and the int8 calibrator's printf.
    "INFO: ",
    "fully_quantize: ",
)


class UsageError(Exception):
    """A user error: printed as one line, exit status 2, no traceback."""


def parse_size(text, name="size"):
    """`"256x192"` -> `(256, 192)` (height x width); UsageError otherwise."""
    try:
        height, width = (int(value) for value in str(text).lower().split("x"))
    except ValueError:
        raise UsageError(
            f"{name} must be HEIGHTxWIDTH, e.g. 256x192; received {text!r}"
        ) from None
    if height <= 0 or width <= 0:
        raise UsageError(f"{name} must be positive; received {text!r}")
    return height, width


def check_input_size(size, stride, name="--input-size"):
    """Checks an input `(height, width)` against a network's stride.

    Every side must be a positive multiple of `stride` (the backbone's
    output stride: 16 for `small`, 32 for `extra_small`, see
    `preset_stride`), else the heatmaps would not line up with the
    targets (and a side below the stride leaves nothing to predict).

    Args:
        size: `(height, width)` in pixels, e.g. from `parse_size`.
        stride: int, the total downsampling each side must be divisible by.
        name: the flag or setting named in the error message.

    Returns:
        `size` as a tuple of ints.

    Raises:
        UsageError: naming `name`, the stride and the nearest valid sizes.
    """
    from keras_evopose.utils.validation import check_multiple_of

    try:
        return check_multiple_of(size, stride, name)
    except ValueError as error:
        raise UsageError(str(error)) from None


def preset_stride(preset):
    """The output stride of a preset's backbone (16 for `small`), from its
    genotype, without building it; UsageError for an unknown preset."""
    from keras_evopose.models import presets
    from keras_evopose.models.genotype import Genotype

    try:
        genotype = presets.preset_arguments(preset, "backbone")["genotype"]
    except ValueError as error:
        raise UsageError(str(error)) from None
    return Genotype.from_strings(genotype).output_stride


def add_distribution_arguments(parser, multi_worker=False):
    """Adds `--tpu` and `--mirrored` (and with `multi_worker`,
    `--multi-worker`) to an argparse parser (for the `train` and `search`
    commands; pass them to `keras_evopose.distribute.distribution_scope`)."""
    group = parser.add_mutually_exclusive_group()
    if multi_worker:
        group.add_argument(
            "--multi-worker",
            action="store_true",
            help="data parallel over several machines: run the same command "
            "on each, with the cluster in TF_CONFIG (TensorFlow) or "
            "KERAS_DISTRIBUTION_* (JAX); worker 0 writes --output",
        )
    group.add_argument(
        "--tpu",
        default=None,
        help="train on a TPU: 'local' on a TPU VM, or a Cloud TPU name or "
        "grpc:// address",
    )
    group.add_argument(
        "--mirrored",
        action="store_true",
        help="data parallel over all local GPUs (MirroredStrategy; "
        "keras.distribution.DataParallel under JAX)",
    )


def check_file(path, name, kind="file"):
    """UsageError naming `name` if a local `path` is missing (URLs pass)."""
    path = str(path)
    if "://" in path:
        return path
    exists = os.path.isdir(path) if kind == "folder" else os.path.isfile(path)
    if not exists:
        if os.path.exists(path):
            other = "a file" if kind == "folder" else "a folder"
            raise UsageError(
                f"{name} {path} is {other}; pass the {kind} it should name"
            )
        raise UsageError(f"{name} {path}: no such {kind}; check the path")
    return path


def check_output(path, name, inputs=()):
    """UsageError naming `name` unless `path` can be written: its folder
    exists, it is not a folder, it is none of `inputs` (checked before
    the work, so a long run does not end in a lost result)."""
    path = str(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{name} {path} is a folder; pass a file path")
    if not os.path.isdir(folder):
        raise UsageError(
            f"{name} {path}: folder {folder} does not exist; create it or "
            "pass another path"
        )
    for source in inputs:
        same = os.path.abspath(source) == os.path.abspath(path) or (
            os.path.exists(source)
            and os.path.exists(path)
            and os.path.samefile(source, path)
        )
        if same:
            raise UsageError(
                f"{name} {path} is the input {source}; pass another path "
                "(the input is never overwritten)"
            )
    return path


def check_preset(name, flag="--preset"):
    """UsageError naming `flag` and the presets unless `name` is one
    (checked before anything is read, built or written)."""
    import difflib

    from keras_evopose.models import presets

    names = presets.list_presets()
    if name in names:
        return name
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(
        f"{flag} {name!r}: unknown preset{hint}; available: " + ", ".join(names)
    )


def add_keypoint_layout_argument(parser, purpose):
    """`--keypoint-layout FILE.json`: a keypoint category's fields."""
    parser.add_argument(
        "--keypoint-layout",
        default=None,
        metavar="FILE.json",
        help="keypoint layout: a JSON object with a COCO keypoint "
        "category's fields (keypoints, skeleton, optional flip_pairs as "
        f"pairs of names, oks_sigmas, upper_body); {purpose}",
    )


def read_keypoint_layout(args):
    """The `KeypointLayout` of `--keypoint-layout`, or `None`."""
    path = getattr(args, "keypoint_layout", None)
    if not path:
        return None
    check_file(path, "--keypoint-layout")
    from keras_evopose.data import KeypointLayout

    try:
        return KeypointLayout.from_json(path)
    except ValueError as error:
        raise UsageError(f"--keypoint-layout {error}") from None


def fit_verbosity():
    """`model.fit(verbose=...)`: a live bar on a terminal, else one line
    per epoch."""
    return 1 if sys.stdout.isatty() else 2


def _is_native_log_line(line):
    return bool(_NATIVE_LOG_LINE.match(line)) or line.startswith(
        _NATIVE_LOG_NOTICES
    )


@contextlib.contextmanager
def native_log_filter(keep=False):
    """Drops the log lines that native (C++) libraries write to file
    descriptor 2 inside the block; keeps every other line.

    TensorFlow and LiteRT's converter log through absl before it is
    initialized, which `TF_CPP_MIN_LOG_LEVEL` does not reach, so the only
    way to quieten them is to catch what they write. The captured text is
    replayed after the block; if the block raises, all of it is replayed.

    Args:
        keep: bool, replay everything (`--log-level info` or `debug`).
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # No file descriptor 2 (embedded interpreters).
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            for line in text.splitlines(keepends=True):
                if keep or failed or not _is_native_log_line(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def keep_native_logs(args):
    """Whether `--log-level` asks for native libraries' log lines."""
    return getattr(args, "log_level", None) in ("debug", "info")


def _configure_logging(level, explicit):
    """Log thresholds for TensorFlow (before it is imported) and Python."""
    if explicit or "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = _TF_CPP_LEVELS[level]
    logging.basicConfig(
        level=level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )


def _import_frameworks(level):
    """Imports Keras (and through it TensorFlow) and registers this
    package's serializable classes, with the native start-up lines
    filtered; then sets TensorFlow's Python logger to `level`."""
    keep = level in ("debug", "info")
    with native_log_filter(keep=keep):
        import keras

        import keras_evopose

        keras_evopose._import_serializable()
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            # Device discovery probes CUDA (cuInit) and logs; doing it
            # here keeps those lines inside the filter.
            tf.config.list_physical_devices()
            tf.get_logger().setLevel(level.upper())


def build_parser(commands=None):
    """The argument parser.

    Args:
        commands: the subcommands whose modules are imported and whose
            flags are registered; `None` for all. The others are listed
            in `--help` by name and help line only.
    """
    from keras_evopose.version import __version__

    parser = argparse.ArgumentParser(
        prog="keras-evopose",
        description=(
            "EvoPose2D pose networks for Keras 3: inspect presets, search, "
            "train, evaluate, export and predict."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=None,
        help="threshold for TensorFlow's and Python's log messages "
        "(default: warning; info brings back TensorFlow's start-up lines)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if commands is None or name in commands:
            importlib.import_module(module_name).add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def _find_command(argv):
    """The subcommand named in `argv`, or None (no import needed)."""
    skip_value = False
    for token in argv:
        if skip_value:
            skip_value = False
        elif token == "--log-level":
            skip_value = True
        elif not token.startswith("-"):
            return token if token in SUBCOMMANDS else None
    return None


def _format_error(error):
    if isinstance(error, OSError) and error.filename and error.strerror:
        # "[Errno 2] No such file..." -> "No such file or directory: PATH".
        return f"{error.strerror}: {error.filename}"
    return " ".join(str(error).split()) or type(error).__name__


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    # Into a file or pipe Python buffers stdout in blocks: a `nohup`
    # search or train would show its per-trial/per-epoch lines only at
    # the end. Each line goes out as it is printed.
    if hasattr(sys.stdout, "reconfigure") and not sys.stdout.isatty():
        sys.stdout.reconfigure(line_buffering=True)
    command = _find_command(argv)
    pre_parser = argparse.ArgumentParser(prog="keras-evopose", add_help=False)
    pre_parser.add_argument("--log-level", choices=LOG_LEVELS)
    explicit_level = pre_parser.parse_known_args(argv)[0].log_level
    level = explicit_level or "warning"
    _configure_logging(level, explicit=explicit_level is not None)
    keep_native_logs = level in ("debug", "info")
    # Some subcommand modules import Keras at the top: filter that too.
    with native_log_filter(keep=keep_native_logs):
        parser = build_parser([command] if command else [])
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    user_errors = (UsageError, FileNotFoundError)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    if getattr(module, "IMPORTS_FRAMEWORKS", True):
        try:
            _import_frameworks(level)
        except KeyboardInterrupt:
            # Ctrl-C while TensorFlow loads: nothing has started yet.
            print(
                f"keras-evopose {args.command}: interrupted while starting; "
                "nothing was written",
                file=sys.stderr,
            )
            return 130
        from keras_evopose.data.coco_instances import DataFileError
        from keras_evopose.data.keypoint_layout import KeypointLayoutError
        from keras_evopose.distribute import StrategyUnavailableError
        from keras_evopose.utils.folder_lock import FolderLockedError
        from keras_evopose.utils.state_files import DiskFullError
        from keras_evopose.utils.state_files import StateFileError

        user_errors += (
            DataFileError,
            DiskFullError,
            StateFileError,
            StrategyUnavailableError,
            FolderLockedError,
            KeypointLayoutError,
        )
        from keras_evopose.utils.interrupts import recorded_interrupts

        with recorded_interrupts():
            return _run_command(args, user_errors)
    return _run_command(args, user_errors)


def _run_command(args, user_errors):
    try:
        return int(args.func(args) or 0)
    except user_errors as error:
        # Only errors a user can act on are one line; anything else is a
        # bug and shows its traceback.
        print(
            f"keras-evopose {args.command}: error: {_format_error(error)}",
            file=sys.stderr,
        )
        return 2
    except Exception as error:
        # A bad image stops TensorFlow's input pipeline with an error
        # that buries the file's name: say only that, and the way out.
        cause = _data_file_cause(error)
        if cause is None:
            raise
        print(
            f"keras-evopose {args.command}: error: {cause}; fix or remove "
            "the file",
            file=sys.stderr,
        )
        return 2


def _data_file_cause(error):
    if isinstance(error, OSError):
        return None  # Not an input pipeline's error: a traceback is due.
    from keras_evopose.data.image_files import environment_cause

    return environment_cause(error)


if __name__ == "__main__":
    sys.exit(main())
