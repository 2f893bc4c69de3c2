"""The `keras-evopose` command line.

Each subcommand lives in its own module of this package with two functions:
`add_parser(subparsers)` (registers the subcommand and its flags and sets
`func`) and the function it points to, which returns an exit code. To add a
subcommand, write the module and list it in `SUBCOMMAND_MODULES`.
"""

import argparse
import importlib
import os
import sys

SUBCOMMAND_MODULES = [
    "keras_evopose.cli.info",
    "keras_evopose.cli.search",
    "keras_evopose.cli.train",
    "keras_evopose.cli.evaluate",
    "keras_evopose.cli.predict",
    "keras_evopose.cli.check_data",
    "keras_evopose.cli.export",
]


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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-evopose",
        description=(
            "EvoPose2D pose networks for Keras 3: inspect presets, search, "
            "train, evaluate, export and predict."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, FileNotFoundError) as error:
        print(f"keras-evopose {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
