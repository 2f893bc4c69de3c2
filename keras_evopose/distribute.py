"""Data-parallel training: `tf.distribute` strategies and JAX's
`keras.distribution`, chosen from command-line flags.

Models train with plain `model.fit` under every strategy: build and
compile them inside the scope, then fit. Under the TensorFlow backend that
is a `tf.distribute` strategy (`MirroredStrategy` for the GPUs of one
machine, `TPUStrategy` for a Cloud TPU); under JAX it is
`keras.distribution.DataParallel` over all devices (Keras' TF distribution
module is a prototype, so JAX is the way to use `keras.distribution`).
TensorFlow and JAX are imported inside the functions.
"""

import contextlib

import keras

from keras_evopose.api_export import keras_evopose_export


class StrategyUnavailableError(ValueError):
    """The asked-for `tf.distribute` strategy cannot run on this machine
    (no TPU reachable, ...): a problem of the environment, not a bug."""


@keras_evopose_export("keras_evopose.distribute.tpu_strategy")
def tpu_strategy(tpu="local"):
    """Connects to a TPU and returns a `tf.distribute.TPUStrategy`.

    Args:
        tpu: the TPU name or `grpc://` address (Cloud TPU), or `"local"`
            for the TPU chips of this host (a TPU VM).

    Returns:
        A `tf.distribute.TPUStrategy`.

    Raises:
        ValueError: when no TPU can be reached (the message names `tpu`
            and the cause).
    """
    import tensorflow as tf

    if not tpu:
        raise ValueError(
            "tpu_strategy: `tpu` is empty. Pass a TPU name, a grpc:// "
            "address, or 'local' on a TPU VM."
        )
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except Exception as error:  # The resolver raises many kinds.
        cause = str(error).splitlines()[0][:200] if str(error) else ""
        raise StrategyUnavailableError(
            f"No TPU could be reached for --tpu={tpu!r} "
            f"({type(error).__name__}: {cause}). Run on a TPU VM with "
            "--tpu=local, pass the name or grpc:// address of a Cloud TPU, "
            "or leave out --tpu to train on this machine's CPU/GPUs."
        ) from error


@keras_evopose_export("keras_evopose.distribute.strategy_from_flags")
def strategy_from_flags(tpu=None, mirrored=False, devices=None):
    """The `tf.distribute` strategy that command-line flags ask for.

    Args:
        tpu: `None` (no TPU), a TPU name, a `grpc://` address, or
            `"local"` (see `tpu_strategy`).
        mirrored: bool, use `MirroredStrategy` (synchronous data parallel
            over the GPUs of this machine, or `devices`).
        devices: optional list of device names for `MirroredStrategy`,
            e.g. `["/cpu:0", "/cpu:1"]`.

    Returns:
        A `tf.distribute.Strategy`: the TPU strategy, a
        `MirroredStrategy`, or the default (single-device) strategy.

    Raises:
        ValueError: for both `tpu` and `mirrored`, when the backend is not
            TensorFlow, or when no TPU can be reached.

    Example:

    ```python
    strategy = keras_evopose.distribute.strategy_from_flags(mirrored=True)
    with strategy.scope():
        model = keras_evopose.models.EvoPose2D.from_preset("small")
        model.compile(optimizer="adam", loss=keras_evopose.losses.HeatmapMSE())
    model.fit(dataset, epochs=10)  # global batch split across replicas
    ```
    """
    if tpu and (mirrored or devices):
        raise ValueError(
            "strategy_from_flags: pass either `tpu` or `mirrored`/`devices`, "
            f"not both. Received: tpu={tpu!r}, mirrored={mirrored}, "
            f"devices={devices}"
        )
    if keras.backend.backend() != "tensorflow":
        raise StrategyUnavailableError(
            "strategy_from_flags builds tf.distribute strategies, which "
            "need KERAS_BACKEND=tensorflow. Received backend: "
            f"{keras.backend.backend()}. With JAX use "
            "keras_evopose.distribute.data_parallel()."
        )
    import tensorflow as tf

    if tpu:
        return tpu_strategy(tpu)
    if mirrored or devices:
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


@keras_evopose_export("keras_evopose.distribute.average_replica_statistics")
def average_replica_statistics(model):
    """Averages mirrored non-trainable variables over the replicas.

    Under `MirroredStrategy`, Keras 3.15 creates the BatchNormalization
    moving mean and variance with aggregation `"none"`, so each replica
    updates its own copy from its own shard of the batch and the copies
    drift apart; `model.save` and single-device inference then use
    replica 0's. Call this after `fit` (or from a callback at each epoch
    end) to set every copy to the mean over the replicas. Variables that
    are not mirrored are left alone, so it is a no-op outside a strategy.

    Args:
        model: a Keras model built in a `tf.distribute` strategy scope.

    Returns:
        The number of variables that were averaged.
    """
    if keras.backend.backend() != "tensorflow":
        return 0
    import tensorflow as tf

    count = 0
    for variable in model.non_trainable_variables:
        value = getattr(variable, "value", None)
        copies = getattr(value, "values", None)
        if not isinstance(copies, tuple) or len(copies) < 2:
            continue
        mean = tf.add_n([tf.identity(copy) for copy in copies]) / len(copies)
        value.assign(mean)
        count += 1
    return count


@keras_evopose_export("keras_evopose.distribute.data_parallel")
def data_parallel(devices=None):
    """`keras.distribution.DataParallel` over all (or the given) devices.

    JAX backend only. Use it as a scope (`with data_parallel().scope():`)
    or set it globally with `keras.distribution.set_distribution`. Each
    global batch is split along the batch axis across the devices;
    variables are replicated.

    Args:
        devices: optional list of device names; defaults to
            `keras.distribution.list_devices()` (all GPUs or TPU cores, or
            the CPU devices forced with
            `XLA_FLAGS=--xla_force_host_platform_device_count=N`).

    Returns:
        A `keras.distribution.DataParallel`.

    Raises:
        ValueError: when the backend is not JAX.
    """
    if keras.backend.backend() != "jax":
        raise ValueError(
            "data_parallel uses keras.distribution, which works with "
            "KERAS_BACKEND=jax. Received backend: "
            f"{keras.backend.backend()}. With TensorFlow use "
            "keras_evopose.distribute.strategy_from_flags()."
        )
    if devices is None:
        devices = keras.distribution.list_devices()
    return keras.distribution.DataParallel(devices=devices)


@keras_evopose_export("keras_evopose.distribute.distribution_scope")
def distribution_scope(tpu=None, mirrored=False):
    """The scope a command line builds, compiles and fits its model in.

    TensorFlow backend: the scope of `strategy_from_flags(tpu, mirrored)`.
    JAX backend: with `tpu` or `mirrored`, a `data_parallel()` scope over
    all devices (with `tpu`, they must be TPU cores); otherwise nothing.

    Args:
        tpu: `None` or a TPU name / address / `"local"`.
        mirrored: bool, data parallel over this machine's devices.

    Returns:
        A context manager.

    Raises:
        ValueError: when a TPU is asked for and none is reachable.
    """
    if keras.backend.backend() == "jax":
        if tpu:
            import jax

            platforms = {device.platform for device in jax.devices()}
            if platforms != {"tpu"}:
                raise StrategyUnavailableError(
                    f"--tpu={tpu!r} with KERAS_BACKEND=jax needs this host's "
                    "TPU cores, but JAX sees only "
                    f"{sorted(platforms)} devices. Run on a TPU VM or leave "
                    "out --tpu."
                )
        if tpu or mirrored:
            return data_parallel().scope()
        return contextlib.nullcontext()
    return strategy_from_flags(tpu=tpu, mirrored=mirrored).scope()
