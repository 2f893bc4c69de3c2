"""ImageNet initialisation from `keras.applications` EfficientNet weights.

The reference initialises the search's generation-0 ancestor (and its `_WT`
final models) from ImageNet EfficientNet weights, copied by layer name with
the same slicing rules as parent -> child weight transfer (`LOAD_WEIGHTS`).
Here the EfficientNet variable names are renamed to this library's paths
and handed to the very same transfer (`transfer_from_variables`).
"""

import re

import keras

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.models import weight_transfer

# `block6a_project_bn/gamma`: stage 6, repeat "a" (1), role, weight.
EFFICIENTNET_BLOCK_PATH = re.compile(
    r"^block(?P<stage>\d+)(?P<letter>[a-z])_(?P<role>[a-z_]+)/(?P<weight>\w+)$"
)
# EfficientNet role -> MBConvBlock role; the others are spelled alike.
ROLE_NAMES = {"bn": "dwconv_bn"}
STEM_LAYERS = ("stem_conv", "stem_bn")

# The reference's ImageNet parent by input height (256 -> B0, 384 -> B4,
# 512 -> B5); any other height takes B0.
EFFICIENTNET_BY_HEIGHT = {384: "EfficientNetB4", 512: "EfficientNetB5"}


def efficientnet_path(path):
    """This library's path for an EfficientNet variable path, or `None`.

    `block6a_bn/gamma` -> `stage6_block1/dwconv_bn/gamma`;
    `stem_conv/kernel` stays; `top_conv/...` and the input normalization
    have no counterpart (`None`).
    """
    match = EFFICIENTNET_BLOCK_PATH.match(path)
    if match is not None:
        block = ord(match["letter"]) - ord("a") + 1
        role = ROLE_NAMES.get(match["role"], match["role"])
        return f"stage{match['stage']}_block{block}/{role}/{match['weight']}"
    if path.split("/", 1)[0] in STEM_LAYERS:
        return path
    return None


@keras_evopose_export("keras_evopose.search.load_efficientnet_weights")
def load_efficientnet_weights(model, efficientnet):
    """Initialises an EvoPose2D network from a Keras EfficientNet.

    `efficientnet` is a `keras.applications.EfficientNetB0` (or B1-B7)
    model, normally built with `weights="imagenet", include_top=False`.
    Its layers are renamed to this library's paths (`block2b_expand_conv`
    -> `stage2_block2/expand_conv`, `block2b_bn` -> `stage2_block2/
    dwconv_bn`, `stem_conv`, `stem_bn`) and copied with
    `keras_evopose.search.transfer_weights`' rules, as the reference's
    `LOAD_WEIGHTS` does: same shape copied; different kernel size centred,
    different widths sliced (leading channels); a repeat EfficientNet lacks
    is its stage's last block with a zero residual branch. What has no
    counterpart stays as initialised and is listed in the report: the
    heatmap head of an `EvoPose2D` (report `fresh`), EfficientNet's
    `top_conv`/`top_bn` and input normalization (report
    `unused_parent_paths`). A stage whose stride differs (e.g. stage 6 of
    `small`) keeps every weight and the report notes it.

    The network expects ImageNet-normalised inputs, as this library's data
    pipeline produces (`(rgb / 255 - mean) / std`); EfficientNet's own
    rescaling/normalization layers are not part of it.

    Args:
        model: an `EvoPose2DBackbone` or `EvoPose2D` (built), modified in
            place.
        efficientnet: a `keras.applications` EfficientNet model.

    Returns:
        A `keras_evopose.search.TransferReport`.

    Raises:
        ValueError: if `efficientnet` has no EfficientNet layer names.

    Example:

    ```python
    import keras
    from keras_evopose.models import EvoPose2DBackbone
    from keras_evopose.search import load_efficientnet_weights

    backbone = EvoPose2DBackbone.from_preset("small")
    # Downloads the ImageNet weights once (network access needed).
    efficientnet = keras.applications.EfficientNetB0(
        weights="imagenet", include_top=False)
    report = load_efficientnet_weights(backbone, efficientnet)
    print(report)
    ```
    """
    if not isinstance(efficientnet, keras.Model):
        raise ValueError(
            "load_efficientnet_weights: `efficientnet` must be a "
            "keras.applications EfficientNet model. Received: "
            f"{type(efficientnet).__name__}"
        )
    renamed = {}
    for variable in efficientnet.weights:
        path = efficientnet_path(variable.path)
        if path is not None:
            renamed[path] = variable
    if not renamed:
        raise ValueError(
            "load_efficientnet_weights: `efficientnet` has no EfficientNet "
            "layer names (`stem_conv`, `block1a_dwconv`, ...). Received a "
            f"model with e.g. {[v.path for v in efficientnet.weights][:3]}."
            " Pass keras.applications.EfficientNetB0(include_top=False)."
        )
    strides = {}
    for layer_path, value in weight_transfer.strides_by_layer_path(
        efficientnet
    ).items():
        renamed_path = efficientnet_path(f"{layer_path}/kernel")
        if renamed_path is not None:
            strides[renamed_path.rsplit("/", 1)[0]] = value
    report = weight_transfer.transfer_from_variables(
        renamed, model, parent_strides=strides
    )
    # Report EfficientNet's own names for what it could not place.
    mapped = set(renamed)
    used = {
        id(renamed[path])
        for path in mapped
        if path not in set(report.unused_parent_paths)
    }
    report.unused_parent_paths = [
        variable.path
        for variable in efficientnet.weights
        if id(variable) not in used
    ]
    return report


def imagenet_efficientnet(image_height):
    """The reference's ImageNet parent for an input height (downloads)."""
    name = EFFICIENTNET_BY_HEIGHT.get(image_height, "EfficientNetB0")
    return getattr(keras.applications, name)(
        weights="imagenet", include_top=False
    )
