"""The oldest versions `setup.py` allows really work.

`constraints-lower.txt` pins each dependency with a range in `setup.py`
to its lower bound; the slow test installs exactly those into a fresh
virtual environment and runs the core tests there. It downloads
(~2.5 GB, minutes) and so runs only when asked:

    KERAS_EVOPOSE_TEST_LOWER_BOUNDS=1 .venv/bin/python -m pytest -n 0 \\
        tests/test_lower_bounds.py

The fast test keeps the constraints file and `setup.py` saying the same.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints-lower.txt"
# Layers, models, genotype, data pipeline, LiteRT and QAT export, COCO
# evaluation, the keras-tuner search (with its private-API resume) and a
# CLI train/evaluate/predict run: ~7 min with -n 0 on 2 cores.
CORE_TESTS = [
    "keras_evopose/layers",
    "keras_evopose/models",
    "keras_evopose/data/coco_keypoints_test.py",
    "keras_evopose/data/heatmaps_test.py",
    "keras_evopose/data/tfrecords_test.py",
    "keras_evopose/export/litert_test.py",
    "keras_evopose/export/qat_test.py",
    "keras_evopose/metrics/coco_evaluation_test.py",
    "keras_evopose/search/evolution_oracle_test.py",
    "keras_evopose/search/evolution_oracle_resume_test.py",
    "keras_evopose/search/evolution_tuner_test.py",
    "keras_evopose/search/resumable_oracle_test.py",
    "tests/test_cli_train_evaluate_predict.py",
]
# The extras whose pins the constraints also set (tf-keras, jax).
EXTRAS = "qat,jax"
TEST_TOOLS = ["pytest==9.*", "pytest-xdist==3.*", "pytest-timeout==2.*"]


def lower_bounds():
    """`{name: version}` from `constraints-lower.txt`."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[requirement.name] = Version(spec.version)
    return pins


def setup_requirements():
    """`{name: Requirement}` of every quoted requirement in `setup.py`
    (install_requires and extras)."""
    text = (ROOT / "setup.py").read_text()
    found = {}
    for quoted in re.findall(
        r'"([A-Za-z0-9_.\-]+\s*(?:[<>=!~]=|[<>])[^"]*)"', text
    ):
        requirement = Requirement(quoted)
        found[requirement.name] = requirement
    return found


def test_constraints_are_the_lower_bounds_of_setup_py():
    requirements = setup_requirements()
    pins = lower_bounds()
    assert {"keras", "tensorflow", "keras-tuner", "pycocotools"} <= set(pins)
    for name, version in pins.items():
        specifier = requirements[name].specifier
        lows = [Version(s.version) for s in specifier if s.operator == ">="]
        # `jax==0.10.2` is an exact pin: its constraint is the pin itself.
        exact = [Version(s.version) for s in specifier if s.operator == "=="]
        assert lows == [version] or exact == [version], (name, specifier)
        assert version in specifier


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("KERAS_EVOPOSE_TEST_LOWER_BOUNDS") != "1",
    reason="downloads the lower bounds (~2.5 GB): set "
    "KERAS_EVOPOSE_TEST_LOWER_BOUNDS=1 (see this file's docstring)",
)
def test_core_tests_pass_on_the_lower_bounds(tmp_path):
    venv = tmp_path / "lower"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = [python, "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS)]
    subprocess.run(
        [*install, "-e", f"{ROOT}[{EXTRAS}]", *TEST_TOOLS],
        check=True,
        cwd=ROOT,
    )
    installed = subprocess.run(
        [
            python,
            "-c",
            "import sys\nfrom importlib.metadata import version\n"
            "for name in sys.argv[1:]: print(name, version(name))",
            *lower_bounds(),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    got = dict(zip(installed[::2], map(Version, installed[1::2])))
    assert got == lower_bounds()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KERAS_HOME": str(ROOT / ".keras_home"),
    }
    env.pop("KERAS_EVOPOSE_TEST_LOWER_BOUNDS")
    result = subprocess.run(
        [python, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider"]
        + CORE_TESTS,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, f"core tests failed on {got}"
