"""EvoPose2D genotypes, backbone, pose model and presets (no TensorFlow)."""

from keras_evopose.models.evopose2d import EvoPose2D
from keras_evopose.models.evopose2d import build_flat_model
from keras_evopose.models.evopose2d_backbone import EvoPose2DBackbone
from keras_evopose.models.genotype import BlockSpec
from keras_evopose.models.genotype import Genotype
from keras_evopose.models.genotype import compound_scale
from keras_evopose.models.genotype import decode_genotype
from keras_evopose.models.genotype import decode_head_steps
from keras_evopose.models.genotype import encode_genotype
from keras_evopose.models.genotype import encode_head_steps
from keras_evopose.models.genotype import split_genotype
from keras_evopose.models.model_size import count_flops

__all__ = [
    "BlockSpec",
    "EvoPose2D",
    "EvoPose2DBackbone",
    "Genotype",
    "build_flat_model",
    "compound_scale",
    "count_flops",
    "decode_genotype",
    "decode_head_steps",
    "encode_genotype",
    "encode_head_steps",
    "split_genotype",
]
