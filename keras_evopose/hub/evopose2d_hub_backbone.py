import keras_hub

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.hub import preset_folder as preset_folder_lib
from keras_evopose.models.evopose2d_backbone import EvoPose2DBackbone
from keras_evopose.models.model_size import count_flops
from keras_evopose.utils.state_files import write_weights_atomically
from keras_evopose.version import __version__


@keras_evopose_export("keras_evopose.hub.EvoPose2DHubBackbone")
class EvoPose2DHubBackbone(EvoPose2DBackbone, keras_hub.models.Backbone):
    """`EvoPose2DBackbone` as a `keras_hub.models.Backbone`.

    The same network, constructor and config as `EvoPose2DBackbone` (it is
    one), with keras-hub's preset API: `save_to_preset(folder)` writes
    `config.json`, `model.weights.h5` and `metadata.json`, and
    `keras_hub.models.Backbone.from_preset(folder)` (or a `hf://`,
    `kaggle://` handle of an uploaded copy) builds it back. Import
    `keras_evopose.hub` first, so keras-hub finds the class.

    `metadata.json` holds keras-hub's fields and, under `keras_evopose`,
    the genotype, input size, parameters and FLOPs (multiply-accumulates,
    `keras_evopose.models.count_flops`) of the backbone.

    Args:
        As `keras_evopose.models.EvoPose2DBackbone`.

    Example:

    ```python
    backbone = keras_evopose.hub.EvoPose2DHubBackbone.from_config(
        trained.backbone.get_config()
    )
    backbone.set_weights(trained.backbone.get_weights())
    backbone.save_to_preset("evopose_backbone")
    keras_hub.models.Backbone.from_preset("evopose_backbone")
    ```
    """

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """keras-hub's `Backbone.from_preset`: a preset folder or handle
        (`EvoPose2DBackbone.from_preset` builds the named presets)."""
        preset_folder_lib.check_not_architecture(preset, cls.__name__)
        return keras_hub.models.Backbone.from_preset.__func__(
            cls, preset, load_weights=load_weights, **kwargs
        )

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Writes the backbone as a keras-hub preset folder.

        The folder is written beside `preset_dir` and renamed into place
        (replacing an earlier preset there).

        Args:
            preset_dir: the preset folder.
            max_shard_size: as keras-hub's, in GB.

        Raises:
            ValueError: if `preset_dir` is a file or a folder of other
                files.
        """
        with preset_folder_lib.preset_folder(preset_dir) as folder:
            keras_hub.models.Backbone.save_to_preset(
                self, folder, max_shard_size=max_shard_size
            )
            preset_folder_lib.update_metadata(folder, self.preset_metadata())

    def save_weights(self, filepath, overwrite=True, max_shard_size=None):
        # keras-hub's preset saver writes the weights through this: made
        # in memory and written with plain writes, so a full disk is a
        # DiskFullError, not HDF5 failing inside h5py.
        if max_shard_size is not None or not overwrite:
            return super().save_weights(
                filepath, overwrite=overwrite, max_shard_size=max_shard_size
            )
        write_weights_atomically(filepath, self)

    def preset_metadata(self):
        """The fields `save_to_preset` adds to `metadata.json`."""
        fields = {
            "version": __version__,
            "backbone_genotype": list(self.genotype),
            "input_size": list(self.image_shape[:2]),
            "backbone_parameter_count": self.count_params(),
            "backbone_flops": None,
        }
        if None not in self.image_shape:
            fields["backbone_flops"] = count_flops(self, self.image_shape)
        return fields
