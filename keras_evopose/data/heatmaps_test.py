import numpy as np
import pytest

from keras_evopose.data import SampleOptions
from keras_evopose.data import coco_keypoints_dataset
from keras_evopose.data import decode_heatmaps
from keras_evopose.data import encode_heatmaps
from keras_evopose.data import geometry
from keras_evopose.data import load_coco_instances
from keras_evopose.data.heatmaps import inside_heatmap


@pytest.mark.parametrize("heatmap_size", [(64, 48), (128, 96)])
def test_round_trip_within_half_a_pixel(heatmap_size):
    # Random sub-pixel joints anywhere on the map survive encode -> decode.
    options = SampleOptions((256, 192), heatmap_size)
    rng = np.random.default_rng(0)
    height, width = heatmap_size
    x = rng.uniform(-0.49, width - 0.51, (8, 17)).astype("float32")
    y = rng.uniform(-0.49, height - 0.51, (8, 17)).astype("float32")
    heatmaps, weights = encode_heatmaps(x, y, np.full((8, 17), 2), options)
    coordinates, scores = decode_heatmaps(heatmaps.numpy())
    error = np.abs(coordinates - np.stack([x, y], -1))
    assert error.max() <= 0.5, error.max()
    # Away from the edge pixels, where the refinement has both neighbours,
    # the error is far smaller.
    interior = (x > 2) & (x < width - 3) & (y > 2) & (y < height - 3)
    assert np.hypot(*error[interior].T).max() < 0.36
    np.testing.assert_array_equal(weights.numpy(), 1.0)
    assert scores.min() > 0.6


def test_dark_round_trip_away_from_the_edges():
    # DARK's smoothing is biased where the Gaussian meets the map edge, so
    # its sub-pixel claim holds 3 sigma inside.
    options = SampleOptions((256, 192), (64, 48))
    margin = 3 * options.sigma
    rng = np.random.default_rng(1)
    x = rng.uniform(margin, 47 - margin, (8, 17)).astype("float32")
    y = rng.uniform(margin, 63 - margin, (8, 17)).astype("float32")
    heatmaps, _ = encode_heatmaps(x, y, np.full((8, 17), 2), options)
    coordinates, _ = decode_heatmaps(heatmaps.numpy(), "dark", sigma=2.0)
    error = np.hypot(coordinates[..., 0] - x, coordinates[..., 1] - y)
    assert error.max() < 0.1, error.max()


def test_round_trip_of_real_joints_through_the_pipeline(coco_mini):
    # COCO val keypoints -> eval crop -> targets -> decode -> image.
    options = SampleOptions((256, 192), (64, 48))
    dataset = coco_keypoints_dataset(
        coco_mini["annotations"],
        coco_mini["images"],
        options,
        batch_size=80,
        include_metadata=True,
    )
    batch = next(iter(dataset))
    instances = load_coco_instances(
        coco_mini["annotations"], coco_mini["images"]
    )
    coordinates, _ = decode_heatmaps(batch["heatmaps"].numpy())
    matrix = geometry.image_to_crop_matrix(
        batch["center"].numpy(), batch["scale"].numpy(), options.input_size
    )
    expected = geometry.crop_to_heatmap(
        geometry.apply_affine(matrix, instances.keypoints[..., :2]),
        options.input_size,
        options.heatmap_size,
    )
    expected = np.stack(expected, -1)
    inside = (instances.keypoints[..., 2] > 0) & inside_heatmap(
        *expected.T, options.heatmap_size
    ).T
    error = np.abs(coordinates - expected)[inside]
    assert error.max() <= 0.5, error.max()
    assert inside.sum() > 800


def test_out_of_crop_joints_decode_to_the_border():
    x = np.array([[-3.0, 60.0, 10.0, -100.0]], "float32")
    y = np.array([[5.0, 20.0, 70.0, 30.0]], "float32")
    visibility = np.array([[2, 2, 2, 2]])
    border = SampleOptions((256, 192), (64, 48))
    heatmaps, weights = encode_heatmaps(x, y, visibility, border)
    coordinates, scores = decode_heatmaps(heatmaps.numpy())
    np.testing.assert_allclose(
        coordinates[0], [[0, 5], [47, 20], [10, 63], [0, 30]], atol=0.3
    )
    np.testing.assert_array_equal(weights.numpy(), 1.0)
    # Lower the farther out; a far joint keeps a small, nonzero peak.
    assert 0.2 < scores[0, 0] < 0.5
    assert 0 < scores[0, 3] < 0.02
    ignore = border.replace(out_of_crop="ignore")
    heatmaps, weights = encode_heatmaps(x, y, visibility, ignore)
    np.testing.assert_array_equal(weights.numpy(), 0.0)
    np.testing.assert_array_equal(heatmaps.numpy(), 0.0)


def test_unlabelled_joints_have_no_target():
    options = SampleOptions((64, 48), (32, 24))
    heatmaps, weights = encode_heatmaps(
        np.array([[5.0, 5.0]]), np.array([[5.0, 5.0]]), [[2, 0]], options
    )
    assert weights.numpy().tolist() == [[1.0, 0.0]]
    assert heatmaps.numpy()[..., 1].max() == 0.0
    np.testing.assert_allclose(heatmaps.numpy()[0, 5, 5, 0], 255.0)
