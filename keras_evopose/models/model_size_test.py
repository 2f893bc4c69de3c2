import subprocess
import sys

import keras
import pytest

from keras_evopose.layers import MBConvBlock
from keras_evopose.models import EvoPose2D
from keras_evopose.models import count_flops
from keras_evopose.utils import count_params  # the deprecated alias


def test_hand_computed_macs_of_primitive_layers():
    inputs = keras.Input((8, 6, 4))
    x = keras.layers.Conv2D(10, 3, strides=2, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(5, padding="same")(x)
    x = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(7)(x)
    model = keras.Model(inputs, outputs)
    expected = (
        4 * 3 * 10 * 9 * 4  # conv: out 4x3x10, 3x3 kernel over 4 channels
        + 4 * 3 * 10 * 25  # depthwise 5x5
        + 4 * 3 * 9 * 10 * 3  # transposed conv: per *input* pixel
        + 8 * 6 * 3 * 7  # dense
    )
    assert count_flops(model, (8, 6, 4)) == expected
    assert count_params(model) == model.count_params()


def test_composite_layers_are_traversed():
    block = MBConvBlock(8, 8, expand_ratio=2, squeeze_excite_ratio=0.25)
    block.build((None, 4, 4, 8))
    expected = (
        16 * 8 * 16  # expand 1x1
        + 16 * 16 * 9  # depthwise 3x3
        + 16 * 2
        + 2 * 16  # squeeze-excite 1x1 convs on a 1x1 map
        + 16 * 16 * 8  # project 1x1
    )
    assert count_flops(block, (4, 4, 8)) == expected


def test_unknown_weighted_layer_is_an_error():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Embedding(10, 3)(inputs))
    with pytest.raises(ValueError, match="Embedding"):
        count_flops(model, (4,))
    with pytest.raises(ValueError, match="fully known input shape"):
        count_flops(model, (None,))


def test_matches_the_tensorflow_profiler_on_extra_small():
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the profiler needs the TensorFlow backend")
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    model = EvoPose2D.from_preset("extra_small")

    @tf.autograph.experimental.do_not_convert
    def forward(images):
        return model(images, training=False)

    concrete = tf.function(forward).get_concrete_function(
        tf.TensorSpec((1, 256, 192, 3), tf.float32)
    )
    graph = convert_variables_to_constants_v2(concrete).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(
        graph=graph, cmd="op", options=options
    )
    by_op = {}

    def visit(node):
        by_op[node.name] = node.float_ops
        for child in node.children:
            visit(child)

    visit(profile)
    conv_ops = (
        by_op["Conv2D"]
        + by_op["DepthwiseConv2dNative"]
        + by_op["Conv2DBackpropInput"]
    )
    ours = count_flops(model, (256, 192, 3))
    # The profiler counts 2 float ops per multiply-accumulate.
    assert conv_ops == 2 * ours
    # Its total adds BN, activations and the SE multiply on top: a few %.
    assert 1.0 < profile.total_float_ops / 2 / ours < 1.05


def test_layers_models_search_utils_import_without_tensorflow():
    # Nor keras-hub: only `keras_evopose.hub` (the `hub` extra) imports it.
    code = (
        "import sys, keras_evopose, keras_evopose.layers, "
        "keras_evopose.models, keras_evopose.search, keras_evopose.utils\n"
        "from keras_evopose.models import EvoPose2D\n"
        "from keras_evopose.models import count_flops\n"
        "m = EvoPose2D.from_preset('test')\n"
        "assert count_flops(m, (64, 48, 3)) > 0\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('tensorflow', 'keras_hub'))\n"
        "assert not bad, bad[:5]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**__import__("os").environ, "KERAS_BACKEND": "jax"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_forward_attribute_alone_is_not_a_composite_layer():
    # On the torch backend every layer has a `forward` method (from
    # torch.nn.Module): only SublayerGraph layers are walked.
    class Plain(keras.layers.Dense):
        def forward(self, *args, **kwargs):
            raise AssertionError("count_flops must not call forward")

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Plain(3)(inputs))
    assert count_flops(model, (4,)) == 12
