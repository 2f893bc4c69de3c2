import copy

import keras
import keras_tuner

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.models.genotype import Genotype
from keras_evopose.search.trial_optimizer import TrialOptimizer
from keras_evopose.search.trial_optimizer import steps_per_epoch_of

# The objective the paper's fitness reads: the validation heatmap error
# without the L2 terms Keras adds to `val_loss`.
FITNESS_METRIC = "val_heatmap_mse"


def _tensorflow_without_gpu():
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def heatmap_size_of(model):
    """`(height, width)` of a pose model's heatmap output."""
    return tuple(int(size) for size in model.output_shape[1:3])


@keras_evopose_export("keras_evopose.search.EvoPose2DHyperModel")
class EvoPose2DHyperModel(keras_tuner.HyperModel):
    """Builds, compiles and fits one EvoPose2D child from its genotype.

    `build(hp)` returns `EvoPose2D.from_preset(preset, genotype=...,
    **model_kwargs)` for the trial's `hp.get("genotype")` (the string of
    `keras_evopose.models.Genotype.to_string`), compiled with
    `compile_kwargs` (default loss `keras_evopose.losses.HeatmapMSE` with
    the metric `keras_evopose.metrics.HeatmapMSE`, and no XLA on a
    TensorFlow CPU, where compiling each short-lived child costs more than
    it saves).

    **The paper's recipe by default.** Children are built with
    `kernel_regularizer=keras_evopose.training.evopose2d_regularizer()`
    (L2 1e-5 on the reference's kernels) unless `model_kwargs` sets
    `kernel_regularizer` (`None`: no L2). Keras' `val_loss` then includes
    the L2 terms, which the paper's fitness leaves out: with the default
    loss, score trials on `val_heatmap_mse` (the metric, logged on the
    validation data; `FITNESS_METRIC`), as `run_coco_search` does.

    **Per-trial optimizer.** Without an `optimizer` in `compile_kwargs`,
    `fit` compiles every trial with a fresh optimizer from
    `trial_optimizer(epochs, steps_per_epoch)` (default
    `keras_evopose.search.TrialOptimizer()`: Adam, cosine from 4e-3 to 0
    over the trial's own steps, no warm-up), with the trial's epochs and
    its steps per epoch (fit's `steps_per_epoch`, else counted from the
    training data). A user's `optimizer` in `compile_kwargs` (a name,
    config or instance, with or without a schedule) is used as given
    instead; an instance is copied per trial, since one instance cannot
    serve two models.

    `ancestor_weights="imagenet"` starts the ancestor trial (the one
    without a parent) from ImageNet EfficientNet weights
    (`keras_evopose.search.load_efficientnet_weights`, downloaded on first
    use), as the reference's search does; children inherit their parent's.

    **Data as a function of the heatmap size.** A stride mutation (or,
    with head genes, a change of the head's number of upsampling steps:
    the genotype's head steps set `head_filters`) changes the heatmap
    resolution of a child, so its targets must change with it.
    `fit` therefore accepts, for `x` (the first positional argument) and
    `validation_data`, either data or a function
    `heatmap_size -> data` called with the child's heatmap
    `(height, width)` as one tuple, e.g. `(64, 48)`. Anything else passes
    to `model.fit` unchanged.

    Args:
        preset: preset whose non-genotype arguments (stem, head, input
            size) every child shares.
        model_kwargs: dict of extra `from_preset` overrides.
        compile_kwargs: dict of `model.compile` arguments.
        trial_optimizer: callable `(epochs, steps_per_epoch) -> optimizer`,
            used when `compile_kwargs` has no `optimizer`. Defaults to
            `keras_evopose.search.TrialOptimizer()`.
        ancestor_weights: `None` (random initialisation) or `"imagenet"`,
            the ancestor's initial backbone weights.

    Example:

    ```python
    def train_data(heatmap_size):
        return coco_keypoints_dataset(..., heatmap_size=heatmap_size)

    hypermodel = EvoPose2DHyperModel("test")
    tuner = EvolutionTuner(oracle, hypermodel=hypermodel, directory="runs")
    tuner.search(train_data, validation_data=val_data)
    ```
    """

    def __init__(
        self,
        preset="small",
        model_kwargs=None,
        compile_kwargs=None,
        trial_optimizer=None,
        ancestor_weights=None,
    ):
        super().__init__()
        if ancestor_weights not in (None, "imagenet"):
            raise ValueError(
                "ancestor_weights must be None or 'imagenet'. Received: "
                f"ancestor_weights={ancestor_weights!r}"
            )
        self.preset = preset
        self.model_kwargs = dict(model_kwargs or {})
        if "kernel_regularizer" not in self.model_kwargs:
            from keras_evopose.training import evopose2d_regularizer

            self.model_kwargs["kernel_regularizer"] = evopose2d_regularizer()
        self.compile_kwargs = dict(compile_kwargs or {})
        if "optimizer" in self.compile_kwargs:
            trial_optimizer = None
        elif trial_optimizer is None:
            trial_optimizer = TrialOptimizer()
        self.trial_optimizer = trial_optimizer
        self.ancestor_weights = ancestor_weights

    def build(self, hp):
        from keras_evopose.models import EvoPose2D

        model = EvoPose2D.from_preset(
            self.preset,
            genotype=Genotype.from_string(hp.get("genotype")),
            **self.model_kwargs,
        )
        # `fit` compiles again with the trial's own optimizer; "adam" here
        # only serves models built for inference (`load_model`).
        self._compile(model, self.compile_kwargs.get("optimizer", "adam"))
        return model

    def _compile(self, model, optimizer):
        kwargs = copy.deepcopy(self.compile_kwargs)
        kwargs.pop("optimizer", None)
        if isinstance(optimizer, keras.optimizers.Optimizer):
            optimizer = optimizer.__class__.from_config(optimizer.get_config())
        if "loss" not in kwargs:
            from keras_evopose.losses import HeatmapMSE
            from keras_evopose.metrics import HeatmapMSE as HeatmapMSEMetric

            kwargs["loss"] = HeatmapMSE()
            # Weighted: Keras hands the target weights (sample_weight) to
            # `weighted_metrics` only.
            kwargs["weighted_metrics"] = list(
                kwargs.get("weighted_metrics") or []
            ) + [HeatmapMSEMetric()]
        if "jit_compile" not in kwargs and _tensorflow_without_gpu():
            # Measured: the first epoch of the `test` preset 2-3x slower
            # with XLA on a CPU.
            kwargs["jit_compile"] = False
        model.compile(optimizer=optimizer, **kwargs)

    def fit(self, hp, model, *args, **kwargs):
        heatmap_size = heatmap_size_of(model)
        args = [
            arg(heatmap_size) if (index == 0 and callable(arg)) else arg
            for index, arg in enumerate(args)
        ]
        for key in ("x", "validation_data"):
            if callable(kwargs.get(key)):
                kwargs[key] = kwargs[key](heatmap_size)
        if self.trial_optimizer is not None:
            x = args[0] if args else kwargs.get("x")
            steps = steps_per_epoch_of(x, kwargs)
            self._compile(
                model, self.trial_optimizer(kwargs.get("epochs", 1), steps)
            )
        if self.ancestor_weights and not hp.values.get("parent_trial_id"):
            from keras_evopose.models import presets

            presets.load_preset_weights(
                model.backbone,
                self.ancestor_weights,
                model.backbone.image_shape[0],
            )
        return model.fit(*args, **kwargs)
