"""`keras-evopose info PRESET`: genotype, input size, params and FLOPs.

Reads the preset table only: imports neither Keras nor TensorFlow
(`IMPORTS_FRAMEWORKS`), so it answers in a fraction of a second.
"""

import json

# main() skips importing Keras/TensorFlow for this subcommand.
IMPORTS_FRAMEWORKS = False


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "info",
        description=(
            "Prints a preset's genotype, input size, parameter "
            "count (BN statistics included) and FLOPs (multiply-accumulates, "
            "the paper's convention), next to the paper's numbers. Without "
            "a preset: one line per preset (all of them)."
        ),
    )
    parser.add_argument(
        "preset",
        nargs="?",
        default=None,
        help="extra_small, small, medium, large or test (default: all)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (a list of them without a preset)",
    )
    parser.set_defaults(func=run)


def preset_table():
    """The preset table (`keras_evopose.models.evopose2d_presets`) read
    without importing `keras_evopose.models`, whose package imports Keras:
    the table is plain data, and `info` answers in a fraction of a second."""
    import importlib.util
    import pathlib
    import sys

    module = sys.modules.get("keras_evopose.models.evopose2d_presets")
    if module is None:
        models = pathlib.Path(__file__).parents[1] / "models"
        path = models / "evopose2d_presets.py"
        spec = importlib.util.spec_from_file_location(
            "_keras_evopose_preset_table", path
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module.backbone_presets


def preset_info(preset):
    """A preset's description as a plain dict, from its data (the params,
    FLOPs and heatmap size there are checked against the built network by
    tests/test_presets.py)."""
    data = preset_table()[preset]
    metadata = data["metadata"]
    return {
        "preset": preset,
        "description": metadata["description"],
        "genotype": list(data["backbone"]["genotype"]),
        "input_size": list(data["backbone"]["image_shape"][:2]),
        "heatmap_size": list(metadata["heatmap_size"]),
        "params": metadata["params"],
        "flops": metadata["flops"],
        "paper": metadata.get("paper"),
    }


def format_flops(flops):
    """Multiply-accumulates in G as the docs' tables print them: three
    decimals, four below 0.01G (the `test` preset's 0.0015G)."""
    return f"{flops / 1e9:.{3 if flops >= 1e7 else 4}f}G"


def format_table(infos):
    """One line per preset: input, heatmaps, params, FLOPs, the paper's."""
    lines = [
        f"{'preset':<12s} {'input':>8s} {'heatmaps':>9s} {'params':>11s} "
        f"{'FLOPs':>8s}  paper params / FLOPs"
    ]
    for info in infos:
        paper = info["paper"] or {}
        paper_text = (
            f"{paper['params'] / 1e6:.2f}M / {paper['flops'] / 1e9:.2f}G"
            if {"params", "flops"} <= set(paper)
            else "-"
        )
        lines.append(
            f"{info['preset']:<12s} "
            f"{'x'.join(map(str, info['input_size'])):>8s} "
            f"{'x'.join(map(str, info['heatmap_size'])):>9s} "
            f"{info['params']:>11,d} {format_flops(info['flops']):>8s}  "
            f"{paper_text}"
        )
    return "\n".join(lines)


def run(args):
    names = list(preset_table())
    if args.preset is None:
        infos = [preset_info(name) for name in names]
        print(json.dumps(infos) if args.json else format_table(infos))
        return 0
    if args.preset not in names:
        from keras_evopose.cli import UsageError

        raise UsageError(
            f"Unknown preset {args.preset!r}; available: " + ", ".join(names)
        )
    info = preset_info(args.preset)
    if args.json:
        print(json.dumps(info))
        return 0
    height, width = info["input_size"]
    print(f"EvoPose2D preset {info['preset']!r}: {info['description']}")
    print(f"  input      {height}x{width}")
    print("  heatmaps   {}x{}".format(*info["heatmap_size"]))
    print("  genotype")
    for index, block in enumerate(info["genotype"], start=1):
        print(f"    stage {index}: {block}")
    paper = info["paper"] or {}
    params_note = (
        f"  (paper {paper['params'] / 1e6:.2f}M)" if "params" in paper else ""
    )
    flops_note = (
        f"  (paper {paper['flops'] / 1e9:.2f}G)" if "flops" in paper else ""
    )
    print(f"  params     {info['params']:,}{params_note}")
    print(
        f"  FLOPs      {format_flops(info['flops'])} multiply-accumulates"
        f"{flops_note}"
    )
    return 0
