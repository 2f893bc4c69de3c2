"""Every public name has exactly one home: the path its decorator names.

`keras_evopose_export("keras_evopose.<ns>.<Name>")` marks a symbol
public; this checks that the path imports to that very symbol, that no
other package's `__all__` lists it (a moved name is served by a
deprecated `__getattr__` alias instead), and that CONTRIBUTING.md's
"Where things live" table names files that define what it says.
"""

import importlib
import importlib.util
import inspect
import pathlib
import pkgutil
import re

import keras_evopose

ROOT = pathlib.Path(__file__).resolve().parents[1]
_HAS_KERAS_HUB = importlib.util.find_spec("keras_hub") is not None


def _resolve(path):
    """The object at a dotted path, as `from a.b import c` finds it:
    attributes first, submodules only where no attribute has the name."""
    parts = path.split(".")
    value = importlib.import_module(parts[0])
    for index, part in enumerate(parts[1:], 2):
        if not hasattr(value, part):
            importlib.import_module(".".join(parts[:index]))
        value = getattr(value, part)
    return value


def _library_modules():
    for info in pkgutil.walk_packages(keras_evopose.__path__, "keras_evopose."):
        last = info.name.rsplit(".", 1)[-1]
        # The CLI only orchestrates; `__main__` runs it on import.
        if last.endswith("_test") or ".cli" in info.name or last == "__main__":
            continue
        # The `hub` extra's package imports keras-hub.
        if info.name.startswith("keras_evopose.hub") and not _HAS_KERAS_HUB:
            continue
        yield info, importlib.import_module(info.name)


def _public_symbols_and_listings():
    decorated = {}
    listed = {}
    for info, module in _library_modules():
        for value in vars(module).values():
            # Own attribute only: a subclass inherits its base's mark.
            path = getattr(value, "__dict__", {}).get(
                "_keras_evopose_public_path"
            )
            if path is not None and (
                getattr(value, "__module__", None) == module.__name__
            ):
                decorated[id(value)] = (path, value)
        if info.ispkg:
            for name in getattr(module, "__all__", ()):
                value = getattr(module, name)
                listed.setdefault(id(value), []).append(f"{info.name}.{name}")
    return decorated, listed


def test_every_public_name_has_exactly_the_home_its_decorator_names():
    decorated, listed = _public_symbols_and_listings()
    assert len(decorated) > 50  # the walk found the library
    wrong = []
    for key, (path, value) in decorated.items():
        try:
            found = _resolve(path)
        except (ModuleNotFoundError, AttributeError):
            found = None
        if found is not value:
            wrong.append(f"{path}: does not import to the decorated symbol")
        others = [p for p in listed.get(key, []) if p != path]
        if others:
            wrong.append(f"{path}: also exported as {others}")
    assert not wrong, "\n".join(wrong)


def test_moved_names_still_import_with_a_deprecation_warning():
    import pytest

    from keras_evopose import data
    from keras_evopose import inference
    from keras_evopose import metrics

    with pytest.warns(DeprecationWarning, match="inference.predict_keypoints"):
        assert metrics.predict_keypoints is inference.predict_keypoints
    with pytest.warns(DeprecationWarning, match="metrics.decode_heatmaps"):
        assert data.decode_heatmaps is metrics.decode_heatmaps
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        data.nothing


def _where_things_live():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if (
            len(cells) != 3
            or cells[0] in ("concept", "")
            or set(cells[0]) <= {"-"}
        ):
            continue
        names = re.findall(r"`([^`]+)`", cells[1])
        files = re.findall(r"`([^`]+)`", cells[2])
        rows.append((cells[0], names, files))
    return rows


def test_contributing_map_names_the_files_that_define_each_concept():
    rows = _where_things_live()
    assert len(rows) >= 15
    wrong = []
    for concept, names, files in rows:
        for file in files:
            if not (ROOT / file).exists():
                wrong.append(f"{concept}: {file} does not exist")
        for name in names:
            if name.startswith("keras_evopose.hub.") and not _HAS_KERAS_HUB:
                continue
            value = _resolve(name)
            source = pathlib.Path(inspect.getsourcefile(value)).resolve()
            where = str(source.relative_to(ROOT))
            if where not in files:
                wrong.append(f"{concept}: {name} is defined in {where}")
    assert not wrong, "\n".join(wrong)


def test_utils_is_ground_level():
    """`keras_evopose.utils` imports nothing of the library above it."""
    import ast

    wrong = []
    for path in sorted((ROOT / "keras_evopose" / "utils").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                name = node.module
            elif isinstance(node, ast.Import):
                name = node.names[0].name
            else:
                continue
            if name.startswith("keras_evopose") and not name.startswith(
                ("keras_evopose.utils", "keras_evopose.api_export")
            ):
                wrong.append(f"{path.name} imports {name}")
    assert not wrong, wrong
