"""Preset registry helpers shared by the backbone and the pose model."""

import copy
import inspect

from keras_evopose.models.evopose2d_presets import backbone_presets


class classproperty(property):
    """A read-only property on the class (`EvoPose2D.presets`)."""

    def __get__(self, _, owner_cls):
        return self.fget(owner_cls)


def list_presets():
    return list(backbone_presets)


def get_preset(name):
    """Returns a deep copy of a preset's data, or a ValueError naming them."""
    if name not in backbone_presets:
        raise ValueError(
            f"Unknown preset {name!r}. Available presets: "
            + ", ".join(repr(p) for p in backbone_presets)
            + "."
        )
    return copy.deepcopy(backbone_presets[name])


def preset_arguments(name, part):
    """Constructor arguments of `part` ("backbone" or "head") of a preset."""
    return get_preset(name)[part]


def check_overrides(cls, preset, overrides, extra=()):
    """Rejects `from_preset` overrides the constructor would not accept."""
    accepted = set(inspect.signature(cls.__init__).parameters) | set(extra)
    accepted |= {"name", "dtype", "trainable"}
    unknown = sorted(set(overrides) - accepted - {"self", "kwargs"})
    if unknown:
        raise ValueError(
            f"{cls.__name__}.from_preset({preset!r}): unknown argument(s) "
            + ", ".join(unknown)
            + ". Accepted: "
            + ", ".join(sorted(accepted - {"self", "kwargs"}))
            + "."
        )


def load_preset_weights(model, weights, image_height):
    """Applies `from_preset`'s `weights` argument to a freshly built model.

    `None` keeps the random initialisation; `"imagenet"` copies the
    reference's ImageNet EfficientNet (B0, or B4/B5 for input heights
    384/512) with `keras_evopose.search.load_efficientnet_weights`, which
    downloads the EfficientNet weights on first use.
    """
    if weights is None:
        return None
    if weights != "imagenet":
        raise ValueError(
            f"`weights` must be None or 'imagenet'. Received: "
            f"weights={weights!r}. To load trained weights use "
            "keras.saving.load_model('model.keras') or "
            "model.load_weights('model.weights.h5')."
        )
    # Lazy: the search package imports this module.
    from keras_evopose.models import efficientnet_weights

    try:
        efficientnet = efficientnet_weights.imagenet_efficientnet(image_height)
    except Exception as error:  # keras raises a bare Exception offline.
        raise RuntimeError(
            "weights='imagenet' needs the ImageNet EfficientNet weights of "
            "keras.applications, downloaded once from "
            "storage.googleapis.com into KERAS_HOME/models (~/.keras/models"
            " by default); the download failed. With no network access, "
            "copy the file there (e.g. efficientnetb0_notop.h5) or build "
            f"with weights=None. Cause: {error}"
        ) from error
    return efficientnet_weights.load_efficientnet_weights(model, efficientnet)
