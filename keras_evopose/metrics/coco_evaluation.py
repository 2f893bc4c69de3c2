"""COCO keypoint evaluation: predictions -> results JSON -> pycocotools."""

import contextlib
import io
import json

import numpy as np

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data import coco_keypoints
from keras_evopose.data.coco_instances import read_json
from keras_evopose.metrics.decoding import crops_to_keypoints

# pycocotools' stats vector, in order.
STAT_NAMES = (
    "ap",
    "ap50",
    "ap75",
    "ap_medium",
    "ap_large",
    "ar",
    "ar50",
    "ar75",
    "ar_medium",
    "ar_large",
)


def rescore(box_scores, keypoints, threshold=0.2):
    """Instance score = box score * mean of the joint scores above
    `threshold` (0 when none is), as in the reference."""
    joint_scores = keypoints[..., 2]
    confident = joint_scores > threshold
    mean = np.where(
        confident.any(-1),
        (joint_scores * confident).sum(-1) / np.maximum(confident.sum(-1), 1),
        0.0,
    )
    return box_scores * mean


@keras_evopose_export("keras_evopose.metrics.oks_nms")
def oks_nms(image_ids, keypoints, scores, areas, oks_sigmas, threshold=0.9):
    """Greedy per-image non-maximum suppression by object keypoint
    similarity (OKS), as HRNet applies to detector-box results.

    Args:
        image_ids: `(N,)` ints.
        keypoints: `(N, K, 3)` image `(x, y, score)`.
        scores: `(N,)` instance scores (higher first).
        areas: `(N,)` instance areas (box `w * h`).
        oks_sigmas: `(K,)` per-keypoint OKS constants.
        threshold: float, an instance is dropped when its OKS with a
            kept, higher-scoring instance of the same image exceeds it.

    Returns:
        Sorted int array of the indices kept.
    """
    image_ids = np.asarray(image_ids)
    keypoints = np.asarray(keypoints, "float32")
    scores = np.asarray(scores, "float32")
    areas = np.asarray(areas, "float32")
    variances = (2.0 * np.asarray(oks_sigmas, "float32")) ** 2
    kept = []
    for image_id in np.unique(image_ids):
        order = np.flatnonzero(image_ids == image_id)
        order = order[np.argsort(-scores[order], kind="stable")]
        while order.size:
            best, rest = order[0], order[1:]
            kept.append(best)
            distances = np.sum(
                (keypoints[rest, :, :2] - keypoints[best, :, :2]) ** 2, -1
            )
            scale = (areas[rest] + areas[best])[:, None] / 2.0 + np.spacing(1)
            similarity = np.mean(
                np.exp(-distances / variances / scale / 2.0), -1
            )
            order = rest[similarity <= threshold]
    return np.sort(np.asarray(kept, "int64"))


@keras_evopose_export("keras_evopose.metrics.coco_results")
def coco_results(image_ids, keypoints, box_scores, category_id=1):
    """Builds a COCO keypoint results list (the JSON pycocotools loads).

    Args:
        image_ids: `(N,)` ints.
        keypoints: `(N, K, 3)` image `(x, y, score)`.
        box_scores: `(N,)` person box scores (1 for ground-truth boxes).
        category_id: int.

    Returns:
        A list of dicts `{image_id, category_id, keypoints, score}`.
    """
    keypoints = np.asarray(keypoints, "float32")
    scores = rescore(np.asarray(box_scores, "float32"), keypoints)
    return [
        {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": [round(float(v), 3) for v in points.ravel()],
            "score": float(score),
        }
        for image_id, points, score in zip(image_ids, keypoints, scores)
    ]


@keras_evopose_export("keras_evopose.metrics.coco_keypoint_ap")
def coco_keypoint_ap(annotations, results, image_ids=None, oks_sigmas=None):
    """OKS AP/AR of keypoint `results` with pycocotools.

    Args:
        annotations: path of the ground-truth COCO keypoints JSON.
        results: a results list (see `coco_results`) or the path of one.
        image_ids: optional list of image ids to evaluate on. Defaults to
            the images that have results.
        oks_sigmas: per-keypoint OKS constants; required unless the set is
            COCO's 17 joints (pycocotools' default).

    Returns:
        dict with `ap`, `ap50`, `ap75`, `ap_medium`, `ap_large`, `ar`,
        `ar50`, `ar75`, `ar_medium`, `ar_large` (floats in [0, 1]; -1
        where COCO has nothing to measure).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if isinstance(results, (str, bytes)) or hasattr(results, "__fspath__"):
        results = read_json(results)
    if not results:
        raise ValueError(
            "coco_keypoint_ap: the results list is empty; nothing to score."
        )
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO()
        ground_truth.dataset = read_json(annotations)
        ground_truth.createIndex()
        detections = ground_truth.loadRes(list(results))
        evaluator = COCOeval(ground_truth, detections, "keypoints")
        if oks_sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.asarray(oks_sigmas, float)
        elif len(results[0]["keypoints"]) != 51:
            raise ValueError(
                "coco_keypoint_ap: results have "
                f"{len(results[0]['keypoints']) // 3} keypoints; pass "
                "`oks_sigmas` (pycocotools only knows COCO's 17)."
            )
        if image_ids is None:
            image_ids = sorted({result["image_id"] for result in results})
        evaluator.params.imgIds = sorted(int(i) for i in image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {
        name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats)
    }


def _predict(
    heatmap_function,
    annotations,
    images,
    options,
    layout,
    detections,
    batch_size,
    flip_test,
    refinement,
    dataset_options,
):
    """Runs `heatmap_function(batch_dict) -> heatmaps` over the eval
    pipeline and returns (layout, instances, image ids, keypoints, scores)."""
    from keras_evopose.data.coco_instances import load_coco_instances
    from keras_evopose.inference.model_contract import layout_for_data

    # Loading twice is cheap (JSON only) and gives the layout and ids.
    instances = load_coco_instances(
        annotations,
        images,
        detections=detections,
        min_detection_score=dataset_options.get("min_detection_score", 0.0),
        keypoints_from_ground_truth=dataset_options.get(
            "keypoints_from_ground_truth", False
        ),
    )
    layout = layout_for_data(layout, instances.layout, annotations)
    if flip_test:
        layout.check_flip("the flip test")
    # Fail before predicting: scoring needs a sigma per keypoint.
    layout.check_oks_sigmas()
    dataset = coco_keypoints.coco_keypoints_dataset(
        annotations,
        images,
        options=options,
        batch_size=batch_size,
        detections=detections,
        training=False,
        include_metadata=True,
        **dataset_options,
    )
    permutation = layout.flip_permutation
    image_ids, keypoints, box_scores = [], [], []
    for batch in dataset:
        keypoints.append(
            crops_to_keypoints(
                lambda images: heatmap_function({**batch, "image": images}),
                batch["image"],
                batch["center"].numpy(),
                batch["scale"].numpy(),
                options,
                permutation if flip_test else None,
                refinement=refinement,
            )
        )
        image_ids.append(batch["image_id"].numpy())
        box_scores.append(batch["score"].numpy())
    return (
        layout,
        instances,
        np.concatenate(image_ids),
        np.concatenate(keypoints),
        np.concatenate(box_scores),
    )


def _evaluate(
    heatmap_function,
    annotations,
    images,
    options,
    layout=None,
    detections=None,
    batch_size=32,
    flip_test=False,
    refinement="quarter_offset",
    results_path=None,
    oks_nms_threshold=None,
    **dataset_options,
):
    """`heatmap_function`'s COCO AP with `options` (a `SampleOptions`)
    and `layout` (the heatmaps' `KeypointLayout`, default the data's)."""
    coco_keypoints.check_batch_size(batch_size)
    layout, instances, image_ids, keypoints, box_scores = _predict(
        heatmap_function,
        annotations,
        images,
        options,
        layout,
        detections,
        batch_size,
        flip_test,
        refinement,
        dataset_options,
    )
    results = coco_results(
        image_ids, keypoints, box_scores, instances.category_id
    )
    if oks_nms_threshold is not None:
        # The pipeline keeps the instances' order, so boxes line up.
        kept = oks_nms(
            image_ids,
            keypoints,
            [result["score"] for result in results],
            instances.boxes[:, 2] * instances.boxes[:, 3],
            layout.oks_sigmas,
            oks_nms_threshold,
        )
        results = [results[index] for index in kept]
    if results_path is not None:
        import tensorflow as tf

        with tf.io.gfile.GFile(str(results_path), "w") as handle:
            json.dump(results, handle)
    return coco_keypoint_ap(
        annotations,
        results,
        image_ids=sorted(set(instances.image_ids.tolist())),
        oks_sigmas=layout.oks_sigmas,
    )


@keras_evopose_export("keras_evopose.metrics.evaluate_coco")
def evaluate_coco(
    model,
    annotations,
    images,
    detections=None,
    input_size=None,
    batch_size=32,
    flip_test=True,
    refinement="quarter_offset",
    heatmap_peak=None,
    sigma=None,
    results_path=None,
    min_detection_score=0.0,
    oks_nms_threshold=None,
    options=None,
    keypoint_layout=None,
):
    """COCO keypoint AP of a heatmap model on a COCO JSON + image folder.

    Crops every person box (ground truth, or `detections`) without
    augmentation, predicts heatmaps (averaged with the flipped crop's when
    `flip_test`), decodes them (`decode_heatmaps`), maps them back to the
    image, rescores instances (box score x mean joint score above 0.2) and
    runs pycocotools on the images that have boxes.

    Crops and decoding follow the model's data contract
    (`keras_evopose.inference.model_contract`: an `EvoPose2D`'s
    `sample_options` and `keypoint_layout`); the arguments below that are
    not `None` override it.

    Args:
        model: a Keras model from images `(batch, H, W, 3)` to heatmaps
            `(batch, h, w, K)`, or a `LiteRTModel`.
        annotations: ground-truth COCO keypoints JSON.
        images: image folder.
        detections: optional COCO results JSON of person boxes.
        input_size: `(height, width)`; defaults to the model's input.
        batch_size: int.
        flip_test: bool, average with the horizontally flipped crop.
        refinement: `"quarter_offset"` (reference), `"dark"` or `"none"`.
        heatmap_peak: float, the training targets' peak (scores =
            max/peak); defaults to the model's options (255).
        sigma: the training targets' sigma (only DARK uses it); defaults
            to the model's options.
        results_path: optional path to write the results JSON to.
        min_detection_score: float, detections below it are dropped.
        oks_nms_threshold: optional float (HRNet uses 0.9): drop results
            whose OKS with a higher-scoring result of the same image
            exceeds it (`oks_nms`). Defaults to `None` (off, as in the
            reference).
        options: a `SampleOptions` replacing the model's (crop padding,
            fill, sigma, peak).
        keypoint_layout: a `KeypointLayout` replacing the model's (flip
            pairs of the flip test, OKS sigmas); the annotations' when
            the model has none.

    Returns:
        The dict of `coco_keypoint_ap` (`ap`, `ap50`, ...).

    Raises:
        KeypointLayoutError: the flip test would mislabel joints, OKS
            sigmas are missing, or the model's keypoints are not the
            annotations'.
    """
    from keras_evopose.inference.model_contract import model_contract

    options, layout = model_contract(
        model,
        options,
        keypoint_layout,
        input_size=input_size,
        heatmap_peak=heatmap_peak,
        sigma=sigma,
    )

    def heatmap_function(batch):
        return model.predict_on_batch(np.asarray(batch["image"]))

    return _evaluate(
        heatmap_function,
        annotations,
        images,
        options,
        layout,
        detections=detections,
        batch_size=batch_size,
        flip_test=flip_test,
        refinement=refinement,
        results_path=results_path,
        min_detection_score=min_detection_score,
        oks_nms_threshold=oks_nms_threshold,
    )


@keras_evopose_export("keras_evopose.metrics.ceiling_ap")
def ceiling_ap(
    annotations,
    images,
    input_size=None,
    heatmap_size=None,
    detections=None,
    refinement="quarter_offset",
    sigma=None,
    batch_size=64,
    options=None,
    keypoint_layout=None,
    **sample_options,
):
    """The best AP any model can reach through this pipeline.

    Ground-truth keypoints go through the evaluation crop, become heatmap
    targets, and are decoded and mapped back exactly like predictions,
    then scored with pycocotools. With `detections`, each detected box gets
    the keypoints of the ground-truth person it overlaps most.

    Args:
        annotations, images: the COCO keypoints JSON and image folder.
        input_size: `(height, width)` of the crops (default 256x192, or
            the `options`').
        heatmap_size: `(height, width)` of the model's heatmaps
            (required unless `options` is given, e.g.
            `model.output_shape[1:3]`).
        detections: optional COCO results JSON of person boxes.
        refinement: the decoder's refinement (see `decode_heatmaps`).
        sigma: Gaussian sigma; defaults to `2 * heatmap_height / 64`.
        batch_size: int.
        options: a `SampleOptions` (e.g. a model's `sample_options`);
            the arguments above and `**sample_options` replace its fields.
        keypoint_layout: a `KeypointLayout` (OKS sigmas) instead of the
            annotations'.
        **sample_options: other `SampleOptions` fields, e.g.
            `out_of_crop="ignore"` to see what border targets add.

    Returns:
        The dict of `coco_keypoint_ap`.
    """
    fields = dict(input_size=input_size, heatmap_size=heatmap_size, sigma=sigma)
    fields = {k: v for k, v in fields.items() if v is not None}
    if options is None:
        fields.setdefault("input_size", (256, 192))
    options = coco_keypoints.resolve_options(
        options, {**fields, **sample_options}
    )
    return _evaluate(
        lambda batch: batch["heatmaps"].numpy(),
        annotations,
        images,
        options,
        keypoint_layout,
        detections=detections,
        batch_size=batch_size,
        flip_test=False,
        refinement=refinement,
        keypoints_from_ground_truth=detections is not None,
    )
