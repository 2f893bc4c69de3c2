"""What head genes can buy: LiteRT latency of EvoPose2D-S with fewer or
narrower head steps, against SimpleBaseline-R50, in one run.

Each model is exported with `export_litert` (float32 and full-integer
int8, calibrated on 8 random images, one 256x192 image, the default head
rewrite) and timed with `measure_litert_latency` (one thread, CPU time of
the calling thread, median of 9 rounds of 5 calls, files interleaved).
The head variants are what a search with head genes
(`SearchSpace(head_filter_choices=..., head_steps=...)`) can reach from S:
fewer upsampling steps give coarser heatmaps (64x48 instead of 128x96).

    python benchmarks/head_steps_latency.py
"""

import os
import pathlib
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

# name -> head_filters of EvoPose2D-S (None: SimpleBaseline-R50).
VARIANTS = {
    "S, 3 head steps of 128 (the preset)": [128, 128, 128],
    "S, 2 head steps of 128": [128, 128],
    "S, 2 head steps of 64": [64, 64],
    "SimpleBaseline-R50": None,
}


def main():
    import edge_latency
    import numpy as np

    from keras_evopose.export import export_litert
    from keras_evopose.export import measure_litert_latency
    from keras_evopose.models import EvoPose2D

    images = np.random.default_rng(0).normal(size=(8, 256, 192, 3))
    images = images.astype("float32")
    folder = tempfile.mkdtemp()
    rows = []
    for name, head_filters in VARIANTS.items():
        model = (
            edge_latency.build_model("simple_baseline_r50")
            if head_filters is None
            else EvoPose2D.from_preset("small", head_filters=head_filters)
        )
        for precision in ("float32", "int8"):
            path = os.path.join(folder, f"{len(rows)}.tflite")
            export_litert(
                model,
                path,
                quantization="int8" if precision == "int8" else None,
                representative_data=images,
                num_calibration_samples=len(images),
            )
            heatmaps = "x".join(map(str, model.output_shape[1:3]))
            rows.append((name, precision, heatmaps, model.count_params(), path))
    print(f"load average before timing: {os.getloadavg()}")
    milliseconds = measure_litert_latency(
        [row[-1] for row in rows],
        num_threads=1,
        num_rounds=9,
        num_invokes=5,
        clock="cpu",
    )
    print(f"load average after timing: {os.getloadavg()}")
    reference = {
        row[1]: value
        for row, value in zip(rows, milliseconds)
        if VARIANTS[row[0]] is None
    }
    print(
        "| model | precision | heatmaps | params | ms (1 thread, CPU) "
        "| SimpleBaseline-R50 / model |\n|---|---|---|---|---|---|"
    )
    for (name, precision, heatmaps, params, _), value in zip(
        rows, milliseconds
    ):
        print(
            f"| {name} | {precision} | {heatmaps} | {params:,} | "
            f"{value:.2f} | {reference[precision] / value:.2f}x |"
        )


if __name__ == "__main__":
    main()
