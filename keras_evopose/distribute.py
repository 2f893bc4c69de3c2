"""Data-parallel training: `tf.distribute` strategies and JAX's
`keras.distribution`, chosen from command-line flags.

Several machines (`train --multi-worker`): every worker runs the same
command; the cluster comes from the environment (`TF_CONFIG` under
TensorFlow, `KERAS_DISTRIBUTION_*` under JAX, see `multi_worker_role`),
and worker 0 is the chief, the only one that writes the run folder.

Models train with plain `model.fit` under every strategy: build and
compile them inside the scope, then fit. Under the TensorFlow backend that
is a `tf.distribute` strategy (`MirroredStrategy` for the GPUs of one
machine, `TPUStrategy` for a Cloud TPU); under JAX it is
`keras.distribution.DataParallel` over all devices (Keras' TF distribution
module is a prototype, so JAX is the way to use `keras.distribution`).
TensorFlow and JAX are imported inside the functions.
"""

import contextlib
import dataclasses
import json
import os

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


@keras_evopose_export("keras_evopose.distribute.WorkerRole")
@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process's place in a multi-worker cluster.

    Attributes:
        index: 0 for the chief, then 1, 2, ... for the other workers.
        count: the number of workers (processes) in the cluster.
    """

    index: int
    count: int

    @property
    def is_chief(self):
        """Whether this worker writes the run folder."""
        return self.index == 0


_JAX_ENVIRONMENT = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)
_TF_CONFIG_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)


@keras_evopose_export("keras_evopose.distribute.multi_worker_role")
def multi_worker_role():
    """This process's `WorkerRole`, read from the environment only.

    TensorFlow: `TF_CONFIG` (`cluster` with `worker` and optionally one
    `chief`; `task` with `type` and `index`); the `chief`, or else worker
    0, is index 0. JAX: `KERAS_DISTRIBUTION_JOB_ADDRESSES` (comma separated
    `host:port`, the first one the coordinator),
    `KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID`
    (what `keras.distribution.initialize` reads).

    Raises:
        StrategyUnavailableError: the variables are missing or malformed
            (the message names the variable and shows a valid value).
    """
    backend = keras.backend.backend()
    if backend == "jax":
        missing = [n for n in _JAX_ENVIRONMENT if not os.environ.get(n)]
        if missing:
            raise StrategyUnavailableError(
                f"--multi-worker with KERAS_BACKEND=jax needs {missing} set "
                "on every worker, e.g. KERAS_DISTRIBUTION_JOB_ADDRESSES="
                "host0:12345,host1:12345 KERAS_DISTRIBUTION_NUM_PROCESSES=2 "
                "KERAS_DISTRIBUTION_PROCESS_ID=0 (1 on the second worker)"
            )
        try:
            count = int(os.environ["KERAS_DISTRIBUTION_NUM_PROCESSES"])
            index = int(os.environ["KERAS_DISTRIBUTION_PROCESS_ID"])
        except ValueError:
            count = index = -1
        if not 0 <= index < count:
            raise StrategyUnavailableError(
                "KERAS_DISTRIBUTION_PROCESS_ID must be an integer from 0 to "
                "KERAS_DISTRIBUTION_NUM_PROCESSES - 1; received "
                f"{os.environ['KERAS_DISTRIBUTION_PROCESS_ID']!r} and "
                f"{os.environ['KERAS_DISTRIBUTION_NUM_PROCESSES']!r}"
            )
        return WorkerRole(index=index, count=count)
    if backend != "tensorflow":
        raise StrategyUnavailableError(
            "--multi-worker needs KERAS_BACKEND=tensorflow or jax; received "
            f"{backend}"
        )
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise StrategyUnavailableError(
            "--multi-worker reads the cluster from TF_CONFIG, which is not "
            f"set; set it on every worker, e.g. {_TF_CONFIG_EXAMPLE} "
            "(index 1 on the second)"
        )
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        chiefs = list(cluster.get("chief", []))
        workers = list(cluster.get("worker", []))
        kind, position = task["type"], int(task["index"])
        index = position if kind == "chief" else len(chiefs) + position
        if kind == "chief":
            valid = position == 0 and len(chiefs) == 1
        else:
            valid = kind == "worker" and 0 <= position < len(workers)
        valid = valid and len(chiefs) <= 1
    except (ValueError, KeyError, TypeError, AttributeError):
        valid = False
    if not valid:
        raise StrategyUnavailableError(
            f"TF_CONFIG {raw!r} does not name this task in its cluster; "
            f"expected e.g. {_TF_CONFIG_EXAMPLE}"
        )
    return WorkerRole(index=index, count=len(chiefs) + len(workers))


def _join_cluster():
    """Connects this process to the others; returns the scope to train in."""
    if keras.backend.backend() == "jax":
        import jax

        # CPU processes exchange gradients through gloo (GPUs use NCCL);
        # set before JAX's backend starts.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        keras.distribution.initialize()
        # Keras cannot read the batch size of our pipeline (it batches
        # twice); `shard_for_worker` splits each global batch instead.
        return keras.distribution.DataParallel(
            devices=keras.distribution.list_devices(),
            auto_shard_dataset=False,
        ).scope()
    import tensorflow as tf

    return tf.distribute.MultiWorkerMirroredStrategy().scope()


def shard_for_worker(dataset, batch_size, role):
    """This worker's part of every global batch of a `tf.data` dataset.

    Under JAX each process feeds its own slice of the global batch (every
    process builds the same stream, same seed); `tf.distribute` splits
    batches itself, so under TensorFlow the dataset is returned as is.

    Args:
        dataset: batches of `batch_size` (the global batch).
        batch_size: int, divisible by `role.count`.
        role: a `WorkerRole`.
    """
    if keras.backend.backend() != "jax" or role.count == 1:
        return dataset
    if batch_size % role.count:
        raise StrategyUnavailableError(
            f"--batch-size {batch_size} must be divisible by the "
            f"{role.count} workers (each trains on an equal slice)"
        )
    return dataset.rebatch(batch_size // role.count).shard(
        role.count, role.index
    )


def prepare_multi_worker_model(model):
    """Lets Keras 3.15's `fit` run under `MultiWorkerMirroredStrategy`.

    Two places in Keras' TensorFlow trainer fail with several workers
    (keras-team/keras#20585, tensorflow/tensorflow#72388): the first batch
    is reduced across workers only to learn its shapes (a nested batch
    cannot be reduced: "Attempt to convert a value (PerReplica ...)"),
    and every step's scalar logs are reduced with `axis=0` ("Invalid
    reduction dimension 0"). Per model (nothing global): the shapes come
    from this worker's own part of the batch, and the logs get a leading
    axis of 1, which the reduction then removes. A no-op outside a
    multi-worker TensorFlow strategy; the saved model is unchanged.
    """
    if keras.backend.backend() != "tensorflow":
        return model
    import tensorflow as tf

    strategy = model.distribute_strategy
    if not (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    ):
        return model
    build = model._maybe_symbolic_build

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(
                    lambda value: strategy.experimental_local_results(value)[0],
                    next(batches),
                )
                break
        return build(data_batch=data_batch)

    def with_leading_axis(step):
        def wrapped(data):
            return {
                name: keras.ops.expand_dims(value, 0)
                for name, value in step(data).items()
            }

        return wrapped

    model._maybe_symbolic_build = maybe_symbolic_build
    model.train_step = with_leading_axis(model.train_step)
    model.test_step = with_leading_axis(model.test_step)
    return model


@keras_evopose_export("keras_evopose.distribute.distribution_scope")
def distribution_scope(tpu=None, mirrored=False, multi_worker=False):
    """The scope a command line builds, compiles and fits its model in.

    TensorFlow backend: the scope of `strategy_from_flags(tpu, mirrored)`.
    JAX backend: with `tpu` or `mirrored`, a `data_parallel()` scope over
    all devices (with `tpu`, they must be TPU cores); otherwise nothing.

    Args:
        tpu: `None` or a TPU name / address / `"local"`.
        mirrored: bool, data parallel over this machine's devices.
        multi_worker: bool, data parallel over the devices of several
            processes (machines): TensorFlow's
            `MultiWorkerMirroredStrategy` from `TF_CONFIG`, or under JAX
            `keras.distribution.initialize()` and `DataParallel` over every
            process's devices (see `multi_worker_role`). Call it before
            any other TensorFlow or JAX work in the process, and pass the
            compiled model through `prepare_multi_worker_model`.

    Returns:
        A context manager.

    Raises:
        ValueError: when a TPU is asked for and none is reachable.
    """
    if multi_worker:
        if tpu or mirrored:
            raise ValueError(
                "distribution_scope: `multi_worker` already spans every "
                "device of every worker; leave out `tpu` and `mirrored`"
            )
        multi_worker_role()  # a missing cluster is one line, not a hang
        return _join_cluster()
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
