import keras

from keras_evopose.api_export import keras_evopose_export


@keras_evopose_export("keras_evopose.callbacks.ModelSizeLogger")
class ModelSizeLogger(keras.callbacks.Callback):
    """Writes the model's size into every epoch's logs.

    `num_params` is `model.count_params()` (every weight, BN
    statistics included: the paper's count, and the one
    `EvolutionTuner(max_model_size=...)` checks); `flops` is
    `keras_evopose.models.count_flops` (multiply-accumulates for one image),
    left out for models with layers it cannot count. Size objectives of a
    search (`keras_tuner.Objective("num_params", "min")`) read them from
    the logs.

    Example:

    ```python
    model.fit(data, epochs=2, callbacks=[ModelSizeLogger()])
    ```
    """

    def on_train_begin(self, logs=None):
        from keras_evopose.models import count_flops

        self.num_params = self.model.count_params()
        try:
            self.flops = count_flops(self.model, self.model.input_shape[1:])
        except ValueError:
            # A user model with layers count_flops does not know.
            self.flops = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["num_params"] = float(self.num_params)
        if self.flops is not None:
            logs["flops"] = float(self.flops)
