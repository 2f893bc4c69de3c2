"""`keras-evopose info PRESET`: genotype, input size, params and FLOPs."""

import json


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "info",
        description=(
            "Builds a preset and prints its genotype, input size, parameter "
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


def preset_info(preset):
    """Builds `preset` and returns its description as a plain dict."""
    from keras_evopose.models import EvoPose2D
    from keras_evopose.models import presets
    from keras_evopose.utils import count_flops
    from keras_evopose.utils import count_params

    data = presets.get_preset(preset)
    model = EvoPose2D.from_preset(preset)
    image_shape = tuple(model.input_shape[1:])
    return {
        "preset": preset,
        "description": data["metadata"]["description"],
        "genotype": model.backbone.genotype,
        "input_size": list(image_shape[:2]),
        "heatmap_size": list(model.output_shape[1:3]),
        "params": count_params(model),
        "flops": count_flops(model, image_shape),
        "paper": data["metadata"].get("paper"),
    }


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
            f"{info['params']:>11,d} {info['flops'] / 1e9:>7.3f}G  "
            f"{paper_text}"
        )
    return "\n".join(lines)


def run(args):
    from keras_evopose.models import presets

    if args.preset is None:
        infos = [preset_info(name) for name in presets.list_presets()]
        print(json.dumps(infos) if args.json else format_table(infos))
        return 0
    if args.preset not in presets.list_presets():
        from keras_evopose.cli import UsageError

        raise UsageError(
            f"Unknown preset {args.preset!r}; available: "
            + ", ".join(presets.list_presets())
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
        f"  FLOPs      {info['flops'] / 1e9:.3f}G multiply-accumulates"
        f"{flops_note}"
    )
    return 0
