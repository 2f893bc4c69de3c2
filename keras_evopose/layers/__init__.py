"""Public Keras 3 layers of keras_evopose (no TensorFlow import)."""

from keras_evopose.layers.crop_warp import CropWarp
from keras_evopose.layers.crop_warp import crop_warp_model
from keras_evopose.layers.deconv_head import DeconvHead
from keras_evopose.layers.mbconv_block import MBConvBlock
from keras_evopose.layers.squeeze_and_excite_2d import SqueezeAndExcite2D
from keras_evopose.layers.subpixel_conv2d_transpose import (
    SubPixelConv2DTranspose,
)

__all__ = [
    "CropWarp",
    "DeconvHead",
    "MBConvBlock",
    "SqueezeAndExcite2D",
    "SubPixelConv2DTranspose",
    "crop_warp_model",
]
