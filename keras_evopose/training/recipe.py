"""The paper's training recipe as plain Keras objects."""

import math

import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.utils.validation import check_positive_int

# The reference's weight decay: Keras `l2` (1e-5 * sum(w ** 2), no 1/2).
WEIGHT_DECAY = 1e-5


@keras_evopose_export("keras_evopose.training.batch_scaled_learning_rate")
def batch_scaled_learning_rate(
    batch_size, base_learning_rate=2.5e-4, base_batch_size=32
):
    """The reference's linear scaling: `base * batch_size / base_batch`.

    2.5e-4 at batch 32, so 4e-3 at the search's batch of 512.

    Example:

    >>> keras_evopose.training.batch_scaled_learning_rate(512)
    0.004
    """
    check_positive_int("batch_size", batch_size, integral_floats=True)
    return base_learning_rate * batch_size / base_batch_size


@keras_evopose_export("keras_evopose.training.learning_rate_schedule")
def learning_rate_schedule(
    batch_size,
    steps_per_epoch,
    epochs=200,
    warmup_epochs=5,
    base_learning_rate=2.5e-4,
    base_batch_size=32,
):
    """The reference schedule: linear scaling, warm-up, cosine decay to 0.

    The peak rate is `base_learning_rate * batch_size / base_batch_size`;
    the rate starts at `base_learning_rate`, rises linearly to the peak
    over `warmup_epochs`, then follows a cosine to 0 over the remaining
    epochs. It is Keras' own `CosineDecay` with warm-up.

    Args:
        batch_size: int, global batch size.
        steps_per_epoch: int, optimizer steps per epoch.
        epochs: int, total epochs (warm-up included). Defaults to 200.
        warmup_epochs: int or float. Defaults to 5.
        base_learning_rate: float, the rate at `base_batch_size`.
        base_batch_size: int. Defaults to 32.

    Returns:
        A `keras.optimizers.schedules.CosineDecay`.

    Examples:
        >>> schedule = keras_evopose.training.learning_rate_schedule(
        ...     batch_size=512, steps_per_epoch=100, epochs=10,
        ...     warmup_epochs=1)
        >>> [round(float(schedule(step)), 6) for step in (0, 100, 1000)]
        [0.00025, 0.004, 0.0]
    """
    for name, value in (
        ("batch_size", batch_size),
        ("steps_per_epoch", steps_per_epoch),
        ("epochs", epochs),
    ):
        check_positive_int(name, value, integral_floats=True)
    if not 0 <= warmup_epochs < epochs:
        raise ValueError(
            "`warmup_epochs` must be in [0, epochs). Received: "
            f"warmup_epochs={warmup_epochs}, epochs={epochs}"
        )
    peak = batch_scaled_learning_rate(
        batch_size, base_learning_rate, base_batch_size
    )
    warmup_steps = int(math.ceil(warmup_epochs * steps_per_epoch))
    decay_steps = int(epochs * steps_per_epoch) - warmup_steps
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(
            peak, decay_steps=decay_steps, alpha=0.0
        )
    return keras.optimizers.schedules.CosineDecay(
        base_learning_rate,
        decay_steps=decay_steps,
        alpha=0.0,
        warmup_target=peak,
        warmup_steps=warmup_steps,
    )


@keras_evopose_export("keras_evopose.training.evopose2d_optimizer")
def evopose2d_optimizer(
    batch_size,
    steps_per_epoch,
    epochs=200,
    warmup_epochs=5,
    base_learning_rate=2.5e-4,
    base_batch_size=32,
):
    """Adam (Keras defaults, no clipping) on `learning_rate_schedule`.

    The reference also adds L2 weight decay 1e-5 on conv kernels; that is
    a model setting, not an optimizer one: build the model with
    `kernel_regularizer=evopose2d_regularizer()`.

    The paper's long training (200 epochs, 5 of warm-up from the base
    rate to the batch-scaled peak, then a cosine to 0). A search trial
    uses `keras_evopose.search.TrialOptimizer` instead, kept apart on
    purpose: the reference's search trains each trial briefly from a
    given rate with no warm-up, the cosine over that trial's own steps
    (see its docstring for the differences).

    Args:
        batch_size: int, global batch size.
        steps_per_epoch: int, optimizer steps per epoch.
        epochs: int, total epochs (warm-up included). Defaults to 200.
        warmup_epochs: int or float. Defaults to 5.
        base_learning_rate: float, the rate at `base_batch_size`.
        base_batch_size: int. Defaults to 32 (all as in
            `learning_rate_schedule`).

    Returns:
        A `keras.optimizers.Adam`.

    Example:

    >>> optimizer = keras_evopose.training.evopose2d_optimizer(
    ...     batch_size=64, steps_per_epoch=10, epochs=3, warmup_epochs=1)
    >>> type(optimizer).__name__
    'Adam'
    """
    return keras.optimizers.Adam(
        learning_rate=learning_rate_schedule(
            batch_size,
            steps_per_epoch,
            epochs=epochs,
            warmup_epochs=warmup_epochs,
            base_learning_rate=base_learning_rate,
            base_batch_size=base_batch_size,
        )
    )


@keras_evopose_export("keras_evopose.training.evopose2d_regularizer")
def evopose2d_regularizer(weight_decay=WEIGHT_DECAY):
    """The reference's weight decay as a kernel regularizer.

    Pass it as `kernel_regularizer` to `EvoPose2D.from_preset` (or the
    backbone, the layers): it penalises every Conv2D and Conv2DTranspose
    kernel (stem, expansion, squeeze-and-excite, projection, head), not the
    depthwise kernels, biases or BN, exactly the reference's 76 kernels of
    `small`. Keras' `L2` adds `weight_decay * sum(w ** 2)` (no 1/2), as the
    reference's `l2`.

    Args:
        weight_decay: float >= 0. Defaults to 1e-5 (the paper's). 0 gives
            `None` (no regularizer).

    Returns:
        A `keras.regularizers.L2`, or `None` for 0.

    Example:

    >>> l2 = keras_evopose.training.evopose2d_regularizer()
    >>> model = keras_evopose.models.EvoPose2D.from_preset(
    ...     "test", kernel_regularizer=l2)
    >>> model.backbone.kernel_regularizer.l2
    1e-05
    """
    if (
        isinstance(weight_decay, bool)
        or not isinstance(weight_decay, (int, float))
        or weight_decay < 0
    ):
        raise ValueError(
            "`weight_decay` must be a float >= 0 (the paper's is 1e-5). "
            f"Received: weight_decay={weight_decay!r}"
        )
    if weight_decay == 0:
        return None
    return keras.regularizers.L2(weight_decay)
