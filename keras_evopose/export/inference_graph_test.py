import keras
import numpy as np

from keras_evopose.export import inference_model
from keras_evopose.layers import DeconvHead
from keras_evopose.models import EvoPose2D


def with_trained_statistics(model, seed=0):
    """Non-trivial BN statistics and affine weights, as after training."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        name = variable.path.rsplit("/", 1)[-1]
        if name == "moving_mean" or name == "beta":
            variable.assign(rng.normal(0.0, 0.1, variable.shape))
        elif name == "moving_variance" or name == "gamma":
            variable.assign(rng.uniform(0.5, 2.0, variable.shape))
    return model


def images(count=2, seed=1):
    return (
        np.random.default_rng(seed)
        .normal(size=(count, 64, 48, 3))
        .astype("float32")
    )


def rewritten_with_the_same_heatmaps(model):
    """`inference_model(model)`, checked to give `model`'s heatmaps."""
    rewritten = inference_model(model)
    expected = keras.ops.convert_to_numpy(model(images(), training=False))
    actual = keras.ops.convert_to_numpy(rewritten(images()))
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert error < 1e-5, error
    return rewritten


def test_rewritten_head_gives_the_same_heatmaps():
    model = with_trained_statistics(
        EvoPose2D.from_preset("test", spatial_correction=True)
    )
    rewritten = rewritten_with_the_same_heatmaps(model)
    head = rewritten.get_layer("head")
    kinds = [type(layer).__name__ for layer in head.layers]
    assert kinds.count("SubPixelConv2DTranspose") == 3
    assert "Conv2DTranspose" not in kinds
    assert "BatchNormalization" in kinds  # the correction conv's, kept
    # Everything but the head is shared, not copied.
    assert rewritten.get_layer(model.backbone.name) is model.backbone


def test_subpixel_head_is_folded_too():
    inputs = keras.Input((4, 3, 16))
    head = DeconvHead(4, filters=[8, 8], upsampling="subpixel")
    model = with_trained_statistics(keras.Model(inputs, head(inputs)))
    features = np.random.default_rng(2).normal(size=(2, 4, 3, 16))
    expected = keras.ops.convert_to_numpy(model(features, training=False))
    rewritten = inference_model(model)
    actual = keras.ops.convert_to_numpy(rewritten(features))
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert error < 1e-5, error
    kinds = [type(layer).__name__ for layer in rewritten.layers[-1].layers]
    assert "BatchNormalization" not in kinds


def test_heatmap_conv_runs_on_each_phase_before_depth_to_space():
    # Without the correction conv the activation and the 1x1 heatmap conv
    # move before the last depth-to-space: same heatmaps.
    model = with_trained_statistics(EvoPose2D.from_preset("test"))
    head = rewritten_with_the_same_heatmaps(model).get_layer("head")
    kinds = [type(layer).__name__ for layer in head.layers]
    assert kinds == [
        "SubPixelConv2DTranspose",
        "Activation",
        "SubPixelConv2DTranspose",
        "Activation",
        "PhaseWiseHeatmaps",
    ]


def test_model_without_head_is_returned_as_is():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    assert inference_model(model) is model
