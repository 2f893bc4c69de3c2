"""Where a trial's wall time goes (`TrialTiming`)."""

import contextlib
import statistics
import time

import keras

from keras_evopose.api_export import keras_evopose_export

# The phases of a trial, in the order a trial runs them.
PHASES = (
    "build",
    "setup",
    "model_size",
    "weight_transfer",
    "trace",
    "train_steps",
    "val_steps",
    "epoch_overhead",
    "state_writes",
    "other",
)


class _Mark(keras.callbacks.Callback):
    """Closes the phase `name` when `on_train_begin` reaches it: placed
    after a callback, it times that callback's `on_train_begin`."""

    def __init__(self, timing, name):
        super().__init__()
        self.timing = timing
        self.name = name

    def on_train_begin(self, logs=None):
        self.timing.close_phase(self.name)


@keras_evopose_export("keras_evopose.search.TrialTiming")
class TrialTiming(keras.callbacks.Callback):
    """Splits one trial's wall time into phases, in seconds.

    `build` (the model and its compile), `setup` (`fit`'s own setup and
    the trial's second compile, up to `on_train_begin`), `model_size`,
    `weight_transfer` (the `on_train_begin` of the callbacks placed before
    `mark("model_size")` and `mark("weight_transfer")`), `trace` (what the
    first training and the first validation step took beyond a typical
    step of theirs: tracing the step functions, building the optimizer,
    filling the input pipeline), `train_steps` and `val_steps` (every
    other step: the training itself), `epoch_overhead` (inside `fit`,
    between steps: new data iterators, epoch-end callbacks), `state_writes`
    (checkpoint and state files) and `other` (the rest of `wall`).

    In `fit`'s callbacks: `mark("setup")` first, each `mark(name)` right
    after the callbacks it times, the `TrialTiming` itself last; call
    `fit_began()` right before `fit`; wrap other code in `phase(name)`.

    Example:

    ```python
    timing = TrialTiming()
    with timing.phase("build"):
        model = build()
    timing.fit_began()
    model.fit(data, callbacks=[timing.mark("setup"), timing])
    timing.summary()  # {"wall": ..., "build": ..., "train_steps": ...}
    ```
    """

    def __init__(self):
        super().__init__()
        self.started = time.perf_counter()
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._train_steps = []
        self._val_steps = []
        self._fit_began = None
        self._last = None
        self._step_began = None

    def mark(self, name):
        """A callback that times the `on_train_begin` of the callbacks
        between the previous mark (or the start of `fit`) and itself as
        `name`; put it right after them, the `TrialTiming` last."""
        return _Mark(self, name)

    @contextlib.contextmanager
    def phase(self, name):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - began

    def fit_began(self):
        """Call right before `model.fit`: starts `setup`."""
        self._fit_began = self._last = time.perf_counter()

    def close_phase(self, name):
        now = time.perf_counter()
        if self._last is None:
            self._last = now
        self.seconds[name] += now - self._last
        self._last = now

    def on_train_begin(self, logs=None):
        # The `on_train_begin` of unmarked callbacks is setup too.
        self.close_phase("setup")
        self._fit_train_began = self._last

    def on_train_batch_begin(self, batch, logs=None):
        self._step_began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._train_steps.append(time.perf_counter() - self._step_began)

    def on_test_batch_begin(self, batch, logs=None):
        self._step_began = time.perf_counter()

    def on_test_batch_end(self, batch, logs=None):
        self._val_steps.append(time.perf_counter() - self._step_began)

    def on_train_end(self, logs=None):
        inside = time.perf_counter() - self._fit_train_began
        # The first step of each function pays for its tracing; a
        # typical step is the median of the others.
        for name, steps in (
            ("train_steps", self._train_steps),
            ("val_steps", self._val_steps),
        ):
            if not steps:
                continue
            typical = statistics.median(steps[1:]) if steps[1:] else 0.0
            excess = max(steps[0] - typical, 0.0)
            self.seconds["trace"] += excess
            self.seconds[name] += sum(steps) - excess
        self.steps = {
            "train": len(self._train_steps),
            "val": len(self._val_steps),
        }
        self.seconds["epoch_overhead"] += (
            inside - sum(self._train_steps) - sum(self._val_steps)
        )
        self._train_steps, self._val_steps = [], []

    def summary(self):
        """`{"wall": s, phase: s, ...}`; `other` is `wall` less the
        phases, `training_share` the steps' share of `wall`."""
        wall = time.perf_counter() - self.started
        seconds = dict(self.seconds)
        seconds["other"] = max(
            wall - sum(v for k, v in seconds.items() if k != "other"), 0.0
        )
        result = {"wall": wall, **seconds}
        result["training_share"] = (
            (seconds["train_steps"] + seconds["val_steps"]) / wall
            if wall > 0
            else 0.0
        )
        return result
