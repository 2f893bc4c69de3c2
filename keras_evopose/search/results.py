"""A search's results: the JSON record, the Pareto and fitness plots.

`search_results(oracle)` turns an `EvolutionOracle`'s trials into one plain
JSON value; `write_search_results` writes it (`pareto.json`) with its two
plots, each through a temporary file, so a crash during the write leaves
the previous files whole. `load_search_results` reads `pareto.json` back.
"""

import pathlib

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.models.genotype import Genotype
from keras_evopose.search.trial_timing import PHASES as PHASE_NAMES
from keras_evopose.utils.state_files import StateFileError
from keras_evopose.utils.state_files import read_json_state
from keras_evopose.utils.state_files import write_atomically
from keras_evopose.utils.state_files import write_json_atomically

RESULTS_FILE = "pareto.json"
PARETO_PLOT = "pareto.png"
FITNESS_PLOT = "fitness.png"


def _trial_record(oracle, trial):
    values = trial.hyperparameters.values
    objectives = oracle.objective_values(trial)
    return {
        "trial_id": trial.trial_id,
        "genotype": Genotype.from_string(values["genotype"]).to_strings(),
        "parent_trial_id": values.get("parent_trial_id", ""),
        "generation": values.get("generation", 0),
        "mutation": values.get("mutation", ""),
        "objectives": {
            objective.name: value
            for objective, value in zip(oracle.objectives, objectives)
        },
        "num_params": oracle.metric_value(trial, oracle.size_metric),
        "flops": oracle.metric_value(trial, "flops"),
        "fitness": trial.score,
        "best_epoch": trial.best_step,
        # Where the trial's wall time went (`TrialTiming`), in seconds.
        "seconds": {
            name[len("time_") :]: oracle.metric_value(trial, name)
            for name in sorted(trial.metrics.metrics)
            if name.startswith("time_")
        },
    }


def _last_line(message):
    lines = (message or "").strip().splitlines()
    return lines[-1].split("FailedTrialError: ", 1)[-1] if lines else ""


@keras_evopose_export("keras_evopose.search.search_results")
def search_results(oracle, held_out=None):
    """The completed trials of an `EvolutionOracle` as one JSON value.

    Args:
        oracle: the `EvolutionOracle`.
        held_out: optional dict about the validation people (what
            `run_coco_search` measures): `people`, `untrained` (the
            untrained ancestor's objectives), `best_coco_ap`, paths.

    Returns:
        A dict: `objectives` (name and direction), `fitness` (direction and
        the formula's constants), `trials` (every completed trial, Pareto
        order, with genotype, lineage, objectives, size, fitness,
        `pareto_optimal` and `seconds`, where its wall time went), `front`
        (the Pareto-optimal ones), `best` (the best trial by fitness, or
        `None`), `failed_trials` (ids, also those whose score came back
        not finite), `failures` (id: why), `stop_reason` (why the search
        stopped early, or `None`) and, with `held_out`, `held_out`: it
        plus the ancestor's and the best trial's first objective and the
        best trial's improvement over the untrained network and over the
        ancestor.
    """
    front_ids = {trial.trial_id for trial in oracle.pareto_front()}
    ordered = [
        trial
        for trial in oracle.get_best_trials(len(oracle.trials))
        if trial in oracle.completed_trials()
    ]
    records = [_trial_record(oracle, trial) for trial in ordered]
    for record in records:
        record["pareto_optimal"] = record["trial_id"] in front_ids
    best = oracle.best_trial()
    result = {
        "objectives": [
            {"name": o.name, "direction": o.direction}
            for o in oracle.objectives
        ],
        "fitness": {
            "direction": oracle.fitness_direction,
            "target_params": oracle.target_params,
            "size_weight": oracle.size_weight,
        },
        "front": [r for r in records if r["pareto_optimal"]],
        "trials": records,
        "best": (
            None
            if best is None
            else next(r for r in records if r["trial_id"] == best.trial_id)
        ),
        "failed_trials": [t.trial_id for t in oracle.failed_trials()],
        # Each failed trial's last message line (why it is not above).
        "failures": {
            t.trial_id: _last_line(t.message) for t in oracle.failed_trials()
        },
        "stop_reason": oracle.stop_reason,
    }
    if held_out is not None:
        result["held_out"] = _held_out_section(result, held_out)
    return result


def _held_out_section(result, held_out):
    objective = result["objectives"][0]
    name = objective["name"]
    section = {
        **held_out,
        "metric": name,
        "direction": (
            "lower is better"
            if objective["direction"] == "min"
            else "higher is better"
        ),
    }
    ancestors = [r for r in result["trials"] if not r["parent_trial_id"]]
    ancestor = min(ancestors, key=lambda r: int(r["trial_id"]), default=None)
    for key, record in (("ancestor", ancestor), ("best", result["best"])):
        if record is not None:
            section[key] = {
                "trial_id": record["trial_id"],
                "num_params": record["num_params"],
                name: record["objectives"][name],
            }
    untrained = (held_out.get("untrained") or {}).get(name)
    sign = 1 if objective["direction"] == "min" else -1
    improvement = {}
    for key, reference in (
        ("over_untrained", untrained),
        ("over_ancestor", section.get("ancestor", {}).get(name)),
    ):
        if reference is not None and "best" in section:
            gain = sign * (reference - section["best"][name])
            improvement[key] = gain
            improvement[key + "_percent"] = 100 * gain / abs(reference)
    section["improvement"] = improvement
    return section


@keras_evopose_export("keras_evopose.search.write_search_results")
def write_search_results(oracle, output_dir, held_out=None, best_model=None):
    """Writes `pareto.json`, `pareto.png` and `fitness.png` into
    `output_dir`; returns the `search_results(oracle, held_out)` value.

    `best_model`: the path of the best trial's saved model, written
    before; `pareto.json` names it with its SHA-256 (`best_model`), so a
    reader can tell it from one a later write replaced."""
    result = search_results(oracle, held_out)
    output_dir = pathlib.Path(output_dir)
    if best_model is not None and result["best"] is not None:
        result["best_model"] = {
            "file": pathlib.Path(best_model).name,
            "trial_id": result["best"]["trial_id"],
            "sha256": _sha256(best_model),
        }
    write_json_atomically(output_dir / RESULTS_FILE, result, indent=2)
    if result["trials"]:
        plot_pareto(result, output_dir / PARETO_PLOT)
        plot_fitness(result, output_dir / FITNESS_PLOT)
    return result


def _sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@keras_evopose_export("keras_evopose.search.load_search_results")
def load_search_results(output_dir):
    """Reads the `pareto.json` that `write_search_results` wrote.

    Raises:
        StateFileError: it is damaged, or the best model it names was
            replaced since (a search killed between the two writes).
    """
    output_dir = pathlib.Path(output_dir)
    result = read_json_state(
        output_dir / RESULTS_FILE,
        f"write it again with keras-evopose search --resume {output_dir}",
    )
    named = result.get("best_model") if isinstance(result, dict) else None
    if named:
        model = output_dir / named["file"]
        if model.exists() and _sha256(model) != named["sha256"]:
            raise StateFileError(
                f"{model} is not the model {output_dir / RESULTS_FILE} "
                f"names (trial {named['trial_id']}): the search stopped "
                "between writing them; write both again with keras-evopose "
                f"search --resume {output_dir}"
            )
    return result


def _save_figure(figure, path):
    write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=100))


def _objective_label(result):
    objective = result["objectives"][0]
    where = result.get("held_out")
    direction = (
        "lower is better"
        if objective["direction"] == "min"
        else "higher is better"
    )
    label = objective["name"]
    if objective["name"].endswith("heatmap_mse"):
        # HeatmapMSE: squared error per heatmap pixel, targets peak at 255.
        label += " (squared error per pixel)"
    if where and where.get("people"):
        label += f"\non {where['people']} held-out people"
    return f"{label}\n{direction}"


def _untrained(result, name):
    return ((result.get("held_out") or {}).get("untrained") or {}).get(name)


def plot_pareto(result, path):
    """Objective vs parameters of every trial, lineage and Pareto front,
    generations on a colour bar, the untrained network as a line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib import ticker

    name = result["objectives"][0]["name"]
    by_id = {r["trial_id"]: r for r in result["trials"]}
    figure, axes = plt.subplots(figsize=(7, 5))
    for record in result["trials"]:
        parent = by_id.get(record["parent_trial_id"])
        if parent is not None:
            axes.plot(
                [parent["num_params"], record["num_params"]],
                [parent["objectives"][name], record["objectives"][name]],
                color="0.75",
                linewidth=0.8,
                zorder=1,
            )
    generations = [r["generation"] for r in result["trials"]]
    last = max(generations)
    colours = plt.get_cmap("viridis", last + 1)
    points = axes.scatter(
        [r["num_params"] for r in result["trials"]],
        [r["objectives"][name] for r in result["trials"]],
        c=generations,
        cmap=colours,
        vmin=-0.5,
        vmax=last + 0.5,
        s=30,
        edgecolors="black",
        linewidths=0.4,
        zorder=2,
        label="trial (child joined to its parent)",
    )
    bar = figure.colorbar(points, ax=axes, ticks=range(last + 1))
    bar.set_label("generation")
    front = sorted(result["front"], key=lambda r: r["num_params"])
    axes.plot(
        [r["num_params"] for r in front],
        [r["objectives"][name] for r in front],
        "o-",
        color="crimson",
        markerfacecolor="none",
        markersize=10,
        zorder=3,
        label="Pareto front",
    )
    untrained = _untrained(result, name)
    if untrained is not None:
        axes.axhline(
            untrained,
            color="black",
            linestyle=":",
            linewidth=1.2,
            label=f"untrained network ({_number(untrained)})",
        )
    axes.xaxis.set_major_formatter(
        ticker.FuncFormatter(lambda value, _: f"{value:,.0f}")
    )
    axes.set_xlabel("parameters (count)")
    axes.set_ylabel(_objective_label(result))
    axes.set_title("EvoPose2D search: validation loss against size")
    axes.legend(fontsize=8)
    figure.tight_layout()
    _save_figure(figure, path)
    plt.close(figure)


def plot_fitness(result, path):
    """Best fitness per generation and best so far, integer generations,
    the untrained ancestor's fitness as a line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib import ticker

    from keras_evopose.search.fitness import paper_fitness

    direction = result["fitness"]["direction"]
    better = min if direction == "min" else max
    by_generation = {}
    for record in result["trials"]:
        by_generation.setdefault(record["generation"], []).append(
            record["fitness"]
        )
    generations = sorted(by_generation)
    best = [better(by_generation[g]) for g in generations]
    running = [better(best[: i + 1]) for i in range(len(best))]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    # The running best is drawn wide and light under the per-generation
    # line, so both stay visible where they coincide.
    axes.plot(
        generations,
        running,
        "-",
        color="tab:orange",
        linewidth=6,
        alpha=0.45,
        label="best so far",
    )
    axes.plot(
        generations,
        best,
        "o--",
        color="tab:blue",
        linewidth=1.5,
        label="best of the generation",
    )
    name = result["objectives"][0]["name"]
    untrained = _untrained(result, name)
    ancestor = (result.get("held_out") or {}).get("ancestor")
    if untrained is not None and ancestor is not None:
        value = paper_fitness(
            untrained,
            ancestor["num_params"],
            direction,
            result["fitness"]["target_params"],
            result["fitness"]["size_weight"],
        )
        axes.axhline(
            value,
            color="black",
            linestyle=":",
            linewidth=1.2,
            label=f"untrained ancestor ({_number(value)})",
        )
    axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    axes.set_xlabel("generation")
    size = result["fitness"]
    axes.set_ylabel(
        f"fitness: {name} x (T / params)^w\n"
        f"T = {size['target_params']:,.0f}, w = {size['size_weight']:g}; "
        + ("lower is better" if direction == "min" else "higher is better")
    )
    axes.set_title("EvoPose2D search: fitness per generation")
    # Right of the middle: clear of the untrained line above the trials.
    axes.legend(fontsize=8, loc="center right")
    figure.tight_layout()
    _save_figure(figure, path)
    plt.close(figure)


def describe_trial(oracle, trial, timing=None):
    """One line for a completed trial: lineage, objectives, and where its
    wall time went (`timing`, a `TrialTiming.summary()`). A worker's
    `oracle` (keras-tuner's client of the chief's) scores nothing: its
    line names the trial and its time only."""
    if not hasattr(type(oracle), "objective_values"):
        line = f"trial {trial.trial_id} completed"
    else:
        line = _describe_record(oracle, _trial_record(oracle, trial))
    if timing:
        phases = ", ".join(
            f"{phase.replace('_', ' ')} {timing[phase]:.1f}"
            for phase in PHASE_NAMES
            if timing.get(phase, 0) >= 0.05
        )
        line += (
            f"; {timing['wall']:.1f} s, {timing['training_share']:.0%} in "
            f"training and validation steps ({phases})"
        )
    return line


def _describe_record(oracle, record):
    name = oracle.objectives[0].name
    value = record["objectives"].get(name)
    parent = record["parent_trial_id"]
    return (
        f"trial {record['trial_id']} (generation {record['generation']}, "
        + (f"child of {parent}" if parent else "ancestor")
        + (f", {record['mutation']}" if record["mutation"] and parent else "")
        + f"): {name} {_number(value)}, "
        f"{record['num_params']:,.0f} params, fitness "
        f"{_number(record['fitness'])}"
    )


def _gain(gain, percent, reference):
    word = "better" if gain >= 0 else "worse"
    return f"{abs(gain):.2f} ({abs(percent):.1f}%) {word} than {reference}"


def _number(value):
    """4 significant digits, never a bare trailing dot ("152.", "1e+02")."""
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:#.4g}".rstrip(".")


def describe(result):
    """What a person reads at the end of a search: counts, and with
    `held_out`, the untrained / ancestor / best loss and the best AP."""
    best = result["best"]
    if best is None:
        return "no trial completed"
    name = result["objectives"][0]["name"]
    lines = [
        f"{len(result['trials'])} trials completed, "
        f"{len(result['failed_trials'])} failed, {len(result['front'])} on "
        f"the Pareto front. Best fitness {_number(best['fitness'])}: trial "
        f"{best['trial_id']}, {best['num_params']:,.0f} params, {name} "
        f"{_number(best['objectives'][name])}."
    ]
    held_out = result.get("held_out")
    if held_out:
        untrained = (held_out.get("untrained") or {}).get(name)
        ancestor = held_out.get("ancestor")
        parts = []
        if untrained is not None:
            parts.append(f"untrained {_number(untrained)}")
        if ancestor is not None:
            parts.append(
                f"ancestor (trial {ancestor['trial_id']}) "
                f"{_number(ancestor[name])}"
            )
        parts.append(
            f"best (trial {best['trial_id']}) "
            f"{_number(best['objectives'][name])}"
        )
        line = (
            f"{name} on {held_out.get('people', '?')} held-out people "
            f"({held_out['direction']}): " + ", ".join(parts)
        )
        improvement = held_out.get("improvement", {})
        if "over_untrained" in improvement:
            line += "; the best is " + _gain(
                improvement["over_untrained"],
                improvement["over_untrained_percent"],
                "untrained",
            )
            if "over_ancestor" in improvement:
                line += ", " + _gain(
                    improvement["over_ancestor"],
                    improvement["over_ancestor_percent"],
                    "the ancestor",
                )
        lines.append(line + ".")
        ap = held_out.get("best_coco_ap")
        if ap:
            lines.append(
                f"Best trial's COCO AP on those people: {ap['ap']:.3f} "
                f"(AP50 {ap['ap50']:.3f})."
            )
    return "\n".join(lines)
