import keras
import numpy as np
import pytest

from keras_evopose.layers import DeconvHead
from keras_evopose.models import count_flops
from keras_evopose.tests import test_case


def test_upsamples_by_two_per_transposed_conv():
    head = DeconvHead(17, filters=[16, 16, 16])
    outputs = head(np.ones((2, 4, 3, 24), "float32"))
    assert tuple(outputs.shape) == (2, 32, 24, 17)
    assert head.compute_output_shape((None, 4, 3, 24)) == (None, 32, 24, 17)
    no_upsampling = DeconvHead(5, filters=[])
    assert tuple(no_upsampling(np.ones((1, 4, 3, 8))).shape) == (1, 4, 3, 5)


def test_spatial_correction_adds_a_depthwise_conv():
    plain = DeconvHead(17, filters=[8])
    corrected = DeconvHead(17, filters=[8], spatial_correction=True)
    plain.build((None, 4, 3, 8))
    corrected.build((None, 4, 3, 8))
    # 3x3 depthwise kernel + BN (4 vectors) on 8 channels.
    assert corrected.count_params() - plain.count_params() == 9 * 8 + 4 * 8
    assert any("correction_dwconv" in v.path for v in corrected.weights)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_keypoints"):
        DeconvHead(0)
    with pytest.raises(ValueError, match="filters"):
        DeconvHead(17, filters=[128, 0])


def test_kernel_regularizer_and_batch_norm_momentum():
    head = DeconvHead(
        5,
        filters=[8, 8],
        spatial_correction=True,
        kernel_regularizer=keras.regularizers.L2(1e-5),
        batch_norm_momentum=0.9,
    )
    head.build((None, 4, 3, 6))
    regularized = sorted(
        v.path for v in head.weights if getattr(v, "regularizer", None)
    )
    # Transposed convs and the heatmap conv; not the depthwise correction.
    assert [p.split("/", 1)[1] for p in regularized] == [
        "deconv1/kernel",
        "deconv2/kernel",
        "final_conv/kernel",
    ]
    assert len(head.losses) == 3
    momenta = {
        layer.momentum
        for layer in head.sublayers.values()
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert momenta == {0.9}
    with pytest.raises(ValueError, match="batch_norm_momentum"):
        DeconvHead(5, batch_norm_momentum=-0.1)


def test_serialization_and_saving(tmp_path):
    head = DeconvHead(
        5,
        filters=[8, 8],
        spatial_correction=True,
        kernel_regularizer=keras.regularizers.L2(1e-5),
        batch_norm_momentum=0.9,
    )
    test_case.run_serialization_test(head)
    model = test_case.wrap_layer(head, (4, 3, 6))
    test_case.run_model_saving_test(
        model, np.random.default_rng(1).normal(size=(2, 4, 3, 6)), tmp_path
    )


def test_subpixel_upsampling_computes_the_same_head():
    features = np.random.default_rng(3).normal(size=(2, 4, 3, 6))
    features = features.astype("float32")
    transposed = DeconvHead(5, filters=[8, 4], spatial_correction=True)
    subpixel = DeconvHead(
        5, filters=[8, 4], spatial_correction=True, upsampling="subpixel"
    )
    transposed.build(features.shape)
    subpixel.build(features.shape)
    assert subpixel.count_params() == transposed.count_params()
    for key, layer in transposed.sublayers.items():
        target = subpixel.sublayers[key]
        if key.startswith("deconv") and key[-1].isdigit():
            target.load_transpose_weights(layer.kernel)
        else:
            target.set_weights(layer.get_weights())
    for training in (False, True):
        expected = keras.ops.convert_to_numpy(
            transposed(features, training=training)
        )
        actual = keras.ops.convert_to_numpy(
            subpixel(features, training=training)
        )
        error = np.abs(actual - expected).max() / np.abs(expected).max()
        assert error < 1e-5, (training, error)
    assert count_flops(subpixel, (4, 3, 6)) == count_flops(
        transposed, (4, 3, 6)
    )
    test_case.run_serialization_test(subpixel)
    with pytest.raises(ValueError, match="upsampling"):
        DeconvHead(5, upsampling="bilinear")
