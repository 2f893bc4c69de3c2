"""`keras-evopose train`: train any EvoPose2D network into a run folder."""

import os
import sys

from keras_evopose.cli import UsageError
from keras_evopose.cli import add_distribution_arguments
from keras_evopose.cli import add_keypoint_layout_argument
from keras_evopose.cli import check_file
from keras_evopose.cli import check_input_size
from keras_evopose.cli import parse_size
from keras_evopose.cli import read_keypoint_layout

# Flags that describe the run: on --resume they come from train_config.json.
RUN_FLAGS = (
    "preset", "genotype", "from_search", "trial", "model", "input_size",
    "compound_scale", "annotations", "images", "val_annotations",
    "val_images", "epochs", "warmup_epochs", "batch_size", "steps_per_epoch",
    "base_learning_rate", "weight_decay", "half_body_probability", "augment",
    "seed", "precision", "output", "keypoint_layout", "tfrecords",
)  # fmt: skip
PATH_FLAGS = (
    "annotations", "images", "val_annotations", "val_images", "from_search",
    "model", "keypoint_layout", "tfrecords",
)  # fmt: skip


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a preset, genotype, search winner or .keras model",
        description=(
            "Trains an EvoPose2D network on a COCO keypoints JSON + images "
            "with the paper's recipe (Adam, learning rate scaled with the "
            "batch size, linear warm-up, cosine decay, target-weighted "
            "heatmap MSE) into a run folder that survives crashes: "
            "train_config.json, history.csv, curves.png, last.keras, "
            "best.keras (best val AP with validation data, else lowest "
            "loss) and a checkpoint every epoch; --resume RUN continues it."
        ),
    )
    network = parser.add_argument_group(
        "network (exactly one, unless --resume)"
    ).add_mutually_exclusive_group()
    network.add_argument("--preset", help="e.g. small, test")
    network.add_argument(
        "--genotype",
        help="block strings separated by spaces or commas, head steps "
        "included, e.g. 'ir_r1_k3_s1_e1_c16_se0.25 ... up_c128 up_c128' "
        "(stem, head and input size of small unless given)",
    )
    network.add_argument(
        "--from-search",
        metavar="DIR",
        help="a `keras-evopose search` folder: its best trial (or --trial) "
        "with the weights of its scored epoch",
    )
    network.add_argument(
        "--model", metavar="FILE.keras", help="continue or fine-tune a model"
    )
    network.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the run in this folder where it stopped",
    )
    parser.add_argument("--trial", help="trial id of --from-search")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument(
        "--input-size",
        help="HEIGHTxWIDTH input of whichever network, multiples of its "
        "stride (default: the network's own)",
    )
    sizes.add_argument(
        "--compound-scale",
        metavar="HxW",
        help="scale the genotype to this input with EvoPose2D's compound "
        "scaling (as M and L from S) and carry every weight that fits",
    )
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="YAML or JSON of TrainConfig settings (e.g. "
        "configs/evopose2d_s_train.yaml); flags override it",
    )
    parser.add_argument("--annotations", help="COCO JSON")
    parser.add_argument("--images", help="image folder")
    parser.add_argument(
        "--tfrecords",
        metavar="PATTERN",
        help="train on `keras-evopose write-tfrecords` shards (a glob, "
        "local or gs://) instead of --annotations/--images",
    )
    parser.add_argument("--val-annotations")
    parser.add_argument("--val-images")
    parser.add_argument("--epochs", type=int, help="default 200")
    parser.add_argument("--warmup-epochs", type=float, help="default 5")
    parser.add_argument("--batch-size", type=int, help="default 32")
    parser.add_argument(
        "--steps-per-epoch", type=int, help="default: people / batch size"
    )
    parser.add_argument(
        "--base-learning-rate", type=float, help="> 0, default 2.5e-4"
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        help="L2 on every conv kernel but the depthwise ones, as the paper "
        "(default 1e-5; 0 turns it off)",
    )
    parser.add_argument("--half-body-probability", type=float)
    parser.add_argument(
        "--no-augment",
        dest="augment",
        action="store_const",
        const=False,
        help="no scale/rotation/flip/half-body augmentation (the bundled "
        "43-image demo: a small net then fits its images in minutes)",
    )
    parser.add_argument("--seed", type=int, help="default 0")
    parser.add_argument(
        "--precision",
        choices=("float32", "mixed_bfloat16", "mixed_float16"),
        help="default float32 (the paper trained mixed_bfloat16 on TPUs)",
    )
    parser.add_argument(
        "--output", metavar="RUN", help="the run folder (new or empty)"
    )
    parser.add_argument(
        "--verbose",
        type=int,
        default=None,
        help="0 silent, 1 progress bar and a line per epoch, 2 one line "
        "per epoch (default: 1 on a terminal, else 2)",
    )
    add_keypoint_layout_argument(
        parser, "replaces the --annotations' (the model keeps it)"
    )
    add_distribution_arguments(parser, multi_worker=True)
    parser.set_defaults(func=run)


def _config_from_flags(args):
    from keras_evopose.cli.search import load_config_file
    from keras_evopose.training import TrainConfig

    file_values = {}
    if args.config:
        file_values = load_config_file(args.config)
        known = set(RUN_FLAGS)
        unknown = sorted(set(file_values) - known)
        if unknown:
            raise UsageError(
                f"config file {args.config}: unknown setting(s) {unknown}; "
                f"known: {sorted(known)}"
            )
        network_flags = [
            name
            for name in ("preset", "genotype", "from_search", "model")
            if getattr(args, name)
        ]
        if network_flags:
            # A network flag replaces the file's network.
            for name in ("preset", "genotype", "from_search", "model"):
                file_values.pop(name, None)
        for name, value in file_values.items():
            if getattr(args, name, None) is None:
                setattr(args, name, value)
    if not (args.preset or args.genotype or args.from_search or args.model):
        raise UsageError(
            "give a network: --preset, --genotype, --from-search DIR or "
            "--model FILE.keras (or --resume RUN)"
        )
    if args.output is None:
        raise UsageError("--output RUN is required")
    if args.tfrecords is None and (
        args.annotations is None or args.images is None
    ):
        raise UsageError(
            "give the training data: --annotations and --images, or "
            "--tfrecords PATTERN"
        )
    if args.trial and not args.from_search:
        raise UsageError("--trial needs --from-search")
    values = {
        name: getattr(args, name)
        for name in RUN_FLAGS
        if getattr(args, name, None) is not None
    }
    # Saved absolute in train_config.json: --resume works from any folder.
    for name in PATH_FLAGS:
        if name in values and "://" not in str(values[name]):
            values[name] = os.path.abspath(values[name])
    for flag in ("input_size", "compound_scale"):
        if flag in values:
            values[flag] = parse_size(
                values[flag], "--" + flag.replace("_", "-")
            )
    try:
        config = TrainConfig(**values)
    except ValueError as error:
        # "`base_learning_rate` must be ..." -> name the flag.
        text = str(error)
        for name in RUN_FLAGS:
            text = text.replace(f"`{name}`", "--" + name.replace("_", "-"))
        raise UsageError(text) from None
    if config.preset:
        from keras_evopose.cli import check_preset
        from keras_evopose.cli import preset_stride

        stride = preset_stride(check_preset(config.preset))
        if config.input_size:
            check_input_size(config.input_size, stride)
    if config.annotations:
        check_file(config.annotations, "--annotations")
        check_file(config.images, "--images", kind="folder")
    # Read now: a bad layout file is one line before any work.
    read_keypoint_layout(args)
    if config.val_annotations:
        check_file(config.val_annotations, "--val-annotations")
        check_file(config.val_images, "--val-images", kind="folder")
    if config.from_search:
        check_file(config.from_search, "--from-search", kind="folder")
    if config.model:
        check_file(config.model, "--model")
    if config.output.endswith(".keras"):
        raise UsageError(
            f"--output {config.output}: give a run folder (it will hold "
            "best.keras, last.keras and the checkpoints), e.g. --output "
            f"{config.output[: -len('.keras')]}"
        )
    return config


def run(args):
    from keras_evopose.cli import fit_verbosity
    from keras_evopose.distribute import StrategyUnavailableError
    from keras_evopose.distribute import multi_worker_role
    from keras_evopose.training import TrainConfig
    from keras_evopose.training import train_pose_model
    from keras_evopose.training.network import NetworkError
    from keras_evopose.training.train_pose_model import CONFIG_FILE
    from keras_evopose.training.train_pose_model import RunFolderError
    from keras_evopose.training.train_pose_model import TrainingDiverged
    from keras_evopose.training.train_pose_model import check_run_folder
    from keras_evopose.utils import FolderLockedError

    config = None
    try:
        if args.resume:
            given = [
                "--" + name.replace("_", "-")
                for name in (*RUN_FLAGS, "config")
                if getattr(args, name, None) is not None
            ]
            if given:
                raise UsageError(
                    f"--resume takes the run's own settings from "
                    f"{args.resume}/{CONFIG_FILE}; drop {', '.join(given)}"
                )
            check_run_folder(args.resume, resume=True)
            try:
                config = TrainConfig.load(args.resume)
            except ValueError as error:
                raise UsageError(str(error)) from None
        else:
            config = _config_from_flags(args)
            # Before any work: a missing or read-only folder fails now
            # (on the chief: the other workers do not write it).
            if not (args.multi_worker and not multi_worker_role().is_chief):
                check_run_folder(config.output)
        verbose = fit_verbosity() if args.verbose is None else args.verbose
        outcome = train_pose_model(
            config,
            resume=bool(args.resume),
            verbose=verbose,
            tpu=args.tpu,
            mirrored=args.mirrored,
            multi_worker=args.multi_worker,
        )
    except (
        RunFolderError,
        NetworkError,
        FolderLockedError,
        StrategyUnavailableError,
    ) as error:
        raise UsageError(str(error)) from None
    except TrainingDiverged as error:
        print(f"keras-evopose train: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        import json
        import pathlib

        if config is None:
            raise

        run = pathlib.Path(config.output)
        if not args.resume and not (run / CONFIG_FILE).exists():
            print(
                "keras-evopose train: interrupted before the first epoch; "
                f"nothing was saved in {run}: run the same command again",
                file=sys.stderr,
            )
            return 130
        try:
            epoch = json.loads((run / "checkpoint.json").read_text())["epoch"]
        except (OSError, ValueError, KeyError):
            epoch = 0
        print(
            f"keras-evopose train: interrupted; {run} keeps epoch {epoch}. "
            f"Continue with: keras-evopose train --resume {run}",
            file=sys.stderr,
        )
        return 130
    best = outcome["best"]
    best_text = (
        f"best {best['metric']} {best['value']:.4g} at epoch {best['epoch']}"
        if best
        else "no epoch completed"
    )
    if args.multi_worker and not multi_worker_role().is_chief:
        role = multi_worker_role()
        print(
            f"worker {role.index} of {role.count}: {outcome['epochs']}/"
            f"{config.epochs} epochs, {best_text}; worker 0 wrote "
            f"{config.output}"
        )
        return 0
    print(
        f"{outcome['output']}: {outcome['epochs']}/{config.epochs} epochs, "
        f"{best_text}; best.keras, last.keras, history.csv, curves.png"
    )
    return 0
