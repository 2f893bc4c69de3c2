"""Public-path decorator that also registers Keras serialization."""

import keras


def keras_evopose_export(path, registered_name=None):
    """Marks a symbol public at `path` and makes it Keras-serializable.

    One decorator for both so a public layer can never be forgotten in the
    serialization registry (a `.keras` file would then fail to load).

    Args:
        path: the public dotted path, e.g. `"keras_evopose.layers.MBConvBlock"`.
        registered_name: the name in `.keras` files (`keras_evopose>NAME`);
            defaults to the class name. Two classes may not share one.

    Returns:
        A class or function decorator that returns its argument unchanged.
    """

    def decorator(symbol):
        symbol._keras_evopose_public_path = path
        if isinstance(symbol, type) and hasattr(symbol, "get_config"):
            name = registered_name or symbol.__name__
            known = keras.saving.get_registered_object(f"keras_evopose>{name}")
            if known is not None and known.__qualname__ != symbol.__qualname__:
                # Two classes under one registered name: loading a .keras
                # file would build the wrong one (a metric for a loss).
                raise TypeError(
                    f"{path} and {known._keras_evopose_public_path} would "
                    f"both be registered as 'keras_evopose>{name}'; give "
                    "one a registered_name."
                )
            return keras.saving.register_keras_serializable(
                package="keras_evopose", name=name
            )(symbol)
        return symbol

    return decorator


def deprecated_aliases(namespace, aliases):
    """A module `__getattr__` serving moved public names for one release.

    Each public name has one home (the path its `keras_evopose_export`
    names); an old path keeps working for a release but warns, naming the
    new one.

    Args:
        namespace: the old module's name, e.g. `"keras_evopose.metrics"`.
        aliases: dict of old name to the dotted path of its home, or to
            `(path, replacement)` where the replacement to name is not the
            path itself (e.g. a Keras method).

    Returns:
        A function to assign to the old module's `__getattr__`.
    """
    import importlib
    import warnings

    def __getattr__(name):
        if name not in aliases:
            raise AttributeError(
                f"module {namespace!r} has no attribute {name!r}"
            )
        path = aliases[name]
        replacement = path
        if isinstance(path, tuple):
            path, replacement = path
        module, _, attribute = path.rpartition(".")
        warnings.warn(
            f"{namespace}.{name} is deprecated and will be removed in the "
            f"next release; use {replacement}.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module), attribute)

    return __getattr__
