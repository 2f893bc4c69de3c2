import copy
import os

import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.models.genotype import Genotype
from keras_evopose.models.weight_transfer import transfer_weights


def _config_with_genotype(config, genotype):
    """The child's config with the backbone genotype replaced (and the
    head's widths, if the genotype ends with head steps)."""
    config = copy.deepcopy(config)
    head_filters = (
        None if genotype.head_filters is None else list(genotype.head_filters)
    )
    genotype = genotype.block_strings
    if "genotype" in config and head_filters is None:
        config["genotype"] = genotype
        return config
    backbone = config.get("backbone")
    if (
        isinstance(backbone, dict)
        and "genotype" in backbone.get("config", {})
        and (head_filters is None or "head_filters" in config)
    ):
        backbone["config"]["genotype"] = genotype
        if head_filters is not None:
            config["head_filters"] = head_filters
        return config
    raise ValueError(
        "WeightTransferCallback: a `.weights.h5` parent is rebuilt from the "
        "child's config with the parent genotype, which needs an "
        "EvoPose2D or EvoPose2DBackbone child (a config with `genotype` or "
        "`backbone.config.genotype`). Received a config with keys "
        f"{sorted(config)}. Pass the parent as a `.keras` file or a model."
    )


@keras_evopose_export("keras_evopose.callbacks.WeightTransferCallback")
class WeightTransferCallback(keras.callbacks.Callback):
    """Initialises the model from a parent network when training begins.

    In `on_train_begin` it loads the parent and calls
    `keras_evopose.search.transfer_weights(parent, model)`: variables are
    matched by path, a new repeat copies the parent's last block of the
    same stage, and differently shaped kernels and channels are cropped or
    padded (centred in space, leading channels). The report is kept in
    `self.report` and printed when `verbose` is set.

    The callback holds the parent's path and genotype as strings, never a
    dataset, so `copy.deepcopy` (which keras-tuner applies to callbacks per
    trial) is cheap and safe; a parent given as a model is shared, not
    copied. It works on the TensorFlow and JAX backends and with a
    `tf.distribute` strategy (the transfer assigns through the variables).

    Args:
        parent: the parent network: a `.keras` file, a `.weights.h5`
            checkpoint (then `genotype` is required: the parent is the
            child's architecture with the backbone genotype replaced), or
            a built Keras model.
        genotype: the parent's genotype (a `keras_evopose.models.Genotype`,
            a list of block strings, or `Genotype.to_string`'s
            comma-joined string) for a `.weights.h5` parent; head steps
            at its end (`"up_c64"`) set the parent's `head_filters`.
            Ignored otherwise.
        verbose: 0 silent, 1 prints the report summary, 2 prints every
            variable. Defaults to 1.

    Example:

    ```python
    child = keras_evopose.models.EvoPose2D.from_preset(
        "small", genotype=child_genotype)
    child.compile(optimizer="adam", loss=keras_evopose.losses.HeatmapMSE())
    callback = keras_evopose.callbacks.WeightTransferCallback(
        "parent.weights.h5", genotype=parent_genotype)
    child.fit(train_ds, epochs=5, callbacks=[callback])
    print(callback.report)
    ```
    """

    def __init__(self, parent, genotype=None, verbose=1):
        super().__init__()
        self._parent_model = None
        if isinstance(parent, keras.Model):
            self._parent_model = parent
            self.parent = None
        elif isinstance(parent, (str, os.PathLike)):
            self.parent = os.fspath(parent)
            if not self.parent.endswith((".keras", ".weights.h5")):
                raise ValueError(
                    "WeightTransferCallback: `parent` must be a `.keras` "
                    "file, a `.weights.h5` checkpoint or a Keras model. "
                    f"Received: parent={self.parent!r}"
                )
            if self.parent.endswith(".weights.h5") and genotype is None:
                raise ValueError(
                    "WeightTransferCallback: a `.weights.h5` checkpoint holds "
                    "no architecture; pass the parent's `genotype` too. "
                    f"Received: parent={self.parent!r}, genotype=None"
                )
        else:
            raise ValueError(
                "WeightTransferCallback: `parent` must be a path or a Keras "
                f"model. Received: parent={type(parent).__name__}"
            )
        if isinstance(genotype, str):
            genotype = Genotype.from_string(genotype)
        elif genotype is not None:
            genotype = Genotype.coerce(genotype)
        # Canonical strings: what a config holds, deep copies cheaply.
        self.genotype = None if genotype is None else genotype.to_strings()
        if verbose not in (0, 1, 2):
            raise ValueError(
                "WeightTransferCallback: `verbose` must be 0, 1 or 2. "
                f"Received: verbose={verbose!r}"
            )
        self.verbose = verbose
        self.report = None

    def __deepcopy__(self, memo):
        # Paths and strings are copied; a parent model, and the model this
        # callback is attached to, are shared rather than duplicated.
        result = self.__class__.__new__(self.__class__)
        memo[id(self)] = result
        shared = {"_parent_model", "_model"}
        for key, value in self.__dict__.items():
            setattr(
                result,
                key,
                value if key in shared else copy.deepcopy(value, memo),
            )
        return result

    def load_parent(self, child):
        """Loads the parent network (a `.weights.h5` one shaped by `child`).

        Args:
            child: the model being trained.

        Returns:
            A Keras model.

        Raises:
            FileNotFoundError: when the parent file does not exist.
            ValueError: when the checkpoint does not fit the architecture
                rebuilt from `genotype`.
        """
        if self._parent_model is not None:
            return self._parent_model
        if not os.path.exists(self.parent):
            raise FileNotFoundError(
                f"WeightTransferCallback: no parent file at {self.parent!r}."
            )
        if self.parent.endswith(".keras"):
            return keras.saving.load_model(self.parent, compile=False)
        config = _config_with_genotype(
            child.get_config(), Genotype.from_strings(self.genotype)
        )
        parent = type(child).from_config(config)
        try:
            parent.load_weights(self.parent)
        except ValueError as error:
            raise ValueError(
                f"WeightTransferCallback: {self.parent!r} does not fit the "
                f"child's architecture with genotype {self.genotype}. Is "
                f"it the parent's checkpoint? ({error})"
            ) from error
        return parent

    def on_train_begin(self, logs=None):
        child = self.model
        parent = self.load_parent(child)
        self.report = transfer_weights(parent, child)
        if self.verbose:
            print(self.report.summary(show_all=self.verbose == 2))
