import ast
import pathlib

import keras_tuner

PACKAGE = pathlib.Path(__file__).resolve().parents[1]
DOORS = ("search/resumable_oracle.py", "search/resumable_tuner.py")


def _private_members():
    names = set()
    for base in (keras_tuner.Tuner, keras_tuner.Oracle):
        names |= {
            name
            for name in dir(base)
            if name.startswith("_") and not name.startswith("__")
        }
    return names


def test_keras_tuner_internals_are_touched_only_in_the_resumable_bases():
    private = _private_members()
    assert "_try_build" in private and "_save_trial" in private
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        if where.endswith("_test.py") or where in DOORS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("keras_tuner.src"):
                    wrong.append(f"{where}:{node.lineno} imports {node.module}")
            elif isinstance(node, ast.Attribute) and node.attr in private:
                wrong.append(f"{where}:{node.lineno} uses {node.attr}")
            elif isinstance(node, ast.FunctionDef) and node.name in private:
                wrong.append(f"{where}:{node.lineno} overrides {node.name}")
    assert not wrong, "\n".join(wrong)
