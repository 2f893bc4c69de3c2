import json

import keras
import numpy as np
import pytest

from keras_evopose.models import EvoPose2D
from keras_evopose.models.presets import preset_arguments
from keras_evopose.models.weight_transfer import INPUT
from keras_evopose.models.weight_transfer import OUTPUT
from keras_evopose.models.weight_transfer import SPATIAL
from keras_evopose.models.weight_transfer import _last_block_sources
from keras_evopose.models.weight_transfer import adapt_array
from keras_evopose.models.weight_transfer import transfer_weights

# Module-scoped fixtures: the whole file on one xdist worker.
pytestmark = pytest.mark.xdist_group("weight_transfer_test")

# The `test` preset: stage 3 is k5, 2 repeats, 16 channels; stage 4 is k3,
# 1 repeat, 24 channels, stride 2.
GENOTYPE = list(preset_arguments("test", "backbone")["genotype"])


def mutated(stage, old, new):
    genotype = list(GENOTYPE)
    assert old in genotype[stage - 1]
    genotype[stage - 1] = genotype[stage - 1].replace(old, new)
    return genotype


def build(genotype=GENOTYPE):
    return EvoPose2D.from_preset("test", genotype=genotype)


def trained_looking(model, seed=1):
    """Distinct values in every variable (BN statistics included) so copies
    are recognisable, at the scale a trained network has: kernels drawn
    with the spread of their own initializer, BN statistics near 0 and 1.
    Activations stay of order 1 through the network (uniform(0.5, 1.5)
    kernels would reach ~1e9 and make float32 round-off depend on the CPU).
    """
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = variable.shape
        name = variable.path.rsplit("/", 1)[-1]
        if name == "kernel":
            initial = keras.ops.convert_to_numpy(variable.value)
            value = rng.normal(0.0, float(np.std(initial)), size=shape)
        elif name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, size=shape)
        else:  # beta, moving_mean, bias
            value = rng.uniform(-0.5, 0.5, size=shape)
        variable.assign(value.astype("float32"))
    return model


def assert_same_outputs(child, parent, images):
    """The two networks compute the same function, up to float32 round-off
    relative to the size of the outputs."""
    expected = outputs(parent, images)
    np.testing.assert_allclose(
        outputs(child, images),
        expected,
        rtol=1e-4,
        atol=1e-5 * float(np.abs(expected).max()),
    )


@pytest.fixture(scope="module")
def parent():
    keras.utils.set_random_seed(0)
    return trained_looking(build())


@pytest.fixture(scope="module")
def images():
    return (
        np.random.default_rng(0).uniform(size=(2, 64, 48, 3)).astype("float32")
    )


def values(model):
    return {
        v.path: keras.ops.convert_to_numpy(v.value).copy()
        for v in model.weights
    }


def outputs(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


def transfer(parent, genotype):
    child = build(genotype)
    before = values(child)
    report = transfer_weights(parent, child)
    return child, before, values(child), report


def test_identity_transfer_reproduces_outputs(parent, images):
    child, _, after, report = transfer(parent, GENOTYPE)
    assert_same_outputs(child, parent, images)
    assert report.copied == [v.path for v in child.weights]
    assert report.adapted == [] and report.fresh == []
    assert report.unused_parent_paths == []
    for path, value in values(parent).items():
        np.testing.assert_array_equal(after[path], value)


def test_kernel_grow_centres_the_parent_and_zeroes_the_ring(parent, images):
    child, _, after, report = transfer(parent, mutated(4, "_k3_", "_k5_"))
    path = "stage4_block1/dwconv/kernel"
    assert report.adapted == [path]
    assert report[path].source_shape == (3, 3, 32, 1)
    kernel = after[path]
    assert kernel.shape == (5, 5, 32, 1)
    np.testing.assert_array_equal(kernel[1:4, 1:4], values(parent)[path])
    ring = kernel.copy()
    ring[1:4, 1:4] = 0
    np.testing.assert_array_equal(ring, 0)
    # Zero taps outside the old window: the parent's function, exactly.
    assert_same_outputs(child, parent, images)


def test_kernel_shrink_takes_the_centre(parent):
    _, _, after, report = transfer(parent, mutated(3, "_k5_", "_k3_"))
    for block in (1, 2):
        path = f"stage3_block{block}/dwconv/kernel"
        assert report[path].status == "adapted"
        np.testing.assert_array_equal(
            after[path], values(parent)[path][1:4, 1:4]
        )
    assert len(report.adapted) == 2 and report.fresh == []


def test_channels_grow_new_units_fresh_new_inputs_zero(parent, images):
    # Stage 3: 16 -> 24 channels; stage 4's block now reads 24 channels.
    child, before, after, report = transfer(
        parent, mutated(3, "_c16_", "_c24_")
    )
    old = values(parent)

    # New output channels of a conv keep the child's own initial values.
    project = "stage3_block2/project_conv/kernel"  # (1, 1, 32 -> 48, 16 -> 24)
    np.testing.assert_array_equal(after[project][:, :, :32, :16], old[project])
    np.testing.assert_array_equal(
        after[project][:, :, :, 16:], before[project][:, :, :, 16:]
    )
    # New input channels of an existing unit are zero.
    np.testing.assert_array_equal(after[project][:, :, 32:, :16], 0)
    expand = "stage4_block1/expand_conv/kernel"  # (1, 1, 16 -> 24, 32 -> 48)
    np.testing.assert_array_equal(after[expand][:, :, :16, :32], old[expand])
    np.testing.assert_array_equal(after[expand][:, :, 16:, :32], 0)
    np.testing.assert_array_equal(
        after[expand][:, :, :, 32:], before[expand][:, :, :, 32:]
    )
    # Depthwise: every channel is a unit of its own.
    dwconv = "stage4_block1/dwconv/kernel"  # (3, 3, 32 -> 48, 1)
    np.testing.assert_array_equal(after[dwconv][:, :, :32], old[dwconv])
    np.testing.assert_array_equal(
        after[dwconv][:, :, 32:], before[dwconv][:, :, 32:]
    )
    # BN vectors: leading entries from the parent, new ones the fresh init.
    for weight, init in (
        ("gamma", 1.0),
        ("beta", 0.0),
        ("moving_mean", 0.0),
        ("moving_variance", 1.0),
    ):
        path = f"stage3_block1/project_bn/{weight}"
        np.testing.assert_array_equal(after[path][:16], old[path])
        np.testing.assert_array_equal(after[path][16:], init)
    # Transposed conv kernels are (k, k, out, in): the head reads stage 4,
    # unchanged here, so it is a plain copy.
    assert report["head/deconv1/kernel"].status == "copied"
    # Growth keeps the parent's function.
    assert_same_outputs(child, parent, images)


def test_channels_grow_into_the_head(parent, images):
    child, before, after, _ = transfer(parent, mutated(4, "_c24_", "_c32_"))
    deconv = "head/deconv1/kernel"  # (3, 3, 16, 24 -> 32): input is last
    np.testing.assert_array_equal(
        after[deconv][..., :24], values(parent)[deconv]
    )
    np.testing.assert_array_equal(after[deconv][..., 24:], 0)
    assert_same_outputs(child, parent, images)


def test_channels_shrink_keeps_the_leading_slice(parent):
    _, _, after, report = transfer(parent, mutated(3, "_c16_", "_c8_"))
    old = values(parent)
    project = "stage3_block2/project_conv/kernel"  # (1, 1, 32 -> 16, 16 -> 8)
    np.testing.assert_array_equal(after[project], old[project][:, :, :16, :8])
    expand = "stage4_block1/expand_conv/kernel"  # (1, 1, 16 -> 8, 32 -> 16)
    np.testing.assert_array_equal(after[expand], old[expand][:, :, :8, :16])
    for weight in ("gamma", "beta", "moving_mean", "moving_variance"):
        path = f"stage3_block2/project_bn/{weight}"
        np.testing.assert_array_equal(after[path], old[path][:8])
    assert report.fresh == []


def test_extra_repeat_copies_the_last_block_as_an_identity(parent, images):
    child, _, after, report = transfer(parent, mutated(3, "_r2_", "_r3_"))
    old = values(parent)
    new_paths = [p for p in after if p.startswith("stage3_block3/")]
    assert len(new_paths) == 19
    zeroed = ["stage3_block3/project_bn/gamma", "stage3_block3/project_bn/beta"]
    assert report.zeroed == zeroed
    for path in new_paths:
        source = path.replace("stage3_block3/", "stage3_block2/")
        entry = report[path]
        assert entry.source == source
        if path in zeroed:
            assert entry.status == "zeroed"
            np.testing.assert_array_equal(after[path], 0)
        else:
            assert entry.status == "copied"
            np.testing.assert_array_equal(after[path], old[source])
    assert report.fresh == [] and report.unused_parent_paths == []
    assert report.notes == [
        "stage3_block3: new repeat, a copy of stage3_block2 with "
        "project_bn gamma and beta at zero, so it starts as an identity."
    ]
    assert "zeroed  stage3_block3/project_bn/gamma" in report.summary()
    # The residual branch adds zero: the parent's function, in inference
    # and in training mode (BN batch statistics times a zero gamma).
    assert_same_outputs(child, parent, images)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(child(images, training=True)),
        keras.ops.convert_to_numpy(parent(images, training=True)),
        rtol=1e-4,
        atol=1e-5 * float(np.abs(outputs(parent, images)).max()),
    )


def test_extra_repeat_after_a_single_block_adapts_its_input(parent):
    # Stage 4 has one block (16 -> 24 channels, stride 2): block 2 reads 24.
    _, before, after, report = transfer(parent, mutated(4, "_r1_", "_r2_"))
    old = values(parent)
    path = "stage4_block2/expand_conv/kernel"  # (1, 1, 16 -> 24, 32 -> 48)
    entry = report[path]
    assert entry.status == "adapted"
    assert entry.source == "stage4_block1/expand_conv/kernel"
    np.testing.assert_array_equal(
        after[path][:, :, :16, :32], old[entry.source]
    )
    np.testing.assert_array_equal(after[path][:, :, 16:, :32], 0)
    np.testing.assert_array_equal(
        after[path][:, :, :, 32:], before[path][:, :, :, 32:]
    )
    assert report["stage4_block2/project_conv/kernel"].source == (
        "stage4_block1/project_conv/kernel"
    )
    assert report["stage4_block2/project_bn/gamma"].status == "zeroed"


def test_last_block_is_numeric_and_per_stage():
    paths = [
        f"stage{stage}_block{block}/dwconv/kernel"
        for stage in (2, 7)
        for block in range(1, 11)
    ]
    sources = _last_block_sources(paths)
    assert sources[("stage2_block", "/dwconv/kernel")] == (
        "stage2_block10/dwconv/kernel"
    )
    assert sources[("stage7_block", "/dwconv/kernel")] == (
        "stage7_block10/dwconv/kernel"
    )


def test_missing_repeat_drops_the_parent_block(parent):
    _, _, after, report = transfer(parent, mutated(3, "_r2_", "_r1_"))
    assert report.adapted == [] and report.fresh == []
    assert len(report.unused_parent_paths) == 19
    assert all(
        p.startswith("stage3_block2/") for p in report.unused_parent_paths
    )
    old = values(parent)
    for path, value in after.items():
        np.testing.assert_array_equal(value, old[path])
    assert "unused" in report.summary()


def test_stride_change_keeps_every_weight_and_says_so(parent):
    _, _, after, report = transfer(parent, mutated(4, "_s2_", "_s1_"))
    assert len(report.copied) == len(report.entries)
    for path, value in values(parent).items():
        np.testing.assert_array_equal(after[path], value)
    assert len(report.notes) == 1
    note = report.notes[0]
    assert note.startswith("stage4_block1/dwconv: stride (2, 2) -> (1, 1).")
    assert "Every weight is kept" in note
    assert "does not start with the parent's function" in note
    assert note in report.summary()


def test_new_block_without_shortcut_keeps_the_copy():
    # A flat model whose new block has a project_bn but no `_add` layer.
    def flat(num_blocks):
        image = keras.Input((4, 4, 8))
        x = image
        for block in range(1, num_blocks + 1):
            x = keras.layers.Conv2D(8, 1, name=f"stage1_block{block}_conv")(x)
            x = keras.layers.BatchNormalization(
                name=f"stage1_block{block}_project_bn"
            )(x)
        return keras.Model(image, x)

    parent, child = flat(1), flat(2)
    for variable in parent.weights:
        variable.assign(np.full(variable.shape, 0.5, "float32"))
    report = transfer_weights(parent, child)
    assert report.zeroed == []
    assert report["stage1_block2_project_bn/gamma"].status == "copied"
    assert "cannot start as an identity" in report.notes[0]


def test_adapt_array_transposed_layout():
    parent = np.arange(3 * 3 * 2 * 2, dtype="float32").reshape(3, 3, 2, 2) + 1
    child = np.full((5, 5, 3, 3), -1.0, dtype="float32")
    result = adapt_array(parent, child, (SPATIAL, SPATIAL, OUTPUT, INPUT))
    np.testing.assert_array_equal(result[1:4, 1:4, :2, :2], parent)
    np.testing.assert_array_equal(result[:, :, 2:, :], -1)  # new outputs
    np.testing.assert_array_equal(result[:, :, :2, 2:], 0)  # new inputs
    ring = result[:, :, :2, :2].copy()
    ring[1:4, 1:4] = 0
    np.testing.assert_array_equal(ring, 0)


def test_models_without_shared_names_raise(parent):
    inputs = keras.Input((64, 48, 3))
    other = keras.Model(
        inputs, keras.layers.Conv2D(4, 3, name="unrelated_conv")(inputs)
    )
    with pytest.raises(ValueError, match="share no variable paths"):
        transfer_weights(parent, other)
    with pytest.raises(ValueError, match="must be a Keras model"):
        transfer_weights("parent.keras", other)


def test_rank_mismatch_is_reported_fresh():
    inputs = keras.Input((8,))
    dense = keras.Model(inputs, keras.layers.Dense(4, name="layer")(inputs))
    image = keras.Input((5, 5, 8))
    conv = keras.Model(image, keras.layers.Conv2D(4, 1, name="layer")(image))
    report = transfer_weights(dense, conv)
    assert report["layer/bias"].status == "copied"
    entry = report["layer/kernel"]
    assert entry.status == "fresh" and "rank" in entry.reason
    assert "fresh" in str(report)


def test_report_is_json_ready(parent):
    _, _, _, report = transfer(parent, mutated(3, "_k5_", "_k3_"))
    data = json.loads(json.dumps(report.to_dict()))
    assert {e["status"] for e in data["entries"]} == {"copied", "adapted"}
    text = report.summary()
    assert text.splitlines()[0].startswith("Weight transfer: 112 child")
    assert "stage3_block1/dwconv/kernel (3, 3, 32, 1) <- " in text
    assert len(report.summary(show_all=True).splitlines()) == 113


def with_head(head_filters):
    return GENOTYPE + [f"up_c{width}" for width in head_filters]


def test_head_step_widening_keeps_the_parent_function(parent, images):
    # A head gene: step 2 of the head 16 -> 32 channels (the test preset's
    # head is three steps of 16).
    child, before, after, report = transfer(parent, with_head([16, 32, 16]))
    old = values(parent)
    assert child.head_filters == [16, 32, 16]
    assert report.fresh == []
    assert set(report.adapted) == {
        "head/deconv2/kernel",
        "head/deconv2_bn/gamma",
        "head/deconv2_bn/beta",
        "head/deconv2_bn/moving_mean",
        "head/deconv2_bn/moving_variance",
        "head/deconv3/kernel",
    }
    # Transposed kernels are (kh, kw, out, in): the parent's 16 units first,
    # new units keep their own values, new inputs of step 3 are zero.
    kernel = after["head/deconv2/kernel"]
    np.testing.assert_array_equal(kernel[:, :, :16], old["head/deconv2/kernel"])
    np.testing.assert_array_equal(
        kernel[:, :, 16:], before["head/deconv2/kernel"][:, :, 16:]
    )
    np.testing.assert_array_equal(
        after["head/deconv3/kernel"][:, :, :, :16], old["head/deconv3/kernel"]
    )
    np.testing.assert_array_equal(after["head/deconv3/kernel"][:, :, :, 16:], 0)
    assert_same_outputs(child, parent, images)


def test_subpixel_head_step_widening_keeps_the_parent_function(images):
    # The same head gene on a head trained as phase convs + depth-to-space.
    keras.utils.set_random_seed(0)
    parent = trained_looking(
        EvoPose2D.from_preset("test", head_upsampling="subpixel")
    )
    child = EvoPose2D.from_preset(
        "test", genotype=with_head([16, 32, 16]), head_upsampling="subpixel"
    )
    report = transfer_weights(parent, child)
    assert report.fresh == [] and report.unused_parent_paths == []
    assert "head/deconv2/phase00_conv/kernel" in report.adapted
    assert_same_outputs(child, parent, images)


def test_head_step_narrowing_keeps_the_leading_units(parent):
    _, _, after, report = transfer(parent, with_head([16, 16, 8]))
    old = values(parent)
    np.testing.assert_array_equal(
        after["head/deconv3/kernel"], old["head/deconv3/kernel"][:, :, :8]
    )
    np.testing.assert_array_equal(
        after["head/final_conv/kernel"], old["head/final_conv/kernel"][:, :, :8]
    )
    assert report.fresh == [] and report.unused_parent_paths == []


def test_new_head_step_copies_the_last_step_and_says_so(parent):
    child, _, after, report = transfer(parent, with_head([16, 16, 16, 16]))
    old = values(parent)
    assert tuple(child.output_shape[1:3]) == (64, 48)
    assert report.fresh == []
    for role in ("/kernel", "_bn/gamma", "_bn/moving_variance"):
        assert report[f"head/deconv4{role}"].source == f"head/deconv3{role}"
        np.testing.assert_array_equal(
            after[f"head/deconv4{role}"], old[f"head/deconv3{role}"]
        )
    assert any("head: 3 -> 4 upsampling steps" in n for n in report.notes)


def test_removed_head_step_is_unused_and_noted(parent):
    child, _, _, report = transfer(parent, with_head([16, 16]))
    assert tuple(child.output_shape[1:3]) == (16, 12)
    assert report.fresh == []
    assert sorted(report.unused_parent_paths)[0] == "head/deconv3/kernel"
    assert len(report.unused_parent_paths) == 5
    assert any("head: 3 -> 2 upsampling steps" in n for n in report.notes)
