"""Median LiteRT latency of `.tflite` files, timed in interleaved rounds."""

import statistics
import time

import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.utils.validation import check_positive_int


@keras_evopose_export("keras_evopose.export.measure_litert_latency")
def measure_litert_latency(
    paths, num_threads=1, num_rounds=5, num_invokes=5, clock="wall"
):
    """Median milliseconds per call of each `.tflite` file.

    Every file gets its own interpreter (XNNPACK, `num_threads`), one
    untimed call (XNNPACK packs the weights then) and zero inputs. A round
    times `num_invokes` calls of each interpreter in turn and keeps their
    median; the result is the median over `num_rounds` rounds. Interleaving
    the files within each round keeps their ratios fair on a machine
    shared with other jobs.

    Args:
        paths: a `.tflite` path, or a list of paths.
        num_threads: int, interpreter threads. Defaults to 1.
        num_rounds: int. Defaults to 5.
        num_invokes: int, timed calls per file and round. Defaults to 5.
        clock: `"wall"` (elapsed time, what a user waits) or `"cpu"` (CPU
            time of the calling thread, which other jobs preempting this
            one do not inflate; needs `num_threads=1`, where XNNPACK
            computes on the calling thread). Defaults to `"wall"`.

    Returns:
        A float (one path) or a list of floats (a list of paths), in ms.

    Raises:
        ValueError: if a count is not a positive int, or for an unknown
            `clock` or `"cpu"` with several threads.
    """
    from ai_edge_litert.interpreter import Interpreter

    for name, value in (
        ("num_threads", num_threads),
        ("num_rounds", num_rounds),
        ("num_invokes", num_invokes),
    ):
        check_positive_int(name, value, owner="measure_litert_latency")
    if clock not in ("wall", "cpu"):
        raise ValueError(
            "measure_litert_latency: `clock` must be 'wall' or 'cpu'. "
            f"Received: clock={clock!r}"
        )
    if clock == "cpu" and num_threads != 1:
        raise ValueError(
            "measure_litert_latency: clock='cpu' measures the calling "
            "thread only, so it needs num_threads=1. Received: "
            f"num_threads={num_threads}"
        )
    timer = time.perf_counter if clock == "wall" else time.thread_time
    single = not isinstance(paths, (list, tuple))
    interpreters = []
    for path in [paths] if single else paths:
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(
                detail["index"], np.zeros(detail["shape"], detail["dtype"])
            )
        interpreter.invoke()
        interpreters.append(interpreter)
    rounds = [[] for _ in interpreters]
    for _ in range(num_rounds):
        for interpreter, medians in zip(interpreters, rounds):
            calls = []
            for _ in range(num_invokes):
                start = timer()
                interpreter.invoke()
                calls.append((timer() - start) * 1e3)
            medians.append(statistics.median(calls))
    latencies = [statistics.median(medians) for medians in rounds]
    return latencies[0] if single else latencies
