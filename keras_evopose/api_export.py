"""Public-path decorator that also registers Keras serialization."""

import keras


def keras_evopose_export(path):
    """Marks a symbol public at `path` and makes it Keras-serializable.

    One decorator for both so a public layer can never be forgotten in the
    serialization registry (a `.keras` file would then fail to load).

    Args:
        path: the public dotted path, e.g. `"keras_evopose.layers.MBConvBlock"`.

    Returns:
        A class or function decorator that returns its argument unchanged.
    """

    def decorator(symbol):
        symbol._keras_evopose_public_path = path
        if isinstance(symbol, type) and hasattr(symbol, "get_config"):
            return keras.saving.register_keras_serializable(
                package="keras_evopose"
            )(symbol)
        return symbol

    return decorator
