"""Each trial's own optimizer, made when its number of steps is known."""

import math

import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.utils.validation import check_positive_int

SCHEDULES = ("cosine", "constant")


def steps_per_epoch_of(x, fit_kwargs):
    """Optimizer steps per epoch of `model.fit(x, **fit_kwargs)`.

    From `steps_per_epoch` if given; else from the data: a `tf.data`
    dataset's cardinality, a `keras.utils.PyDataset` (or any sized
    batch source) by `len`, arrays by `ceil(samples / batch_size)`
    (`batch_size` defaulting to Keras' 32). No backend is imported.

    Raises:
        ValueError: when the count cannot be known (a generator, an
            infinite dataset): pass `steps_per_epoch` to `search`.
    """
    steps = fit_kwargs.get("steps_per_epoch")
    if steps is None:
        steps = _count_batches(x, fit_kwargs.get("batch_size") or 32)
    if steps is None or int(steps) < 1:
        raise ValueError(
            "The number of steps per epoch of the training data cannot be "
            "known (a generator, or a dataset of unknown or infinite "
            f"cardinality: {type(x).__name__}), so a trial's learning-rate "
            "schedule cannot end on its last step. Pass steps_per_epoch=N "
            "to tuner.search(...)."
        )
    return int(steps)


def _count_batches(x, batch_size):
    if hasattr(x, "cardinality"):
        # tf.data: -1 infinite, -2 unknown.
        count = int(x.cardinality())
        return count if count > 0 else None
    if isinstance(x, dict):
        x = next(iter(x.values()), None)
    elif isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape"):
        x = x[0]
    if hasattr(x, "shape") and getattr(x, "ndim", 0) >= 1:
        return math.ceil(x.shape[0] / batch_size)
    if hasattr(x, "__len__"):
        # keras.utils.PyDataset, a torch DataLoader: one item per batch.
        return len(x)
    return None


@keras_evopose_export("keras_evopose.search.TrialOptimizer")
class TrialOptimizer:
    """Makes each search trial's optimizer: the paper's child recipe.

    One schedule object cannot serve a 30-epoch ancestor and 5-epoch
    children, so the hypermodel calls this once per trial with that
    trial's epochs and steps per epoch. The default is the reference's
    search recipe for the ancestor and every child alike: a fresh Adam
    (Keras defaults) whose rate follows a cosine from `learning_rate` to 0
    over the trial's `epochs * steps_per_epoch` steps, without warm-up,
    so the rate reaches 0 exactly after the trial's last step.

    The reference's rate is scaled linearly with the batch: 2.5e-4 at
    batch 32, i.e. `keras_evopose.training.batch_scaled_learning_rate(
    batch_size)`, 4e-3 at its batch of 512 (the default here).

    A second recipe on purpose, not a twin of
    `keras_evopose.training.evopose2d_optimizer` (the paper's long
    training of a chosen network): that one is built once for a whole
    run, scales its rate with the batch itself and warms up linearly from
    the base rate over its first `warmup_epochs` (5 of 200) before the
    cosine; this one is a factory the hypermodel calls per trial (30 or 5
    epochs, known only then), takes the rate as given, has no warm-up
    (as the reference's search), offers `"constant"` and any Keras
    optimizer, and is serialisable (`get_config`). Both are Adam with
    Keras' defaults and a cosine to 0 at the last step.

    Args:
        learning_rate: float, the rate of the first step. Defaults to 4e-3.
        schedule: `"cosine"` (default: cosine decay to 0 over the trial) or
            `"constant"`.
        optimizer: str, a Keras optimizer name. Defaults to `"adam"`.

    Example:

    >>> make = keras_evopose.search.TrialOptimizer(learning_rate=1e-3)
    >>> optimizer = make(epochs=5, steps_per_epoch=10)
    >>> rates = []
    >>> for step in (0, 25, 50):
    ...     _ = optimizer.iterations.assign(step)
    ...     rates.append(round(float(optimizer.learning_rate), 6))
    >>> rates
    [0.001, 0.0005, 0.0]
    """

    def __init__(self, learning_rate=4e-3, schedule="cosine", optimizer="adam"):
        if (
            isinstance(learning_rate, bool)
            or not isinstance(learning_rate, (int, float))
            or not learning_rate > 0
        ):
            raise ValueError(
                f"learning_rate={learning_rate!r} must be a positive float "
                "(the paper: 2.5e-4 * batch_size / 32, 4e-3 at batch 512)."
            )
        if schedule not in SCHEDULES:
            raise ValueError(
                f"schedule={schedule!r} is not allowed; use one of "
                f"{', '.join(repr(s) for s in SCHEDULES)}."
            )
        self.learning_rate = float(learning_rate)
        self.schedule = schedule
        self.optimizer = optimizer
        # Fails now, not in the first trial, for an unknown name.
        keras.optimizers.get({"class_name": optimizer, "config": {}})

    def __call__(self, epochs, steps_per_epoch):
        """A new optimizer for a trial of `epochs` x `steps_per_epoch`."""
        for name, value in (
            ("epochs", epochs),
            ("steps_per_epoch", steps_per_epoch),
        ):
            check_positive_int(
                name, value, owner="TrialOptimizer", integral_floats=True
            )
        learning_rate = self.learning_rate
        if self.schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(
                self.learning_rate,
                decay_steps=int(epochs) * int(steps_per_epoch),
                alpha=0.0,
            )
        return keras.optimizers.get(
            {
                "class_name": self.optimizer,
                "config": {"learning_rate": learning_rate},
            }
        )

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "schedule": self.schedule,
            "optimizer": self.optimizer,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
