"""EvolutionOracle bookkeeping cost per trial with 500 completed trials.

Fills an `EvolutionOracle` (EfficientNet-B0 search space, objectives
val_loss + num_params) with `--completed` trials driven by synthetic
metrics and no model, then times `--measure` further trials, each split
into `populate_space` (parent selection by fitness, mutation, duplicate
check), `score_trial` (fitness) and `get_best_trials` over every trial (the
non-dominated sort); their sum is the Oracle's own overhead. Also reported:
`create_trial` and `update_trial` + `end_trial` as a tuner calls them,
which add keras-tuner's JSON writes of the trial and of `oracle.json`.
Runs with the JAX backend, so TensorFlow is not even imported.

    python benchmarks/oracle_overhead.py [--completed 500] [--measure 100]
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")


def synthetic_metrics(genotype_string, rng):
    from keras_evopose.models import Genotype

    specs = Genotype.from_string(genotype_string).blocks
    size = sum(s.num_repeats * s.filters * s.kernel_size for s in specs)
    return {
        "val_loss": 1.0 / size**0.5 + rng.random() * 0.01,
        "num_params": float(500 * size),
    }


def timed(function, timings, key):
    """Wraps an Oracle method to record its duration into `timings[key]`."""

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        if timings.get("active"):
            timings[key].append(time.perf_counter() - start)
        return result

    return wrapper


def one_trial(oracle, rng, timings=None):
    start = time.perf_counter()
    trial = oracle.create_trial("tuner0")
    created = time.perf_counter()
    oracle.update_trial(
        trial.trial_id,
        synthetic_metrics(trial.hyperparameters.values["genotype"], rng),
    )
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    ended = time.perf_counter()
    oracle.get_best_trials(len(oracle.trials))
    sorted_at = time.perf_counter()
    if timings is not None:
        timings["create_trial"].append(created - start)
        timings["update_and_end_trial"].append(ended - created)
        timings["get_best_trials"].append(sorted_at - ended)
        timings["all_with_json_writes"].append(sorted_at - start)


def main(argv=None):
    import random

    import keras_tuner

    from keras_evopose.search import EvolutionOracle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completed", type=int, default=500)
    parser.add_argument("--measure", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(0)
    oracle = EvolutionOracle(
        objective=[
            keras_tuner.Objective("val_loss", "min"),
            keras_tuner.Objective("num_params", "min"),
        ],
        max_trials=args.completed + args.measure,
        seed=0,
    )
    oracle.verbose = 0
    with tempfile.TemporaryDirectory() as directory:
        oracle._set_project_dir(directory, "overhead")
        fill_start = time.perf_counter()
        for _ in range(args.completed):
            one_trial(oracle, rng)
        fill_seconds = time.perf_counter() - fill_start
        timings = {
            "populate_space": [],
            "score_trial": [],
            "create_trial": [],
            "update_and_end_trial": [],
            "get_best_trials": [],
            "all_with_json_writes": [],
        }
        oracle.populate_space = timed(
            oracle.populate_space, timings, "populate_space"
        )
        oracle.score_trial = timed(oracle.score_trial, timings, "score_trial")
        timings["active"] = True
        for _ in range(args.measure):
            one_trial(oracle, rng, timings)
        del timings["active"]
        timings["overhead"] = [
            a + b + c
            for a, b, c in zip(
                timings["populate_space"],
                timings["score_trial"],
                timings["get_best_trials"],
            )
        ]
    result = {
        "completed_before": args.completed,
        "measured_trials": args.measure,
        "median_ms": {
            key: round(1000 * statistics.median(values), 2)
            for key, values in timings.items()
        },
        "mean_ms": {
            key: round(1000 * statistics.mean(values), 2)
            for key, values in timings.items()
        },
        "fill_seconds": round(fill_seconds, 2),
        "front_size": len(oracle.pareto_front()),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key in timings:
            print(
                f"{key:22s} median {result['median_ms'][key]:7.2f} ms  "
                f"mean {result['mean_ms'][key]:7.2f} ms"
            )
        print(
            f"({args.measure} trials after {args.completed} completed; "
            f"Pareto front of {result['front_size']}; filling took "
            f"{fill_seconds:.1f} s)"
        )
    return result


if __name__ == "__main__":
    main()
