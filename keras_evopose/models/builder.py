"""The one architecture definition of EvoPose2D networks.

`backbone_graph` and `head_graph` lay out stem, stages and head from a
genotype. They take a `layers_module` (`keras.layers` or `tf_keras.layers`)
and a `flat` switch: Keras 3 models use the composite `MBConvBlock` and
`DeconvHead` layers; the tf_keras twin (for TFMOT quantization-aware
training, which only sees primitive layers) lays the very same sublayers out
flat, named `<block>_<role>`.
"""

from keras_evopose.layers import deconv_head
from keras_evopose.layers import mbconv_block
from keras_evopose.layers import sublayer_graph
from keras_evopose.models import genotype as genotype_lib


def block_name(stage_index, block_index):
    """Stable name of block `block_index` of stage `stage_index` (1-based)."""
    return f"stage{stage_index}_block{block_index}"


def block_arguments(specs, stem_filters, stochastic_depth_rate):
    """Yields `(name, MBConvBlock kwargs)` for every block of a genotype.

    The stochastic-depth rate grows linearly with the global block index
    (0 for the first block), as in EfficientNet.
    """
    total = sum(spec.num_repeats for spec in specs)
    input_filters = stem_filters
    index = 0
    for stage_index, spec in enumerate(specs, start=1):
        for repeat in range(spec.num_repeats):
            yield (
                block_name(stage_index, repeat + 1),
                dict(
                    input_filters=input_filters,
                    output_filters=spec.filters,
                    kernel_size=spec.kernel_size,
                    strides=spec.strides if repeat == 0 else 1,
                    expand_ratio=spec.expand_ratio,
                    squeeze_excite_ratio=spec.squeeze_excite_ratio,
                    stochastic_depth_rate=stochastic_depth_rate * index / total,
                ),
            )
            input_filters = spec.filters
            index += 1


def backbone_graph(
    inputs,
    genotype,
    stem_filters,
    stochastic_depth_rate,
    activation,
    layers_module,
    flat=False,
    dtype=None,
    kernel_regularizer=None,
    batch_norm_momentum=sublayer_graph.BATCH_NORM_MOMENTUM,
):
    """Applies stem and stages to `inputs`.

    `kernel_regularizer` is anything `layers_module`'s layers accept (a
    regularizer object, or its serialized dict for the tf_keras twin).

    Returns:
        `(features, pyramid)`: the last feature map and a dict
        `{"P1": ..., "P5": ...}` of the last feature map at each stride 2**n.
    """
    # Decodes only strings (the flat twins' configs); a Genotype passes as is.
    specs = genotype_lib.Genotype.coerce(genotype).blocks
    stem = sublayer_graph.conv_bn_sublayers(
        layers_module,
        "Conv2D",
        "stem_conv",
        "stem",
        activation,
        dtype=dtype,
        kernel_regularizer=kernel_regularizer,
        batch_norm_momentum=batch_norm_momentum,
        filters=stem_filters,
        kernel_size=3,
        strides=genotype_lib.STEM_STRIDES,
    )
    x = sublayer_graph.conv_bn_forward(
        stem, "stem_conv", "stem", inputs, sublayer_graph.call_apply
    )
    level = 1
    pyramid = {}
    for name, kwargs in block_arguments(
        specs, stem_filters, stochastic_depth_rate
    ):
        kwargs.update(
            kernel_regularizer=kernel_regularizer,
            batch_norm_momentum=batch_norm_momentum,
        )
        if kwargs["strides"] == 2:
            pyramid[f"P{level}"] = x
            level += 1
        if flat:
            sublayers = mbconv_block.mbconv_sublayers(
                layers_module,
                activation=activation,
                prefix=f"{name}_",
                dtype=dtype,
                **kwargs,
            )
            x = mbconv_block.mbconv_forward(
                sublayers, x, sublayer_graph.call_apply
            )
        else:
            x = mbconv_block.MBConvBlock(
                activation=activation, dtype=dtype, name=name, **kwargs
            )(x)
    pyramid[f"P{level}"] = x
    return x, pyramid


def head_graph(features, head_arguments, layers_module, flat=False, dtype=None):
    """Applies the heatmap head (`DeconvHead` arguments) to `features`."""
    if flat:
        sublayers = deconv_head.deconv_head_sublayers(
            layers_module, prefix="head_", dtype=dtype, **head_arguments
        )
        return deconv_head.deconv_head_forward(
            sublayers,
            features,
            sublayer_graph.call_apply,
            len(head_arguments["filters"]),
        )
    return deconv_head.DeconvHead(dtype=dtype, name="head", **head_arguments)(
        features
    )


def flat_weight_name(path):
    """Maps a Keras 3 variable path to the twin's layer/weight name.

    `stage2_block1/expand_conv/kernel` -> (`stage2_block1_expand_conv`,
    `kernel`); `head/deconv1/kernel` -> (`head_deconv1`, `kernel`).
    """
    *layer_parts, weight = path.split("/")
    return "_".join(layer_parts), weight
