"""Does the search's short-training fitness rank networks as long training does?

From one trained ancestor, the children the search's own mutation
(`keras_evopose.search.mutate`, as `EvolutionOracle` draws them) makes:
in the `test` space every single-gene change of the `test` ancestor, 12
distinct genotypes. Each child is trained five ways with the main job's
trial recipe (`keras_evopose.search.coco_search.trial_hypermodel`: L2
1e-5, a fresh Adam per run with a cosine to 0 over the run's own steps,
the search's augmentation) on its data (`trial_data`: it trains on
`data/coco_kpt_extra`, 191 people, and is scored on the 80 people of
`data/coco_kpt_mini/val2017`, whom it never sees):

- `short_transfer`: the search's fitness, as a search child: the
  parent's weights transferred (`WeightTransferCallback`, the tuner's),
  `--child-epochs` epochs, scored by the best epoch's `val_heatmap_mse`
  (keras-tuner's rule, the tuner's `_BestEpochWeights`);
- `short_scratch`: the same without transfer (random initialisation);
- `long_transfer`, `long_scratch`: the same two trained `--long-factor`
  times the steps (each epoch `--long-factor` times longer);
- the size baselines `params` (`count_params`, the search's `num_params`)
  and `flops` (`count_flops`, multiply-accumulates per image).

Each cheap score (short_transfer, short_scratch, params, flops) is
compared with each long-trained validation loss by Kendall's tau-b and
Spearman's rho over the children, with 95% percentile intervals from
`--bootstrap` resamples of the children; COCO AP of the long-trained
children is recorded beside (on 80 people at 64x48 it is mostly noise:
the JSON keeps the values, so a reader can judge).

Writes `fitness_rank_correlation.json` (every run's score) and
`fitness_rank_correlation.png` (each cheap score against the long-trained
loss) to `--output`, both through a temporary file.

    python benchmarks/fitness_rank_correlation.py [--quick] [--seeds 0 1] \
        [--child-epochs 2] [--passes-per-epoch 1] [--long-factor 10] \
        [--part K N] [--reverse] [--no-ap] \
        [--output fitness_rank_correlation_results]
    python benchmarks/fitness_rank_correlation.py --merge DIR [DIR ...] \
        --output merged

Results and reading: docs/benchmarks.md, "Does the short-training fitness
rank networks?".
"""

import argparse
import importlib.util
import json
import os
import pathlib
import random
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
PRESET = "test"
CHEAP_SCORES = ("short_transfer", "short_scratch", "params", "flops")
TARGETS = ("long_scratch", "long_transfer")
RUNS = ("short_transfer", "short_scratch", "long_transfer", "long_scratch")


def _search_quality():
    # The sibling benchmark's helpers (machine description), not a copy.
    spec = importlib.util.spec_from_file_location(
        "search_quality", HERE / "search_quality.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------
# Rank statistics (scipy's when installed).


def kendall_tau_b(x, y):
    """Kendall's tau-b (ties in either variable corrected); nan if either
    is constant."""
    try:
        from scipy import stats
    except ImportError:
        return _kendall_tau_b(x, y)
    return float(stats.kendalltau(x, y).statistic)


def _kendall_tau_b(x, y):
    concordant = discordant = ties_x = ties_y = 0
    n = len(x)
    for i in range(n):
        for j in range(i + 1, n):
            dx = (x[i] > x[j]) - (x[i] < x[j])
            dy = (y[i] > y[j]) - (y[i] < y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    denominator = (
        (concordant + discordant + ties_x) * (concordant + discordant + ties_y)
    ) ** 0.5
    if denominator == 0:
        return float("nan")
    return (concordant - discordant) / denominator


def _ranks(values):
    """Average ranks (1-based), ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while (
            end + 1 < len(order)
            and values[order[end + 1]] == values[order[start]]
        ):
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman_rho(x, y):
    """Spearman's rho: Pearson's correlation of the average ranks; nan if
    either is constant."""
    try:
        from scipy import stats
    except ImportError:
        return _spearman_rho(x, y)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: nan, said below
        return float(stats.spearmanr(x, y).statistic)


def _spearman_rho(x, y):
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return float("nan")
    return sxy / (sxx * syy) ** 0.5


def bootstrap_interval(x, y, statistic, resamples, seed, level=0.95):
    """Percentile interval of `statistic(x, y)` over `resamples` draws of
    the pairs with replacement (draws where it is undefined are left
    out)."""
    import math

    rng = random.Random(seed)
    n = len(x)
    values = []
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        value = statistic([x[i] for i in picks], [y[i] for i in picks])
        if not math.isnan(value):
            values.append(value)
    if not values:
        return [float("nan"), float("nan")]
    values.sort()
    low = values[int((1 - level) / 2 * (len(values) - 1))]
    high = values[int((1 + level) / 2 * (len(values) - 1))]
    return [low, high]


def correlations(children, resamples, seed):
    """`{target: {score: {kendall_tau, spearman, *_interval}}}`."""
    table = {}
    for target in TARGETS:
        y = [child["runs"][target]["val_heatmap_mse"] for child in children]
        for score in CHEAP_SCORES:
            x = [
                child["runs"][score]["val_heatmap_mse"]
                if score in RUNS
                else child[score]
                for child in children
            ]
            table.setdefault(target, {})[score] = {
                "kendall_tau": kendall_tau_b(x, y),
                "kendall_tau_interval": bootstrap_interval(
                    x, y, kendall_tau_b, resamples, seed
                ),
                "spearman": spearman_rho(x, y),
                "spearman_interval": bootstrap_interval(
                    x, y, spearman_rho, resamples, seed
                ),
            }
    return table


# --------------------------------------------------------------------
# Trials.


def draw_children(ancestor, space, rng, count, gene_weighting):
    """Up to `count` distinct children of `ancestor` by the search's own
    mutation (the Oracle also redraws a genotype it has tried)."""
    from keras_evopose.search import mutate
    from keras_evopose.search.mutation import possible_mutations

    available = sum(len(v) for *_, v in possible_mutations(ancestor, space))
    children = {}
    while len(children) < min(count, available):
        child, description = mutate(ancestor, space, rng, gene_weighting)
        children.setdefault(tuple(child), description)
    return [(list(g), d) for g, d in children.items()]


def train_trial(
    setup, genotype, epochs, steps_per_epoch, init_seed, parent=None
):
    """One trial as `EvolutionTuner.run_trial` trains it: built by the
    search's hypermodel, the parent's weights transferred (if any), fit
    with the trial's own optimizer; returns `(model with its best epoch's
    weights, that epoch's val_heatmap_mse, seconds)`."""
    import keras
    import keras_tuner

    from keras_evopose.callbacks import WeightTransferCallback
    from keras_evopose.models import Genotype
    from keras_evopose.search.evolution_tuner import _BestEpochWeights
    from keras_evopose.search.evopose2d_hypermodel import FITNESS_METRIC

    started = time.perf_counter()
    hp = keras_tuner.HyperParameters()
    hp.Fixed("genotype", Genotype.from_strings(genotype).to_string())
    callbacks = []
    if parent is not None:
        parent_model, parent_genotype = parent
        hp.Fixed("parent_trial_id", "ancestor")
        callbacks.append(
            WeightTransferCallback(
                parent_model, genotype=parent_genotype, verbose=0
            )
        )
    keras.backend.clear_session()
    keras.utils.set_random_seed(init_seed)
    model = setup["hypermodel"].build(hp)
    best = _BestEpochWeights(keras_tuner.Objective(FITNESS_METRIC, "min"))
    setup["hypermodel"].fit(
        hp,
        model,
        setup["train_data"],
        validation_data=setup["val_data"],
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_steps=setup["val_steps"],
        callbacks=[*callbacks, best],
        shuffle=False,  # the dataset shuffles itself
        verbose=0,
    )
    model.set_weights(best.weights)
    return model, float(best.best_value), time.perf_counter() - started


def coco_ap(model, setup):
    from keras_evopose.metrics import evaluate_coco

    annotations, images = setup["validation"]
    return float(evaluate_coco(model, annotations, images)["ap"])


def run_seed(seed, args, setup, log, checkpoint):
    import keras

    from keras_evopose.models import count_flops

    space, train_steps = setup["space"], setup["train_steps"]
    short_epochs, long_epochs = args.child_epochs, args.child_epochs
    long_steps = train_steps * args.long_factor
    ancestor_model, ancestor_loss, seconds = train_trial(
        setup, space.ancestor, args.ancestor_epochs, train_steps, seed
    )
    log(
        f"seed {seed} ancestor {args.ancestor_epochs * train_steps} steps "
        f"val_heatmap_mse {ancestor_loss:.3f} ({seconds:.0f} s)"
    )
    parent = (ancestor_model, space.ancestor)
    rng = random.Random(seed)
    drawn = draw_children(
        space.ancestor, space, rng, args.children, setup["gene_weighting"]
    )
    children = []
    part, parts = args.part
    order = list(enumerate(drawn))
    for index, (genotype, mutation) in order[:: -1 if args.reverse else 1]:
        if index % parts != part:
            continue  # another process's child (--part)
        init_seed = seed * 1000 + index
        runs = {}
        plan = {
            "short_transfer": (short_epochs, train_steps, parent),
            "short_scratch": (short_epochs, train_steps, None),
            "long_transfer": (long_epochs, long_steps, parent),
            "long_scratch": (long_epochs, long_steps, None),
        }
        model = None
        for name, (epochs, steps, source) in plan.items():
            model, loss, seconds = train_trial(
                setup, genotype, epochs, steps, init_seed, source
            )
            runs[name] = {
                "val_heatmap_mse": loss,
                "steps": epochs * steps,
                "seconds": round(seconds, 1),
            }
            if name.startswith("long") and args.ap:
                runs[name]["coco_ap"] = coco_ap(model, setup)
        child = {
            "index": index,
            "genotype": genotype,
            "mutation": mutation,
            "params": float(model.count_params()),
            "flops": float(count_flops(model, model.input_shape[1:])),
            "runs": runs,
        }
        children.append(child)
        checkpoint(children)
        log(
            f"seed {seed} child {index + 1}/{len(drawn)} {mutation:28s} "
            f"params {child['params']:.0f} short "
            f"{runs['short_transfer']['val_heatmap_mse']:.3f}/"
            f"{runs['short_scratch']['val_heatmap_mse']:.3f} long "
            f"{runs['long_transfer']['val_heatmap_mse']:.3f}/"
            f"{runs['long_scratch']['val_heatmap_mse']:.3f} "
            "(transfer/scratch) "
            f"{sum(r['seconds'] for r in runs.values()):.0f} s"
        )
    del ancestor_model
    keras.backend.clear_session()
    return {
        "ancestor": {
            "genotype": space.ancestor,
            "val_heatmap_mse": ancestor_loss,
            "steps": args.ancestor_epochs * train_steps,
        },
        "children": children,
        "correlations": correlations(children, args.bootstrap, seed),
    }


def untrained_loss(setup, seed):
    """val_heatmap_mse of the untrained ancestor (what learning is
    measured against)."""
    import keras
    import keras_tuner

    from keras_evopose.models import Genotype
    from keras_evopose.search.evopose2d_hypermodel import heatmap_size_of

    hp = keras_tuner.HyperParameters()
    hp.Fixed(
        "genotype", Genotype.from_strings(setup["space"].ancestor).to_string()
    )
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = setup["hypermodel"].build(hp)
    logs = model.evaluate(
        setup["val_data"](heatmap_size_of(model)),
        steps=setup["val_steps"],
        return_dict=True,
        verbose=0,
    )
    return float(logs["heatmap_mse"])


# --------------------------------------------------------------------
# Output.


def write_json(result, path):
    from keras_evopose.utils.state_files import write_json_atomically

    write_json_atomically(path, result, indent=1)


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "short_transfer": "short fine-tune after transfer\n(the search's "
        "fitness), val heatmap MSE",
        "short_scratch": "short training from scratch\n(no transfer), "
        "val heatmap MSE",
        "params": "parameters (count_params)",
        "flops": "multiply-accumulates per image (millions)",
    }
    seeds = sorted(result["seeds"].items(), key=lambda item: int(item[0]))
    figure, axes = plt.subplots(
        len(TARGETS),
        len(CHEAP_SCORES),
        figsize=(4.2 * len(CHEAP_SCORES), 3.8 * len(TARGETS)),
        squeeze=False,
    )
    for row, target in enumerate(TARGETS):
        for column, score in enumerate(CHEAP_SCORES):
            axis = axes[row][column]
            taus = []
            for number, (seed, outcome) in enumerate(seeds):
                children = outcome["children"]
                x = [
                    c["runs"][score]["val_heatmap_mse"]
                    if score in RUNS
                    else c[score] / (1e6 if score == "flops" else 1)
                    for c in children
                ]
                y = [c["runs"][target]["val_heatmap_mse"] for c in children]
                axis.scatter(
                    x, y, s=18, color=f"C{number}", label=f"seed {seed}"
                )
                taus.append(
                    outcome["correlations"][target][score]["kendall_tau"]
                )
            axis.set_title(
                "Kendall tau "
                + ", ".join(
                    f"seed {seed} {tau:+.2f}"
                    for (seed, _), tau in zip(seeds, taus)
                ),
                fontsize=9,
            )
            axis.set_xlabel(labels[score], fontsize=8)
            if column == 0:
                steps = seeds[0][1]["children"][0]["runs"][target]["steps"]
                kind = (
                    "from scratch"
                    if target == "long_scratch"
                    else ("after transfer")
                )
                axis.set_ylabel(
                    f"long training {kind} ({steps} steps)\n"
                    "val heatmap MSE (lower is better)",
                    fontsize=8,
                )
            axis.tick_params(labelsize=7)
            if row == 0 and column == 0:
                axis.legend(fontsize=7)
    figure.suptitle(
        "Cheap scores vs long-trained held-out loss, one point per child "
        "(Kendall tau-b per seed in each title)",
        fontsize=10,
    )
    figure.tight_layout()
    temporary = path.with_name(path.stem + ".tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, path)


def report(result):
    print(
        "target         score            seed  children  kendall tau [95% CI]"
        "       spearman [95% CI]"
    )
    for seed, outcome in result["seeds"].items():
        count = len(outcome["children"])
        for target, scores in outcome["correlations"].items():
            for score, row in scores.items():
                tau, rho = row["kendall_tau"], row["spearman"]
                low, high = row["kendall_tau_interval"]
                rlow, rhigh = row["spearman_interval"]
                print(
                    f"{target:14s} {score:16s} {seed:>4s}  {count:8d}  "
                    f"{tau:+.2f} "
                    f"[{low:+.2f}, {high:+.2f}]       {rho:+.2f} "
                    f"[{rlow:+.2f}, {rhigh:+.2f}]"
                )


def seed_agreement(result):
    """Kendall tau-b between two seeds' scores of the same genotypes, per
    run: how well a run's ranking reproduces with another initialisation
    and ancestor (the ceiling for any cheap score against it)."""
    seeds = sorted(result["seeds"], key=int)
    agreement = {}
    for first, second in zip(seeds, seeds[1:]):
        scores = [
            {
                tuple(child["genotype"]): child["runs"]
                for child in result["seeds"][seed]["children"]
            }
            for seed in (first, second)
        ]
        shared = sorted(set(scores[0]) & set(scores[1]))
        if len(shared) < 3:
            continue
        agreement[f"{first} vs {second}"] = {
            "children": len(shared),
            **{
                run: kendall_tau_b(
                    [scores[0][g][run]["val_heatmap_mse"] for g in shared],
                    [scores[1][g][run]["val_heatmap_mse"] for g in shared],
                )
                for run in RUNS
            },
        }
    return agreement


def merge(folders, output):
    """One result (JSON, plot, table) from the runs in `folders`."""
    name = "fitness_rank_correlation.json"
    results = []
    for folder in folders:
        path = pathlib.Path(folder) / name
        if not path.exists():
            raise SystemExit(f"--merge: {path} is missing (run it first)")
        results.append(json.loads(path.read_text()))
    merged = results[0]
    ignored = ("seeds", "merge", "output", "part", "reverse")
    for folder, other in zip(folders[1:], results[1:]):
        mine = {k: v for k, v in merged["settings"].items() if k not in ignored}
        theirs = {
            k: v for k, v in other["settings"].items() if k not in ignored
        }
        if mine != theirs:
            raise SystemExit(
                f"--merge: {folder} was run with other settings: {theirs} "
                f"(first: {mine})"
            )
        for seed, outcome in other["seeds"].items():
            if seed not in merged["seeds"]:
                merged["seeds"][seed] = outcome
                continue
            # Another part of the same seed: its children join, its
            # ancestor (trained alike in each part) is kept beside.
            mine = merged["seeds"][seed]
            done = {child["index"] for child in mine["children"]}
            mine["children"] += [
                child
                for child in outcome["children"]
                if child["index"] not in done
            ]
            mine.setdefault("other_parts", []).append(
                {"ancestor": outcome.get("ancestor"), "folder": str(folder)}
            )
            mine["partial"] = mine.get("partial") or outcome.get("partial")
    for seed, outcome in merged["seeds"].items():
        outcome["children"].sort(key=lambda child: child["index"])
        # Recomputed over every child the parts did (a run stopped early
        # is `partial`; the table says how many children).
        outcome["correlations"] = correlations(
            outcome["children"], merged["settings"]["bootstrap"], int(seed)
        )
    merged["merged_from"] = [
        {
            "folder": str(folder),
            "machine_before": result["machine_before"],
            "machine_after": result.get("machine_after"),
        }
        for folder, result in zip(folders, results)
    ]
    merged["seed_agreement"] = seed_agreement(merged)
    output.mkdir(parents=True, exist_ok=True)
    write_json(merged, output / name)
    plot(merged, output / "fitness_rank_correlation.png")
    report(merged)
    for pair, row in merged["seed_agreement"].items():
        print(
            f"seeds {pair}, {row['children']} shared children, kendall tau: "
            + ", ".join(f"{run} {row[run]:+.2f}" for run in RUNS)
        )
    return merged


# --------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--children", type=int, default=12)
    parser.add_argument("--ancestor-epochs", type=int, default=8)
    parser.add_argument("--child-epochs", type=int, default=2)
    parser.add_argument(
        "--passes-per-epoch",
        type=int,
        default=1,
        help="passes over the training people per epoch (the main job: 8)",
    )
    parser.add_argument(
        "--long-factor",
        type=int,
        default=10,
        help="long runs train this many times a child's steps",
    )
    parser.add_argument(
        "--part",
        type=int,
        nargs=2,
        default=[0, 1],
        metavar=("K", "N"),
        help="train only the children whose index is K modulo N (N "
        "processes share a seed; --merge joins them)",
    )
    parser.add_argument(
        "--reverse",
        action="store_true",
        help="train the children last to first (a second process on the "
        "same --part meets the first half way; --merge keeps one of each)",
    )
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument(
        "--no-ap",
        dest="ap",
        action="store_false",
        help="skip COCO AP of the long-trained children",
    )
    parser.add_argument("--output", default="fitness_rank_correlation_results")
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        help="combine the results of runs made with the same settings "
        "(other seeds, other --part) into --output",
    )
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, pathlib.Path(args.output))
    overrides = {}
    if args.quick:
        # Smallest that still exercises every path: 3 children, one
        # 1-step epoch each (batch 4), long runs 2x, 32x32 inputs (the
        # smallest whose sides the ancestor's stride 16 divides).
        args.seeds = args.seeds[:1]
        args.children, args.ancestor_epochs, args.child_epochs = 3, 1, 1
        args.long_factor, args.bootstrap, args.ap = 2, 50, False
        overrides = {"input_size": (32, 32), "batch_size": 4}
    if min(args.children, args.child_epochs, args.ancestor_epochs) < 1:
        parser.error("--children and the epochs must be positive")
    if args.long_factor < 2:
        parser.error("--long-factor must be 2 or more")

    from keras_evopose.search import SearchSpace
    from keras_evopose.search.coco_search import COCOSearchConfig
    from keras_evopose.search.coco_search import trial_data
    from keras_evopose.search.coco_search import trial_hypermodel

    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    result = {"settings": vars(args), "seeds": {}}
    machine = _search_quality().machine
    result["machine_before"] = machine()

    def log(line):
        print(line, flush=True)

    def checkpoint(seed, untrained):
        def write(children):
            # An interrupted run keeps the children done (no statistics
            # yet: `partial`).
            result["seeds"][str(seed)] = {
                "partial": True,
                "untrained_val_heatmap_mse": untrained,
                "children": children,
            }
            write_json(result, output / "fitness_rank_correlation.json")
            del result["seeds"][str(seed)]

        return write

    for seed in args.seeds:
        # The main job's settings: its data, recipe and augmentation.
        config = COCOSearchConfig(
            preset=PRESET,
            passes_per_epoch=args.passes_per_epoch,
            seed=seed,
            output=str(output),
            **overrides,
        )
        train_data, val_data, validation = trial_data(config, output)
        space = SearchSpace.from_preset(PRESET)
        setup = {
            "hypermodel": trial_hypermodel(config),
            "train_data": train_data,
            "val_data": val_data,
            "train_steps": 1 if args.quick else train_data.steps(),
            "val_steps": 1 if args.quick else val_data.steps(),
            "validation": validation,
            "space": space,
            "gene_weighting": config.gene_weighting,
        }
        if args.quick:
            # Tracing a child's functions costs more than its few steps.
            setup["hypermodel"].compile_kwargs["run_eagerly"] = True
        result.setdefault(
            "task",
            {
                "train": config.annotations,
                "validation": list(validation),
                "input_size": list(config.resolve().input_size),
                "batch_size": config.batch_size,
                "learning_rate": config.learning_rate,
                "schedule": config.learning_rate_schedule,
                "steps_per_epoch": setup["train_steps"],
                "validation_steps": setup["val_steps"],
            },
        )
        started = time.perf_counter()
        untrained = untrained_loss(setup, seed)
        outcome = run_seed(seed, args, setup, log, checkpoint(seed, untrained))
        outcome["untrained_val_heatmap_mse"] = untrained
        outcome["wall_s"] = round(time.perf_counter() - started, 1)
        result["seeds"][str(seed)] = outcome
        result["machine_after"] = machine()
        # After every seed: an interrupted run keeps the seeds done.
        write_json(result, output / "fitness_rank_correlation.json")
        plot(result, output / "fitness_rank_correlation.png")
    report(result)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
