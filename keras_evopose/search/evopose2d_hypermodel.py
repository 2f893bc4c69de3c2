import copy

import keras
import keras_tuner

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.search.search_space import genotype_from_string


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
    `keras_evopose.search.genotype_to_string`), compiled with
    `compile_kwargs` (default optimizer `"adam"`, loss
    `keras_evopose.losses.HeatmapMSE`, and no XLA on a TensorFlow CPU,
    where compiling each short-lived child costs more than it saves; an
    optimizer instance is copied per trial, since one instance cannot serve
    two models).

    **Data as a function of the heatmap size.** A stride mutation changes
    the heatmap resolution of a child, so its targets must change with it.
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

    Example:

    ```python
    def train_data(heatmap_size):
        return coco_keypoints_dataset(..., heatmap_size=heatmap_size)

    hypermodel = EvoPose2DHyperModel("test")
    tuner = EvolutionTuner(oracle, hypermodel=hypermodel, directory="runs")
    tuner.search(train_data, validation_data=val_data)
    ```
    """

    def __init__(self, preset="small", model_kwargs=None, compile_kwargs=None):
        super().__init__()
        self.preset = preset
        self.model_kwargs = dict(model_kwargs or {})
        self.compile_kwargs = dict(compile_kwargs or {})

    def build(self, hp):
        from keras_evopose.models import EvoPose2D

        model = EvoPose2D.from_preset(
            self.preset,
            genotype=genotype_from_string(hp.get("genotype")),
            **self.model_kwargs,
        )
        kwargs = copy.deepcopy(self.compile_kwargs)
        optimizer = kwargs.pop("optimizer", "adam")
        if isinstance(optimizer, keras.optimizers.Optimizer):
            optimizer = optimizer.__class__.from_config(optimizer.get_config())
        if "loss" not in kwargs:
            from keras_evopose.losses import HeatmapMSE

            kwargs["loss"] = HeatmapMSE()
        if "jit_compile" not in kwargs and _tensorflow_without_gpu():
            # Measured: the first epoch of the `test` preset 2-3x slower
            # with XLA on a CPU.
            kwargs["jit_compile"] = False
        model.compile(optimizer=optimizer, **kwargs)
        return model

    def fit(self, hp, model, *args, **kwargs):
        heatmap_size = heatmap_size_of(model)
        args = [
            arg(heatmap_size) if (index == 0 and callable(arg)) else arg
            for index, arg in enumerate(args)
        ]
        for key in ("x", "validation_data"):
            if callable(kwargs.get(key)):
                kwargs[key] = kwargs[key](heatmap_size)
        return model.fit(*args, **kwargs)
