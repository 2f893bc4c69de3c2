import keras
import keras_hub
import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.hub import preset_folder as preset_folder_lib
from keras_evopose.hub.evopose2d_hub_backbone import EvoPose2DHubBackbone
from keras_evopose.hub.evopose2d_image_converter import EvoPose2DImageConverter
from keras_evopose.hub.evopose2d_pose_estimator_preprocessor import (
    EvoPose2DPoseEstimatorPreprocessor,
)
from keras_evopose.models.evopose2d import EvoPose2D
from keras_evopose.models.genotype import Genotype
from keras_evopose.models.model_size import count_flops
from keras_evopose.utils.state_files import write_weights_atomically


@keras_evopose_export("keras_evopose.hub.EvoPose2DPoseEstimator")
class EvoPose2DPoseEstimator(EvoPose2D, keras_hub.models.Task):
    """An `EvoPose2D` pose model as a keras-hub `Task`.

    The same network, constructor and config as `EvoPose2D` (it is one:
    crops in, heatmaps out), on an `EvoPose2DHubBackbone`, with a
    preprocessor that crops people from images. `predict` takes images
    and person boxes and returns keypoints, decoded as
    `keras_evopose.inference.predict_keypoints` decodes them.
    `save_to_preset(folder)` writes keras-hub's preset files (the
    backbone's, `task.json`, `task.weights.h5` for the head,
    `preprocessor.json`) and `EvoPose2DPoseEstimator.from_preset(folder)`
    builds it back; `keras_hub.models.Backbone.from_preset(folder)` loads
    the backbone alone. `metadata.json` holds, under `keras_evopose`, the
    whole network's parameters, FLOPs, input and heatmap sizes, genotype
    (head steps included) and data contract (`sample_options`,
    `keypoint_layout`, as `export_litert` writes beside a `.tflite`).

    Build one from a trained model with `from_model`.

    Args:
        backbone: an `EvoPose2DHubBackbone`.
        preprocessor: an `EvoPose2DPoseEstimatorPreprocessor`, or `None`
            (then `predict` cannot crop). Defaults to `None`.
        **kwargs: the other arguments of `keras_evopose.models.EvoPose2D`
            (head, `keypoint_layout`, `sample_options`, `name`).
    """

    backbone_cls = EvoPose2DHubBackbone
    preprocessor_cls = EvoPose2DPoseEstimatorPreprocessor

    def __init__(self, backbone, preprocessor=None, **kwargs):
        if not isinstance(backbone, EvoPose2DHubBackbone):
            raise ValueError(
                "EvoPose2DPoseEstimator: `backbone` must be an "
                "EvoPose2DHubBackbone (EvoPose2DPoseEstimator.from_model "
                "converts a trained EvoPose2D). Received: "
                f"{type(backbone).__name__}"
            )
        super().__init__(backbone, **kwargs)
        self.preprocessor = preprocessor

    @classmethod
    def from_model(cls, model):
        """The task of a trained `keras_evopose.models.EvoPose2D` (e.g.
        `keras.saving.load_model("best_model.keras")`): the same network
        and weights, its data contract, and a preprocessor that crops with
        the model's `sample_options`.

        Raises:
            ValueError: if `model` is not an `EvoPose2D` with an
                `EvoPose2DBackbone` and a fixed input size.
        """
        if not isinstance(model, EvoPose2D) or model.sample_options is None:
            raise ValueError(
                "EvoPose2DPoseEstimator.from_model needs an EvoPose2D with a "
                "fixed input size (its sample_options). Received: "
                f"{type(model).__name__}"
            )
        config = model.get_config()
        backbone = EvoPose2DHubBackbone.from_config(
            config.pop("backbone")["config"]
        )
        converter = EvoPose2DImageConverter(model.sample_options)
        task = cls(
            backbone=backbone,
            preprocessor=EvoPose2DPoseEstimatorPreprocessor(converter),
            **config,
        )
        # Built by the same code: the same variables in the same order.
        paths = [v.path for v in task.weights]
        if paths != [v.path for v in model.weights]:
            raise ValueError(
                "EvoPose2DPoseEstimator.from_model: the model's variables "
                "are not those of its config; rebuild it with EvoPose2D."
            )
        task.set_weights(model.get_weights())
        return task

    def get_config(self):
        config = EvoPose2D.get_config(self)
        config["preprocessor"] = keras.layers.serialize(self.preprocessor)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("preprocessor"), dict):
            config["preprocessor"] = keras.layers.deserialize(
                config["preprocessor"]
            )
        return super().from_config(config)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """keras-hub's `Task.from_preset`: a preset folder or handle."""
        preset_folder_lib.check_not_architecture(preset, cls.__name__)
        return keras_hub.models.Task.from_preset.__func__(
            cls, preset, load_weights=load_weights, **kwargs
        )

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Writes the task as a keras-hub preset folder (written beside
        `preset_dir` and renamed into place).

        Raises:
            ValueError: if `preset_dir` is a file or a folder of other
                files.
        """
        with preset_folder_lib.preset_folder(preset_dir) as folder:
            keras_hub.models.Task.save_to_preset(
                self, folder, max_shard_size=max_shard_size
            )
            preset_folder_lib.update_metadata(folder, self.preset_metadata())

    def save_task_weights(self, filepath):
        """keras-hub's `save_task_weights` (the head's weights), written
        as `EvoPose2DHubBackbone.save_weights` writes (disk-full-safe)."""
        write_weights_atomically(
            filepath,
            self,
            objects_to_skip=list(self.backbone._flatten_layers()),
        )

    def preset_metadata(self):
        """The fields `save_to_preset` adds to `metadata.json`."""
        from keras_evopose.export.litert import data_contract

        options = self.sample_options
        genotype = Genotype.coerce(self.backbone.genotype).replace(
            head_filters=tuple(self.head_filters)
        )
        return {
            **self.backbone.preset_metadata(),
            "genotype": genotype.to_strings(),
            "parameter_count": self.count_params(),
            "flops": count_flops(self, self.backbone.image_shape),
            "heatmap_size": list(options.heatmap_size),
            "data_contract": data_contract(self),
        }

    def predict(
        self,
        x,
        batch_size=32,
        flip_test=True,
        refinement="quarter_offset",
    ):
        """Keypoints of the people in `x`'s boxes.

        Crops with the preprocessor, predicts heatmaps (averaged with
        those of the mirrored crops when `flip_test`) and decodes them to
        image coordinates with `keras_evopose.metrics.crops_to_keypoints`,
        as `keras_evopose.inference.predict_keypoints` does.

        Args:
            x: a dict of `images` (`(batch, H, W, 3)` RGB in [0, 255], or
                one `(H, W, 3)` image for every box) and `boxes`
                (`(batch, 4)` COCO `[x, y, width, height]`).
            batch_size: int, crops per forward pass.
            flip_test: bool, average with the mirrored crops (needs the
                model's `keypoint_layout`).
            refinement: see `keras_evopose.metrics.decode_heatmaps`.

        Returns:
            A dict of `keypoints`, `(batch, K, 2)` float32 image `(x, y)`,
            and `scores`, `(batch, K)` float32.
        """
        from keras_evopose.metrics.decoding import crops_to_keypoints

        if self.preprocessor is None:
            raise ValueError(
                "EvoPose2DPoseEstimator.predict crops people with its "
                "preprocessor, and it has none; build the task with "
                "EvoPose2DPoseEstimator.from_model or pass `preprocessor`."
            )
        flip_permutation = None
        if flip_test:
            if self.keypoint_layout is None:
                raise ValueError(
                    "EvoPose2DPoseEstimator.predict: the flip test needs the "
                    "model's keypoint_layout and it has none; pass "
                    "flip_test=False."
                )
            self.keypoint_layout.check_flip("the flip test")
            flip_permutation = self.keypoint_layout.flip_permutation
        boxes = np.asarray(x["boxes"], "float32").reshape(-1, 4)
        if len(boxes) == 0:
            raise ValueError(
                "EvoPose2DPoseEstimator.predict: `boxes` is empty."
            )
        images = x["images"]
        single_image = np.ndim(images) == 3

        def heatmaps(crops):
            # Keras' own, not the pipeline model's (which would crop them).
            return keras.Model.predict_on_batch(self, crops)

        outputs = []
        for start in range(0, len(boxes), batch_size):
            part = slice(start, start + batch_size)
            crops = self.preprocessor.image_converter(
                {
                    "images": images if single_image else images[part],
                    "boxes": boxes[part],
                }
            )
            outputs.append(
                crops_to_keypoints(
                    heatmaps,
                    np.asarray(crops["images"]),
                    np.asarray(crops["center"]),
                    np.asarray(crops["scale"]),
                    self.sample_options,
                    flip_permutation,
                    refinement=refinement,
                )
            )
        keypoints = np.concatenate(outputs).astype("float32")
        return {"keypoints": keypoints[..., :2], "scores": keypoints[..., 2]}
