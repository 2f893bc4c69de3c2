"""Keypoints of people in one image, given their boxes."""

import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data import coco_keypoints
from keras_evopose.data.keypoint_layout import KeypointLayoutError
from keras_evopose.inference.model_contract import model_contract


@keras_evopose_export("keras_evopose.inference.predict_keypoints")
def predict_keypoints(
    model,
    image,
    boxes,
    layout=None,
    flip_test=True,
    refinement="quarter_offset",
    heatmap_peak=None,
    padding=None,
    fill=None,
    options=None,
):
    """Top-down keypoints for `boxes` in one image file.

    The crops go through the same pipeline as evaluation (no
    augmentation), with the model's data contract
    (`keras_evopose.inference.model_contract`), so results match
    `evaluate_coco`. Arguments that are not `None` override the contract.

    Args:
        model: heatmap model (input size read from it).
        image: path of a JPEG/PNG image (local or `tf.io.gfile` URL).
        boxes: `(N, 4)` COCO `[x, y, w, h]` person boxes.
        layout: `KeypointLayout` (flip pairs for the flip test); defaults
            to the model's (`EvoPose2D.keypoint_layout`), else COCO person
            when the model has 17 heatmaps.
        flip_test: bool, average with the mirrored crop.
        refinement, heatmap_peak: see `decode_heatmaps`.
        padding: float, box padding (as in training).
        fill: the area outside the image, as in training (see
            `SampleOptions`).
        options: a `SampleOptions` replacing the model's.

    Returns:
        `(N, K, 3)` float32 array of image `(x, y, score)`.
    """
    import tensorflow as tf

    # Imported here: `keras_evopose.metrics` re-exports this function.
    from keras_evopose.metrics.decoding import crops_to_keypoints

    boxes = np.asarray(boxes, "float32").reshape(-1, 4)
    if len(boxes) == 0:
        raise ValueError("predict_keypoints: `boxes` is empty.")
    options, layout = model_contract(
        model,
        options,
        layout,
        heatmap_peak=heatmap_peak,
        padding=padding,
        fill=fill,
    )
    num_keypoints = model.output_shape[-1]
    if layout is None:
        if flip_test:
            raise KeypointLayoutError(
                f"the model predicts {num_keypoints} keypoints and has no "
                "keypoint layout; pass its layout (--keypoint-layout "
                "FILE.json) for the flip test, or turn the flip test off"
            )
        # Without a flip nothing reads the names.
        from keras_evopose.data.keypoint_layout import KeypointLayout

        layout = KeypointLayout([f"keypoint_{i}" for i in range(num_keypoints)])
    if flip_test:
        layout.check_flip("the flip test")
    with tf.io.gfile.GFile(str(image), "rb") as handle:
        encoded = handle.read()
    count = len(boxes)
    records = tf.data.Dataset.from_tensor_slices(
        {
            "image_bytes": [encoded] * count,
            "image_id": np.zeros(count, "int64"),
            "annotation_id": np.arange(count, dtype="int64"),
            "box": boxes,
            "keypoints": np.zeros((count, num_keypoints, 3), "float32"),
            "score": np.ones(count, "float32"),
        }
    )
    samples = coco_keypoints.build_samples(
        records,
        layout,
        options,
        augment=False,
        seed=0,
        batch_size=32,
        drop_remainder=False,
    )
    outputs = []
    for batch in samples:
        outputs.append(
            crops_to_keypoints(
                model.predict_on_batch,
                batch["image"].numpy(),
                batch["center"].numpy(),
                batch["scale"].numpy(),
                options,
                layout.flip_permutation if flip_test else None,
                refinement=refinement,
            )
        )
    return np.concatenate(outputs)
