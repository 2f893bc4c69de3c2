"""Packaging for keras-evopose.

Version ranges: the README's "Install" table; the tested lower bounds:
constraints-lower.txt.
"""

import pathlib

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).parent
version = {}
exec((HERE / "keras_evopose" / "version.py").read_text(), version)

setup(
    name="keras-evopose",
    version=version["__version__"],
    description=(
        "Keras 3 layers, models and neuroevolution search for EvoPose2D "
        "2D human pose estimation."
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(exclude=("tests", "tests.*")),
    include_package_data=True,
    # Ranges: lower bound = the oldest that passed the core tests
    # (constraints-lower.txt, tests/test_lower_bounds.py), upper bound =
    # the next minor not tried (README, Install).
    install_requires=[
        "keras>=3.13,<3.16",
        "keras-tuner>=1.4.6,<1.5",
        # keras-tuner imports six without declaring it.
        "six>=1.16",
        "numpy",
        "pycocotools>=2.0.8,<2.1",
        "tensorflow>=2.19,<2.22",
        "ai-edge-litert>=1.4,<2.4",
        "pyyaml",
        "matplotlib",
        "tqdm",
    ],
    extras_require={
        "qat": [
            "tf-keras>=2.19,<2.22",
            "tensorflow-model-optimization==0.8.1",
        ],
        "jax": ["jax==0.10.2", "jaxlib==0.10.2"],
        # `keras-evopose export --format onnx`: Keras' ONNX export runs
        # tf2onnx; ONNXModel runs ONNX Runtime.
        "onnx": ["onnx==1.23.*", "onnxruntime==1.32.*", "tf2onnx==1.17.*"],
        # keras_evopose.hub: keras-hub presets and the pose Task. 0.32 is
        # the first keras-hub for Keras 3.15; it pulls tensorflow-text,
        # whose 2.21 wheels pin the TensorFlow we pin.
        "hub": ["keras-hub==0.32.*"],
        # benchmarks/search_quality.py's NSGA-II baseline; the library
        # never imports it.
        "bench": ["optuna==5.*"],
        "dev": [
            # The test of benchmarks/search_quality.py --quick runs optuna.
            "optuna==5.*",
            "pytest==9.*",
            "pytest-timeout==2.*",
            "pytest-xdist==3.*",
            "ruff==0.17.*",
            "mkdocs==1.6.*",
            "mkdocstrings==1.0.*",
            "mkdocstrings-python==2.0.*",
        ],
    },
    entry_points={
        "console_scripts": ["keras-evopose=keras_evopose.cli:main"],
    },
)
