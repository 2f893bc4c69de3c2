"""`keras-evopose search`: EvoPose2D neuroevolution on COCO keypoints.

Parses flags into a `keras_evopose.search.COCOSearchConfig` and calls
`keras_evopose.search.run_coco_search` (the whole search, one call). With
no arguments it runs the README's main job: a small search over the
`test` preset's genotype on the bundled real COCO images: children train on
`data/coco_kpt_extra` and are scored on the people of
`data/coco_kpt_mini/val2017`, whom they never see. With other
`--annotations` and no `--val-annotations`, those are split by image id
(`keras_evopose.data.split_coco_by_image`).

Distributed (keras-tuner's chief/worker mode): start one process with
`KERASTUNER_TUNER_ID=chief` and each worker with its own id (`tuner0`,
`tuner1`, ...), all with `KERASTUNER_ORACLE_IP`/`KERASTUNER_ORACLE_PORT`
naming the chief and the same `--output` on shared storage. Only the chief
writes results. A dead worker's trial goes to another worker after
`--heartbeat-timeout` seconds; restart a dead worker with the same
command (same id: it takes its interrupted trial back at once).
"""

import dataclasses
import json
import logging
import pathlib
import sys

from keras_evopose.cli import UsageError
from keras_evopose.cli import add_distribution_arguments
from keras_evopose.cli import check_file
from keras_evopose.cli import check_preset

# Deprecated spellings still accepted: flag -> setting.
ALIASES = {"--image-size": "input_size"}


class PrintedLines(logging.Handler):
    """Prints each message as a line of the command's output (stdout),
    beside its progress lines."""

    def emit(self, record):
        print(self.format(record), flush=True)


def _fields():
    from keras_evopose.search.coco_search_config import COCOSearchConfig

    return dataclasses.fields(COCOSearchConfig)


def _flag(name):
    return "--" + name.replace("_", "-")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "search",
        help="evolve EvoPose2D networks (Pareto: loss vs parameters)",
        description=(
            "Runs an EvoPose2D neuroevolution search on keras-tuner: each "
            "child mutates one gene of a parent, inherits its weights and "
            "trains briefly; writes pareto.json, pareto.png, fitness.png "
            "and best_model.keras. Without arguments: a small search on "
            "the bundled COCO images (a few minutes on 2 CPU cores)."
        ),
    )
    parser.add_argument(
        "--config", default=None, help="YAML or JSON file of settings"
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the search in DIR with its saved settings",
    )
    parser.add_argument(
        "--rebuild-config",
        action="store_true",
        help="with --resume, where search_config.json was lost: the "
        "settings come from --config and the flags instead (the saved "
        "Oracle settings are checked against them)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: run every failed trial again (trials failed "
        "by a bad or missing file or an I/O error always are)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start over even if OUTPUT already holds a search",
    )
    parser.add_argument(
        "--verbose", type=int, default=1, help="0: quiet, 1: progress"
    )
    for field in _fields():
        flags = [_flag(field.name)]
        flags += [a for a, name in ALIASES.items() if name == field.name]
        # Kept as text: resolve_config reads it by the setting's type
        # (COCOSearchConfig.parse), so a bad value is one line.
        parser.add_argument(
            *flags,
            dest=field.name,
            default=None,
            help=f"{field.metadata['help']} (default: {field.default})",
        )
    add_distribution_arguments(parser)
    parser.set_defaults(func=run)


def load_config_file(path):
    """Reads a YAML or JSON settings file into a dict."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UsageError(f"config file {path}: no such file; check the path")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    except ValueError as error:  # JSON and YAML errors alike.
        raise UsageError(f"config file {path} cannot be read: {error}")
    if not isinstance(values, dict):
        raise UsageError(f"config file {path} must hold a mapping of settings")
    return values


def resolve_config(args):
    """Defaults < saved settings (--resume) < config file < flags."""
    from keras_evopose.search import ResumeError
    from keras_evopose.search.coco_search import CONFIG_FILE
    from keras_evopose.search.coco_search import load_saved_config
    from keras_evopose.search.coco_search import search_role
    from keras_evopose.search.coco_search import wait_for_saved_config
    from keras_evopose.search.coco_search_config import COCOSearchConfig

    values = {}
    try:
        config_values = load_config_file(args.config) if args.config else {}
        if args.resume and args.rebuild_config:
            saved = pathlib.Path(args.resume) / CONFIG_FILE
            if saved.exists():
                raise UsageError(
                    f"--rebuild-config: {saved} exists; resume without "
                    "the flag (it rebuilds only a lost file)"
                )
        elif args.resume:
            values.update(load_saved_config(args.resume).to_dict())
        elif search_role() == "worker":
            # A worker adopts its chief's saved settings; what it is
            # given on top must agree with them (run_coco_search checks).
            output = args.output or config_values.get(
                "output", COCOSearchConfig.output
            )
            values.update(wait_for_saved_config(output).to_dict())
        if args.config:
            COCOSearchConfig.from_dict({**values, **config_values}, args.config)
            values.update(config_values)
        for field in _fields():
            text = getattr(args, field.name)
            if text is not None:
                try:
                    values[field.name] = COCOSearchConfig.parse(
                        field.name, text
                    )
                except ValueError as error:
                    raise UsageError(f"{_flag(field.name)}: {error}") from None
        if args.preset is not None:
            # Named by its flag, with the closest spelling, as elsewhere.
            check_preset(args.preset)
        if args.resume:
            values["output"] = str(args.resume)
        config = COCOSearchConfig.from_dict(values)
        # The ancestor, its stride and the input size (a multiple of it).
        config.resolve()
    except (ValueError, ResumeError) as error:
        raise UsageError(str(error)) from None
    from keras_evopose.data.coco_split import read_coco_json

    for name in ("annotations", "images", "val_annotations", "val_images"):
        path = getattr(config, name)
        if path is None:
            continue
        flag = _flag(name)
        if name.endswith("images"):
            check_file(path, flag, kind="folder")
            continue
        check_file(path, flag)
        try:
            read_coco_json(path)
        except ValueError as error:
            raise UsageError(f"{flag}: {error}") from None
    return config


def run(args):
    from keras_evopose.distribute import strategy_from_flags
    from keras_evopose.search import ResumeError
    from keras_evopose.search import run_coco_search
    from keras_evopose.utils.state_files import DiskFullError

    config = resolve_config(args)
    # --tpu / --mirrored: a tf.distribute strategy keras-tuner builds,
    # compiles and fits every child in (TensorFlow backend).
    strategy = None
    if args.tpu or args.mirrored:
        strategy = strategy_from_flags(tpu=args.tpu, mirrored=args.mirrored)
    from keras_evopose.search import resumable_oracle

    # A failed trial is one line (its traceback stays in its trial.json),
    # not keras-tuner's printed stack trace.
    resumable_oracle.show_trial_tracebacks(False)
    # The Oracle's messages (a silent worker's trial handed on) are lines
    # of the search's output, not log records on stderr.
    oracle_lines = PrintedLines()
    oracle_log = resumable_oracle.logger
    propagate = oracle_log.propagate
    oracle_log.addHandler(oracle_lines)
    oracle_log.propagate = False
    try:
        outcome = run_coco_search(
            config,
            resume=bool(args.resume),
            overwrite=args.overwrite,
            verbose=args.verbose,
            distribution_strategy=strategy,
            retry_failed=args.retry_failed,
        )
    except ResumeError as error:
        # A state the user can act on (the message says how); a bug
        # still shows its traceback.
        raise UsageError(str(error)) from None
    except DiskFullError as error:
        raise UsageError(
            f"{error}, then continue with: keras-evopose search --resume "
            f"{config.output}"
        ) from None
    except KeyboardInterrupt:
        # Every ended trial is saved; the running one re-runs on resume.
        print(
            "keras-evopose search: interrupted; continue with: "
            f"keras-evopose search --resume {config.output}",
            file=sys.stderr,
        )
        return 130
    finally:
        oracle_log.removeHandler(oracle_lines)
        oracle_log.propagate = propagate
    if outcome.role == "worker":
        if args.verbose:
            print("search over: the chief writes the results")
        return 0
    output = outcome.output
    result = outcome.result
    if outcome.stop_reason:
        print(f"keras-evopose search: stopped early: {outcome.stop_reason}")
    if result["best"] is None:
        print(
            "keras-evopose search: no trial completed, so there is no best "
            f"model; see the failed trials' messages in {output}/tuner/"
            "trial_*/trial.json (a trial failed by a bad or missing file "
            "runs again on keras-evopose search --resume "
            f"{output} once the file is fixed; --retry-failed re-runs "
            "every failed trial)"
        )
        return 1
    if args.verbose:
        print(
            "Wrote "
            + ", ".join(
                str(output / name)
                for name in (
                    "pareto.json",
                    "pareto.png",
                    "fitness.png",
                    "best_model.keras",
                )
            )
        )
    return 1 if outcome.stopped_by_failures else 0
