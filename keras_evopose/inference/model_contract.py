"""A model's data contract: how to crop for it and how to read its heatmaps."""

import logging

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.data.keypoint_layout import KeypointLayout
from keras_evopose.data.keypoint_layout import KeypointLayoutError
from keras_evopose.data.sample_options import SampleOptions


def _model_sizes(model, input_size=None):
    """`(input_size, heatmap_size)` of `model` (at `input_size` if given)."""
    if input_size is None:
        input_size = tuple(model.input_shape[1:3])
        if None in input_size:
            raise ValueError(
                "The model has no fixed input size; pass "
                "`input_size=(height, width)`."
            )
    input_size = tuple(int(side) for side in input_size)
    heatmap_size = tuple(model.output_shape[1:3])
    if None in heatmap_size or tuple(model.input_shape[1:3]) != input_size:
        heatmap_size = tuple(
            model.compute_output_shape((1, *input_size, 3))[1:3]
        )
    return input_size, heatmap_size


@keras_evopose_export("keras_evopose.inference.model_contract")
def model_contract(
    model, options=None, keypoint_layout=None, input_size=None, **fields
):
    """The `SampleOptions` and `KeypointLayout` to use with `model`.

    What `evaluate_coco`, `predict_keypoints` and `COCOEvaluation` crop
    and decode with: the model's own (`model.sample_options`,
    `model.keypoint_layout`, saved by `EvoPose2D` and beside an exported
    `.tflite` file), else today's defaults at the model's sizes and the
    COCO person layout for 17 heatmaps. Explicit arguments override.

    Args:
        model: a heatmap model (Keras or `LiteRTModel`).
        options: a `SampleOptions` replacing the model's.
        keypoint_layout: a `KeypointLayout` replacing the model's.
        input_size: `(height, width)` to run the model at (models without
            a fixed input size); the heatmap size follows.
        **fields: `SampleOptions` fields replacing the options' (`None`
            values are ignored), e.g. `padding=1.5`.

    Returns:
        `(options, layout)`; `layout` is `None` when the model has none and
        more than 17 or fewer heatmaps.

    Raises:
        KeypointLayoutError: if the layout's keypoints are not the model's
            heatmaps.
    """
    if options is None:
        options = getattr(model, "sample_options", None)
    elif not isinstance(options, SampleOptions):
        raise ValueError(
            "`options` must be a keras_evopose.data.SampleOptions. "
            f"Received: {type(options).__name__}"
        )
    if options is None or input_size is not None:
        sizes = _model_sizes(model, input_size)
        if options is None:
            options = SampleOptions(*sizes)
        elif sizes != (options.input_size, options.heatmap_size):
            options = options.replace(
                input_size=sizes[0], heatmap_size=sizes[1]
            )
    fields = {
        name: value for name, value in fields.items() if value is not None
    }
    if fields:
        options = options.replace(**fields)
    num_heatmaps = model.output_shape[-1]
    layout = keypoint_layout or getattr(model, "keypoint_layout", None)
    if layout is None and num_heatmaps == 17:
        layout = KeypointLayout.coco_person()
    if layout is not None and layout.num_keypoints != num_heatmaps:
        raise KeypointLayoutError(
            f"the model predicts {num_heatmaps} heatmaps but the keypoint "
            f"layout has {layout.num_keypoints} keypoints "
            f"({', '.join(layout.names[:4])}, ...); pass the layout the "
            "model was trained with (--keypoint-layout FILE.json)"
        )
    return options, layout


def layout_for_data(model_layout, data_layout, source):
    """The layout to score `data_layout`'s annotations with: the model's
    (its heatmap order and flip pairs), with the data's OKS sigmas when
    the model has none.

    Raises:
        KeypointLayoutError: when the keypoint counts differ.
    """
    if model_layout is None:
        return data_layout
    if model_layout.num_keypoints != data_layout.num_keypoints:
        raise KeypointLayoutError(
            f"the model predicts {model_layout.num_keypoints} keypoints "
            f"({', '.join(model_layout.names[:3])}, ...) but {source} has "
            f"{data_layout.num_keypoints} "
            f"({', '.join(data_layout.names[:3])}, ...); evaluate on data "
            "of the model's keypoint layout"
        )
    if model_layout.names != data_layout.names:
        logging.getLogger(__name__).warning(
            "The model's keypoint names %s differ from those of %s (%s); "
            "scoring them in the model's order.",
            list(model_layout.names),
            source,
            list(data_layout.names),
        )
    if model_layout.oks_sigmas is None and data_layout.oks_sigmas:
        import dataclasses

        return dataclasses.replace(
            model_layout, oks_sigmas=data_layout.oks_sigmas
        )
    return model_layout
