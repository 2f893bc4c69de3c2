"""Weight transfer vs random init for each mutation kind (EvoPose2D's claim).

Task: the 80 labelled people of the bundled `data/coco_kpt_mini` (real COCO
val2017 crops, 64x48 input, no augmentation, fixed order) with Gaussian
heatmap targets at the network's output resolution and the paper's
target-weighted heatmap MSE (`keras_evopose.losses.HeatmapMSE`, targets
peaking at 255 as in the reference). Adam runs at 1e-2: at 1e-3 a
100-step parent moved the loss only from 161.73 to 161.67 (the output has
to grow to the 255 scale first), and with peak-1 targets a 400-step parent
never left the all-zero prediction's loss; both were measured before this
benchmark's results. The network is the `test` preset's genotype and head
(17k parameters).

1. The parent trains `--parent-steps` steps (Adam, batch `--batch-size`).
   Its final loss is the evaluation-mode loss on the 80 crops.
2. Each mutation kind makes one child genotype. The child is built twice
   from the same seed: (a) with `transfer_weights(parent, child)` applied,
   (b) as built (random init). Both train `--child-steps` steps with the
   same optimizer and the same data order; every `--eval-every` steps the
   evaluation-mode loss on the 80 crops is recorded.
3. Reported per mutation: the loss right after transfer (before any step)
   and at random init, the first evaluated step at which each arm reaches
   the parent's final loss (`-` if never within the budget), and the final
   losses.

The stride mutation changes the heatmap resolution (the targets are
rendered at the child's output size, the same Gaussian in input pixels), so
its losses are not strictly comparable with the parent's.

    python benchmarks/weight_transfer.py [--parent-steps 240] \
        [--child-steps 200] [--json results.json]
"""

import argparse
import json
import os
import pathlib
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = pathlib.Path(__file__).resolve().parents[1]
MINI = ROOT / "data" / "coco_kpt_mini"
INPUT_SIZE = (64, 48)

# (name, stage (1-based), old gene text, new gene text) on the test genotype
# ir_r1_k3_s1_e1_c8 / ir_r1_k3_s2_e2_c16 / ir_r2_k5_s2_e2_c16 /
# ir_r1_k3_s2_e2_c24.
MUTATIONS = [
    ("kernel 3->5 (stage 4)", 4, "_k3_", "_k5_"),
    ("kernel 5->3 (stage 3)", 3, "_k5_", "_k3_"),
    ("width 16->24 (stage 3)", 3, "_c16_", "_c24_"),
    ("width 16->8 (stage 3)", 3, "_c16_", "_c8_"),
    ("repeats 2->3 (stage 3)", 3, "_r2_", "_r3_"),
    ("repeats 2->1 (stage 3)", 3, "_r2_", "_r1_"),
    ("stride 2->1 (stage 4)", 4, "_s2_", "_s1_"),
]


def load_crops(heatmap_size, heatmap_peak):
    """All labelled people as numpy arrays (images, heatmaps, weights)."""
    import numpy as np

    from keras_evopose.data import coco_keypoints_dataset

    dataset = coco_keypoints_dataset(
        MINI / "annotations" / "person_keypoints_val2017_mini.json",
        MINI / "val2017",
        input_size=INPUT_SIZE,
        heatmap_size=heatmap_size,
        training=False,
        batch_size=128,
        heatmap_peak=heatmap_peak,
    )
    parts = list(zip(*[tuple(t.numpy() for t in batch) for batch in dataset]))
    return tuple(np.concatenate(p) for p in parts)


def build(genotype, seed, learning_rate):
    import keras

    from keras_evopose.losses import HeatmapMSE
    from keras_evopose.models import EvoPose2D

    keras.utils.set_random_seed(seed)
    model = EvoPose2D.from_preset("test", genotype=genotype)
    # No XLA: compiling 15 small models would cost more than training them.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=HeatmapMSE(),
        jit_compile=False,
    )
    return model


def evaluate(model, data):
    """The HeatmapMSE of the whole set in evaluation mode (one batch)."""
    import numpy as np

    images, heatmaps, weights = data
    predictions = np.asarray(model.predict_on_batch(images), "float64")
    return float(np.mean(weights * (predictions - heatmaps) ** 2))


def train(model, data, steps, batch_size, eval_every):
    """Trains `steps` steps in a fixed order; returns [(step, loss)]."""
    import keras

    images, heatmaps, weights = data
    steps_per_epoch = len(images) // batch_size
    if eval_every % steps_per_epoch or steps % eval_every:
        raise ValueError(
            f"--eval-every ({eval_every}) must be a multiple of the steps "
            f"per epoch ({steps_per_epoch}) and divide the step budgets "
            f"(received {steps})."
        )
    curve = [(0, evaluate(model, data))]

    class Curve(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            done = (epoch + 1) * steps_per_epoch
            if done % eval_every == 0:
                curve.append((done, evaluate(model, data)))

    used = steps_per_epoch * batch_size
    model.fit(
        images[:used],
        heatmaps[:used],
        sample_weight=weights[:used],
        batch_size=batch_size,
        epochs=steps // steps_per_epoch,
        shuffle=False,
        verbose=0,
        callbacks=[Curve()],
    )
    return curve


def steps_to_reach(curve, target):
    for step, loss in curve:
        if loss <= target:
            return step
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parent-steps", type=int, default=240)
    parser.add_argument("--child-steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--heatmap-peak", type=float, default=255.0)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    import keras

    from keras_evopose.models.presets import preset_arguments
    from keras_evopose.search import transfer_weights

    start = time.perf_counter()
    parent_genotype = list(preset_arguments("test", "backbone")["genotype"])
    data_by_size = {}

    def data_for(model):
        size = tuple(model.output_shape[1:3])
        if size not in data_by_size:
            data_by_size[size] = load_crops(size, args.heatmap_peak)
        return data_by_size[size]

    parent = build(parent_genotype, args.seed, args.learning_rate)
    parent_curve = train(
        parent,
        data_for(parent),
        args.parent_steps,
        args.batch_size,
        args.eval_every,
    )
    parent_loss = parent_curve[-1][1]
    print(
        f"parent: loss {parent_curve[0][1]:.2f} -> {parent_loss:.2f} "
        f"after {args.parent_steps} steps"
    )

    rows = []
    for name, stage, old, new in MUTATIONS:
        genotype = list(parent_genotype)
        genotype[stage - 1] = genotype[stage - 1].replace(old, new)
        row = {"mutation": name, "genotype": genotype}
        for arm in ("transfer", "random"):
            child = build(genotype, args.seed + 1, args.learning_rate)
            if arm == "transfer":
                report = transfer_weights(parent, child)
                row["report"] = {
                    "copied": len(report.copied),
                    "adapted": len(report.adapted),
                    "zeroed": len(report.zeroed),
                    "fresh": len(report.fresh),
                    "notes": report.notes,
                }
            curve = train(
                child,
                data_for(child),
                args.child_steps,
                args.batch_size,
                args.eval_every,
            )
            row[arm] = {
                "initial_loss": curve[0][1],
                "steps_to_parent_loss": steps_to_reach(curve, parent_loss),
                "final_loss": curve[-1][1],
                "curve": curve,
            }
        rows.append(row)
        print(format_row(row), flush=True)

    results = {
        "command": "python benchmarks/weight_transfer.py "
        f"--parent-steps {args.parent_steps} --child-steps "
        f"{args.child_steps} --eval-every {args.eval_every} --batch-size "
        f"{args.batch_size} --seed {args.seed} --learning-rate "
        f"{args.learning_rate} --heatmap-peak {args.heatmap_peak}",
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, keras {keras.__version__} "
        f"({keras.backend.backend()})",
        "parent_loss": parent_loss,
        "parent_curve": parent_curve,
        "rows": rows,
        "seconds": time.perf_counter() - start,
    }
    print(markdown_table(results))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    return results


def _steps(value):
    return "-" if value is None else str(value)


def format_row(row):
    t, r = row["transfer"], row["random"]
    return (
        f"{row['mutation']}: after transfer {t['initial_loss']:.2f} "
        f"(random {r['initial_loss']:.2f}); steps to parent loss "
        f"{_steps(t['steps_to_parent_loss'])} vs "
        f"{_steps(r['steps_to_parent_loss'])}; final {t['final_loss']:.2f} "
        f"vs {r['final_loss']:.2f}"
    )


def markdown_table(results):
    lines = [
        f"Parent final loss: {results['parent_loss']:.2f}",
        "",
        "| mutation | loss after transfer | loss at random init | steps to "
        "parent loss: transfer / random | final loss: transfer / random |",
        "|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        t, r = row["transfer"], row["random"]
        lines.append(
            f"| {row['mutation']} | {t['initial_loss']:.2f} | "
            f"{r['initial_loss']:.2f} | "
            f"{_steps(t['steps_to_parent_loss'])} / "
            f"{_steps(r['steps_to_parent_loss'])} | "
            f"{t['final_loss']:.2f} / {r['final_loss']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
