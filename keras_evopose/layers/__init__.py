"""Public Keras 3 layers of keras_evopose (no TensorFlow import)."""

from keras_evopose.layers.deconv_head import DeconvHead
from keras_evopose.layers.mbconv_block import MBConvBlock
from keras_evopose.layers.squeeze_and_excite_2d import SqueezeAndExcite2D
from keras_evopose.layers.subpixel_conv2d_transpose import (
    SubPixelConv2DTranspose,
)

__all__ = [
    "DeconvHead",
    "MBConvBlock",
    "SqueezeAndExcite2D",
    "SubPixelConv2DTranspose",
]
