"""`train_pose_model(TrainConfig(...))`: a training run as a crash-safe folder.

The run folder holds `train_config.json` (the `TrainConfig`),
`checkpoint.json` (completed epochs, optimizer step, best so far, data
seed, per-epoch history) naming `checkpoint/epoch-NNNN.keras` (model and
optimizer state), `history.csv`, `curves.png`, `last.keras` and
`best.keras`. Every file is written through a temporary file and renamed,
and `checkpoint.json` is renamed only after the file it names is whole, so
`kill -9` at any moment loses at most the epoch in progress; `resume=True`
continues from the last completed epoch with the optimizer (and so the
learning-rate schedule) exactly where it was. One process at a time: the
folder is locked (`keras_evopose.utils.FolderLock`).
"""

import csv
import io
import math
import os
import pathlib
import shutil
import tempfile
import time

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.utils.folder_lock import LOCK_FILE
from keras_evopose.utils.folder_lock import FolderLock
from keras_evopose.utils.state_files import StateFileError
from keras_evopose.utils.state_files import read_json_state
from keras_evopose.utils.state_files import remove_partial_files
from keras_evopose.utils.state_files import write_atomically
from keras_evopose.utils.state_files import write_json_atomically

CONFIG_FILE = "train_config.json"
STATE_FILE = "checkpoint.json"
CHECKPOINT_FOLDER = "checkpoint"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
CURVES_EVERY_SECONDS = 30.0
LAST_MODEL = "last.keras"
BEST_MODEL = "best.keras"
# An epoch whose loss exceeds this many times the loss of predicting no
# heatmap at all has diverged, even when finite (lr 1e6 gave 6.9e21 and
# heatmaps of 1e29).
DIVERGENCE_FACTOR = 100.0
# What the one line per epoch shows (history.csv has every log).
SHOWN = ("loss", "val_loss", "val_ap", "val_ap50", "val_ar")


class TrainingDiverged(RuntimeError):
    """The loss went non-finite or exploded; nothing of that epoch saved."""


class RunFolderError(ValueError):
    """The run folder cannot be used (names the folder and the fix)."""


def check_run_folder(output, resume=False):
    """Checks `output` before any work; `RunFolderError` names the fix."""
    output = pathlib.Path(output)
    if resume:
        if not (output / CONFIG_FILE).is_file():
            raise RunFolderError(
                f"--resume {output}: no training run there ({CONFIG_FILE} "
                "is missing); start one with --output"
            )
        if not os.access(output, os.W_OK):
            raise RunFolderError(f"--resume {output}: the folder is read-only")
        return output
    if output.exists():
        if not output.is_dir():
            raise RunFolderError(
                f"--output {output} is a file; give a folder for the run"
            )
        if (output / STATE_FILE).exists():
            raise RunFolderError(
                f"--output {output} already holds a training run: continue "
                f"it with --resume {output}, or give another folder"
            )
        # A run that never finished an epoch (its build failed, or it was
        # killed in epoch 1) has nothing to lose: it may be started again.
        leftovers = {LOCK_FILE, CONFIG_FILE, CHECKPOINT_FOLDER}
        if any(p.name not in leftovers for p in output.iterdir()):
            raise RunFolderError(
                f"--output {output} is not empty; give a new or empty folder"
            )
        writable = output
    else:
        writable = output.parent
        if not writable.is_dir():
            raise RunFolderError(
                f"--output {output}: its parent folder {writable} does not "
                "exist; create it first"
            )
    if not os.access(writable, os.W_OK | os.X_OK):
        raise RunFolderError(
            f"--output {output}: {writable} is not writable; pick a "
            "folder you can write"
        )
    return output


def _plot_curves(history, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    has_ap = any("val_ap" in row for row in history)
    figure, axes = plt.subplots(
        2 if has_ap else 1, 1, figsize=(7, 6 if has_ap else 3.5), squeeze=False
    )
    loss_axes = axes[0][0]
    loss_axes.plot(
        epochs, [row["loss"] for row in history], "o-", label="training"
    )
    if any("val_loss" in row for row in history):
        loss_axes.plot(
            epochs,
            [row.get("val_loss", math.nan) for row in history],
            "s--",
            label="validation",
        )
        loss_axes.legend(fontsize=8)
    loss_axes.set_ylabel("loss: heatmap MSE + L2\n(lower is better)")
    loss_axes.set_title("EvoPose2D training")
    if has_ap:
        ap_axes = axes[1][0]
        ap_axes.plot(
            epochs,
            [row.get("val_ap", math.nan) for row in history],
            "o-",
            color="crimson",
        )
        ap_axes.set_ylabel("validation COCO AP, 0 to 1\n(higher is better)")
        ap_axes.set_ylim(bottom=0)
    axes[-1][0].set_xlabel("epoch")
    for row in axes:
        row[0].grid(alpha=0.3)
        row[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=90))
    plt.close(figure)


def _write_history(history, path):
    columns = ["epoch", "learning_rate"]
    for row in history:
        columns += [key for key in row if key not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)

    def write(temporary):
        with open(temporary, "w") as file:
            file.write(text.getvalue())

    write_atomically(path, write)


def _link_or_copy(source, temporary):
    """Puts `source`'s bytes at `temporary` (a fresh temporary path): a
    hard link where the file system has them (no bytes written; files
    here are never changed in place, only replaced), else a copy."""
    os.remove(temporary)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)


def _optimizer_step(optimizer):
    # Through numpy: under a multi-worker strategy it is a MirroredVariable.
    import keras

    return int(keras.ops.convert_to_numpy(optimizer.iterations))


def _learning_rate(optimizer):
    import keras

    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _non_finite_weights(model):
    import numpy as np

    return [
        variable.path
        for variable in model.variables
        if not np.all(np.isfinite(np.asarray(variable)))
    ]


def _recorder_class():
    import keras

    class RunRecorder(keras.callbacks.Callback):
        """Writes the run folder at every epoch's end (see module doc)."""

        def __init__(self, folder, state, monitor, probe, epochs, verbose):
            super().__init__()
            self.folder = folder
            self.state = state
            self.monitor = monitor
            self.probe = probe
            self.epochs = epochs
            self.verbose = verbose
            self.diverged = None
            self._start = None
            self._plotted = None
            self._unplotted = False

        def _plot(self):
            _plot_curves(self.state["history"], self.folder / CURVES_FILE)
            self._plotted = time.monotonic()
            self._unplotted = False

        def on_train_end(self, logs=None):
            if self._unplotted:
                self._plot()

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.monotonic()

        def _better(self, value, best):
            if best is None:
                return True
            return value > best if self.monitor == "val_ap" else value < best

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            loss = float(logs.get("loss", math.nan))
            problem = None
            limit = self.probe.limit
            if not math.isfinite(loss) or loss > limit:
                problem = f"loss {loss:.4g}"
            elif broken := _non_finite_weights(self.model):
                problem = f"{len(broken)} weight tensors hold NaN/inf"
            else:
                after = self.probe.model_loss(self.model)
                if not math.isfinite(after) or after > limit:
                    problem = f"loss {after:.4g} after its last step"
            if problem:
                self.diverged = (
                    f"training diverged at epoch {epoch + 1}: {problem} "
                    f"(limit {limit:.3g}, {DIVERGENCE_FACTOR:g}x the loss "
                    "of predicting no heatmap)"
                )
                self.model.stop_training = True
                return
            folder = self.folder
            optimizer = self.model.optimizer
            row = {
                "epoch": epoch + 1,
                "learning_rate": _learning_rate(optimizer),
            }
            row.update({k: float(v) for k, v in logs.items()})
            history = self.state["history"] + [row]
            best = self.state.get("best")
            value = row.get(self.monitor, math.nan)
            improved = math.isfinite(value) and self._better(
                value, None if best is None else best["value"]
            )
            if improved:
                write_atomically(folder / BEST_MODEL, self.model.save)
                best = {
                    "epoch": epoch + 1,
                    "metric": self.monitor,
                    "value": value,
                }
            checkpoint = f"{CHECKPOINT_FOLDER}/epoch-{epoch + 1:04d}.keras"
            write_atomically(folder / checkpoint, self.model.save)
            previous = self.state.get("checkpoint")
            self.state.update(
                epoch=epoch + 1,
                checkpoint=checkpoint,
                iterations=_optimizer_step(optimizer),
                learning_rate=row["learning_rate"],
                best=best,
                history=history,
            )
            # The commit point: from here a resume starts after this epoch.
            write_json_atomically(folder / STATE_FILE, self.state, indent=1)
            if previous and previous != checkpoint:
                (folder / previous).unlink(missing_ok=True)
            # last.keras is the checkpoint just written: linked (or copied),
            # not serialized a second time.
            write_atomically(
                folder / LAST_MODEL,
                lambda temporary: _link_or_copy(folder / checkpoint, temporary),
            )
            _write_history(history, folder / HISTORY_FILE)
            # The plot is a view of history.csv: redrawn at most every
            # CURVES_EVERY_SECONDS (drawing costs more than a tiny epoch),
            # and when training ends.
            self._unplotted = True
            if (
                self._plotted is None
                or time.monotonic() - self._plotted >= CURVES_EVERY_SECONDS
            ):
                self._plot()
            if self.verbose:
                shown = ", ".join(
                    f"{k} {row[k]:.4g}" for k in SHOWN if k in row
                )
                print(
                    f"epoch {epoch + 1}/{self.epochs}: {shown}, learning "
                    f"rate {row['learning_rate']:.3g}, "
                    f"{time.monotonic() - self._start:.1f} s"
                    + (", best so far" if improved else ""),
                    flush=True,
                )

    return RunRecorder


class _DivergenceProbe:
    """A fixed batch and its loss for all-zero heatmaps: an epoch has
    diverged when the model's loss on this batch (or the epoch's loss)
    exceeds `DIVERGENCE_FACTOR` times it. The probe runs after the epoch's
    last update, which the epoch's logged loss never sees."""

    def __init__(self, dataset):
        import keras
        import numpy

        from keras_evopose.losses import HeatmapMSE

        # As numpy: the tf.data tensors are foreign to the JAX backend.
        self.images, self.heatmaps, self.weights = (
            numpy.asarray(part) for part in next(iter(dataset.take(1)))
        )
        self.loss = HeatmapMSE()
        blank = self.loss(
            self.heatmaps,
            keras.ops.zeros_like(self.heatmaps),
            sample_weight=self.weights,
        )
        self.limit = DIVERGENCE_FACTOR * float(
            keras.ops.convert_to_numpy(blank)
        )

    def model_loss(self, model):
        import keras

        # Batch statistics, as in training; the moving ones are put back.
        saved = [
            keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables
        ]
        try:
            predicted = model(self.images, training=True)
        finally:
            for variable, value in zip(model.non_trainable_variables, saved):
                variable.assign(value)
        value = self.loss(self.heatmaps, predicted, sample_weight=self.weights)
        return float(keras.ops.convert_to_numpy(value))


def _load_state(folder):
    remedy = (
        f"remove {folder / STATE_FILE} to restart the run from epoch 0, or "
        "restore it"
    )
    state = read_json_state(folder / STATE_FILE, remedy)
    checkpoint = folder / str(state.get("checkpoint", ""))
    if not checkpoint.is_file():
        raise StateFileError(f"{checkpoint} is missing; {remedy}")
    return state, checkpoint


@keras_evopose_export("keras_evopose.training.train_pose_model")
def train_pose_model(
    config,
    resume=False,
    verbose=2,
    tpu=None,
    mirrored=False,
    multi_worker=False,
):
    """Trains the network of a `TrainConfig` into its run folder.

    The paper's recipe (Adam, learning rate scaled with the batch, linear
    warm-up, cosine decay to 0, target-weighted heatmap MSE, L2 on conv
    kernels); COCO AP every epoch with validation data. See the module
    doc for the run folder.

    Args:
        config: a `TrainConfig`.
        resume: continue the run in `config.output` (read its config with
            `TrainConfig.from_dict`); a run with no completed epoch starts
            over.
        verbose: 0 silent, 1 Keras' progress bar and one line per epoch,
            2 one line per epoch.
        tpu, mirrored, multi_worker: the distribution
            (`keras_evopose.distribute.distribution_scope`). With
            `multi_worker`, every worker calls this with the same config;
            the chief writes the run folder, the others train beside it
            and write nothing there (on `resume` they read its checkpoint,
            so the folder must be on a file system every worker reads).

    Returns:
        A dict: `output`, `epochs` (completed), `best` (epoch, metric,
        value), `learning_rate` (after the last epoch), `history`.

    Raises:
        RunFolderError: the folder is unusable (checked before any work).
        keras_evopose.utils.FolderLockedError: another process trains there.
        TrainingDiverged: the loss went non-finite or exploded; the files
            of the last good epoch are kept.
    """
    import keras

    from keras_evopose.callbacks import COCOEvaluation
    from keras_evopose.callbacks.interrupt_check import InterruptCheck
    from keras_evopose.data import KeypointLayout
    from keras_evopose.data import coco_keypoints_dataset
    from keras_evopose.data import load_coco_instances
    from keras_evopose.data import tfrecord_keypoints_dataset
    from keras_evopose.data import tfrecords_info
    from keras_evopose.data.coco_instances import DataFileError
    from keras_evopose.data.keypoint_layout import KeypointLayoutError
    from keras_evopose.distribute import average_replica_statistics
    from keras_evopose.distribute import distribution_scope
    from keras_evopose.distribute import multi_worker_role
    from keras_evopose.distribute import prepare_multi_worker_model
    from keras_evopose.distribute import shard_for_worker
    from keras_evopose.inference.model_contract import layout_for_data
    from keras_evopose.losses import HeatmapMSE
    from keras_evopose.training.network import build_network
    from keras_evopose.training.recipe import evopose2d_optimizer

    role = multi_worker_role() if multi_worker else None
    if role and config.val_annotations:
        raise RunFolderError(
            "validation data is not scored under --multi-worker yet (best "
            "is chosen by loss); drop --val-annotations/--val-images and "
            "score RUN/last.keras with `keras-evopose evaluate`"
        )
    if role and not role.is_chief:
        # The chief owns the run folder; this worker's files are scratch.
        shared = pathlib.Path(config.output)
        if resume:
            check_run_folder(shared, resume=True)
        folder = pathlib.Path(tempfile.mkdtemp(prefix="keras-evopose-worker-"))
    else:
        shared = folder = check_run_folder(config.output, resume=resume)
    # Before any other TensorFlow work: a multi-worker strategy must be
    # the first thing the process creates.
    scope = distribution_scope(
        tpu=tpu, mirrored=mirrored, multi_worker=multi_worker
    )
    for path, name in (
        (config.annotations, "annotations"),
        (config.images, "images"),
        (config.val_annotations, "val_annotations"),
        (config.val_images, "val_images"),
    ):
        if path is not None and "://" not in str(path):
            if not os.path.exists(path):
                raise RunFolderError(f"{name} {path}: no such file or folder")
    # What this call creates: removed again if it refuses before training
    # (bad data found once the folder is locked), so a refused command
    # leaves no half-made run; what an earlier run wrote stays.
    created = []
    if not resume:
        created = [
            path for path in (folder / LOCK_FILE, folder) if not path.exists()
        ]
    training = False
    lock = FolderLock(folder, "training run").acquire()
    try:
        # Only the lock holder writes here: a killed write's leftovers go.
        remove_partial_files(folder)
        state, checkpoint = None, None
        if resume and (shared / STATE_FILE).exists():
            state, checkpoint = _load_state(shared)
        start = state["epoch"] if state else 0
        if start >= config.epochs:
            return {
                "output": folder,
                "epochs": start,
                "best": state.get("best"),
                "learning_rate": state.get("learning_rate"),
                "history": state["history"],
            }
        steps = (state or {}).get("steps_per_epoch") or config.steps_per_epoch
        if config.tfrecords:
            layout, num_examples = tfrecords_info(
                config.tfrecords, count=steps is None
            )
            source = config.tfrecords
        else:
            instances = load_coco_instances(config.annotations, config.images)
            layout, num_examples = instances.layout, len(instances)
            source = config.annotations
        if config.keypoint_layout:
            layout = layout_for_data(
                KeypointLayout.from_json(config.keypoint_layout), layout, source
            )
        if config.val_annotations:
            # COCO AP per epoch needs OKS sigmas: say so before training.
            try:
                val_layout = KeypointLayout.from_json(config.val_annotations)
            except KeypointLayoutError:
                raise
            except ValueError as error:
                # It names the file: one line, not a traceback.
                raise DataFileError(str(error)) from None
            layout_for_data(
                layout, val_layout, config.val_annotations
            ).check_oks_sigmas()
        steps = steps or math.ceil(num_examples / config.batch_size)
        previous_policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy(config.precision)
        try:
            keras.utils.set_random_seed(config.seed + start)
            with scope:
                if checkpoint is not None:
                    model = keras.saving.load_model(str(checkpoint))
                    step = _optimizer_step(model.optimizer)
                    if step != state["iterations"]:
                        raise StateFileError(
                            f"{checkpoint} is at optimizer step "
                            f"{step}, but {shared / STATE_FILE} says "
                            f"{state['iterations']}; restore the pair or "
                            "remove both to restart"
                        )
                else:
                    model, _ = build_network(config, layout)
                    model.compile(
                        optimizer=evopose2d_optimizer(
                            config.batch_size,
                            steps,
                            epochs=config.epochs,
                            warmup_epochs=min(
                                config.warmup_epochs, config.epochs - 1
                            ),
                            base_learning_rate=config.base_learning_rate,
                        ),
                        loss=HeatmapMSE(),
                    )
                prepare_multi_worker_model(model)
                # Each session draws a new order: a resumed run does not
                # replay the data of its first epochs.
                data_seed = config.seed + start
                # The model's own contract, whole (crop padding, fill,
                # sigma, augmentation, sizes).
                options = model.sample_options
                common = dict(
                    training=True,
                    batch_size=config.batch_size,
                    seed=data_seed,
                    repeat=True,
                    augment=config.augment,
                )
                if config.tfrecords:
                    dataset = tfrecord_keypoints_dataset(
                        config.tfrecords,
                        options,
                        layout=model.keypoint_layout or layout,
                        **common,
                    )
                else:
                    dataset = coco_keypoints_dataset(
                        config.annotations,
                        config.images,
                        options,
                        keypoint_layout=model.keypoint_layout or layout,
                        **common,
                    )
                if role:
                    dataset = shard_for_worker(dataset, config.batch_size, role)
                state = state or {
                    "epoch": 0,
                    "checkpoint": None,
                    "best": None,
                    "history": [],
                }
                state.update(steps_per_epoch=steps, data_seed=data_seed)
                probe = _DivergenceProbe(dataset)
                callbacks = [
                    InterruptCheck(),
                    keras.callbacks.TerminateOnNaN(),
                ]
                monitor = "loss"
                if config.val_annotations:
                    callbacks.append(
                        COCOEvaluation(
                            config.val_annotations, config.val_images
                        )
                    )
                    monitor = "val_ap"
                recorder = _recorder_class()(
                    folder, state, monitor, probe, config.epochs, verbose
                )
                callbacks.append(recorder)
                if not resume:
                    # Only now: a run refused on its data or network
                    # leaves an earlier run's config as it was.
                    write_json_atomically(
                        folder / CONFIG_FILE, config.to_dict(), indent=2
                    )
                training = True
                try:
                    model.fit(
                        dataset,
                        initial_epoch=start,
                        epochs=config.epochs,
                        steps_per_epoch=steps,
                        callbacks=callbacks,
                        verbose=1 if verbose == 1 else 0,
                        shuffle=False,  # the dataset shuffles itself
                    )
                except OSError as error:
                    # A full disk or a vanished mount while the run folder
                    # is written: the temporary file is gone, the last
                    # committed epoch is whole.
                    detail = (
                        f"{error.strerror}: {error.filename}"
                        if error.filename and error.strerror
                        else " ".join(str(error).split())
                    )
                    raise RunFolderError(
                        f"{detail}; {folder} keeps epoch {state['epoch']}; "
                        "free space there, then: keras-evopose train "
                        f"--resume {folder}"
                    ) from None
                average_replica_statistics(model)
        finally:
            keras.config.set_dtype_policy(previous_policy)
        if recorder.diverged:
            raise TrainingDiverged(
                f"{recorder.diverged}; {folder} keeps epoch "
                f"{state['epoch']}'s files (nothing of the diverged epoch "
                "saved). Lower the base learning rate or check the data "
                "with `keras-evopose check-data`."
            )
        return {
            "output": folder,
            "epochs": state["epoch"],
            "best": state["best"],
            "learning_rate": state.get("learning_rate"),
            "history": state["history"],
        }
    except BaseException:
        # Ctrl-C included: before training nothing is saved.
        if not training:
            _remove_created(created)
        raise
    finally:
        lock.release()
        if folder != shared:
            shutil.rmtree(folder, ignore_errors=True)


def _remove_created(paths):
    # Files, then the folder if nothing else is in it. The lock file goes
    # while still held: a process that opens it now is refused anyway.
    for path in paths:
        try:
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
        except OSError:
            pass
