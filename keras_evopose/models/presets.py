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
