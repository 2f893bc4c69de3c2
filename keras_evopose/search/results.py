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
def search_results(oracle):
    """The completed trials of an `EvolutionOracle` as one JSON value.

    Returns:
        A dict: `objectives` (name and direction), `fitness` (direction and
        the formula's constants), `trials` (every completed trial, Pareto
        order, with genotype, lineage, objectives, size, fitness and
        `pareto_optimal`), `front` (the Pareto-optimal ones), `best` (the
        best trial by fitness, or `None`), `failed_trials` (ids, also those
        whose score came back not finite), `failures` (id: why) and
        `stop_reason` (why the search stopped early, or `None`).
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
    return {
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


@keras_evopose_export("keras_evopose.search.write_search_results")
def write_search_results(oracle, output_dir):
    """Writes `pareto.json`, `pareto.png` and `fitness.png` into
    `output_dir`; returns the `search_results` value."""
    result = search_results(oracle)
    output_dir = pathlib.Path(output_dir)
    write_json_atomically(output_dir / RESULTS_FILE, result, indent=2)
    if result["trials"]:
        plot_pareto(result, output_dir / PARETO_PLOT)
        plot_fitness(result, output_dir / FITNESS_PLOT)
    return result


@keras_evopose_export("keras_evopose.search.load_search_results")
def load_search_results(output_dir):
    """Reads the `pareto.json` that `write_search_results` wrote."""
    return read_json_state(
        pathlib.Path(output_dir) / RESULTS_FILE,
        "write it again with `keras-evopose search --resume DIR`",
    )


def _save_figure(figure, path):
    write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=100))


def plot_pareto(result, path):
    """Objective vs parameters of every trial, lineage and Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    name = result["objectives"][0]["name"]
    by_id = {r["trial_id"]: r for r in result["trials"]}
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for record in result["trials"]:
        parent = by_id.get(record["parent_trial_id"])
        if parent is not None:
            axes.plot(
                [parent["num_params"], record["num_params"]],
                [parent["objectives"][name], record["objectives"][name]],
                color="0.8",
                linewidth=0.8,
                zorder=1,
            )
    axes.scatter(
        [r["num_params"] for r in result["trials"]],
        [r["objectives"][name] for r in result["trials"]],
        c=[r["generation"] for r in result["trials"]],
        cmap="viridis",
        s=22,
        zorder=2,
        label="trials (colour: generation)",
    )
    front = sorted(result["front"], key=lambda r: r["num_params"])
    axes.plot(
        [r["num_params"] for r in front],
        [r["objectives"][name] for r in front],
        "o-",
        color="crimson",
        markerfacecolor="none",
        markersize=9,
        zorder=3,
        label="Pareto front",
    )
    axes.set_xlabel("parameters")
    axes.set_ylabel(name)
    axes.set_title("EvoPose2D search: lines join each child to its parent")
    axes.legend(fontsize=8)
    figure.tight_layout()
    _save_figure(figure, path)
    plt.close(figure)


def plot_fitness(result, path):
    """Best fitness per generation and best so far."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    better = min if result["fitness"]["direction"] == "min" else max
    by_generation = {}
    for record in result["trials"]:
        by_generation.setdefault(record["generation"], []).append(
            record["fitness"]
        )
    generations = sorted(by_generation)
    best = [better(by_generation[g]) for g in generations]
    running = [better(best[: i + 1]) for i in range(len(best))]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(generations, best, "o-", label="best of the generation")
    axes.plot(generations, running, "--", label="best so far")
    axes.set_xlabel("generation")
    axes.set_ylabel("fitness")
    axes.set_title("EvoPose2D search: fitness per generation")
    axes.legend(fontsize=8)
    figure.tight_layout()
    _save_figure(figure, path)
    plt.close(figure)


def describe_trial(oracle, trial, timing=None):
    """One line for a completed trial: lineage, objectives, and where its
    wall time went (`timing`, a `TrialTiming.summary()`)."""
    record = _trial_record(oracle, trial)
    name = oracle.objectives[0].name
    value = record["objectives"].get(name)
    parent = record["parent_trial_id"]
    line = (
        f"trial {record['trial_id']} (generation {record['generation']}, "
        + (f"child of {parent}" if parent else "ancestor")
        + (f", {record['mutation']}" if record["mutation"] and parent else "")
        + f"): {name} {_number(value)}, "
        f"{record['num_params']:,.0f} params, fitness "
        f"{_number(record['fitness'])}"
    )
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


def _number(value):
    """4 significant digits, never a bare trailing dot ("152.", "1e+02")."""
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:#.4g}".rstrip(".")


def describe(result):
    """One line a person reads at the end of a search."""
    best = result["best"]
    if best is None:
        return "no trial completed"
    name = result["objectives"][0]["name"]
    return (
        f"{len(result['trials'])} trials completed, "
        f"{len(result['failed_trials'])} failed, {len(result['front'])} on "
        f"the Pareto front. Best fitness {best['fitness']:.4g}: trial "
        f"{best['trial_id']}, {best['num_params']:,.0f} params, {name} "
        f"{best['objectives'][name]:.4g}."
    )
