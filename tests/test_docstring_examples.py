"""Every `>>>` example in the public docstrings runs and prints what it says."""

import doctest
import importlib
import pathlib

import keras
import pytest

import keras_evopose

PACKAGE = pathlib.Path(keras_evopose.__file__).parent


def _modules_with_examples():
    """Every library module whose source holds a `>>>` example (found, not
    listed by hand, so a new example cannot be left out)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name.endswith("_test.py") or ">>>" not in path.read_text():
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


MODULES = _modules_with_examples()


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(
        module,
        extraglobs={"keras": keras, "keras_evopose": keras_evopose},
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.failed == 0
    assert result.attempted > 0
