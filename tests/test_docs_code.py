"""Every ```python block in README.md and docs/ runs as written.

Blocks are discovered, not listed: a new block is tested without touching
this file. Each runs alone in a fresh Python process (what a reader who
pastes it gets), in a temporary directory where `data/` is the
repository's bundled COCO subset, so blocks use
`data/coco_kpt_mini/...` paths and write their files next to them. A
block whose first line is `# KERAS_BACKEND=jax` runs on that backend
(skipped when JAX is not installed); one that imports keras_hub is
skipped without the `hub` extra.
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
BACKEND = re.compile(r"\A# KERAS_BACKEND=(\w+)")
TIMEOUT_SECONDS = 600
# Pages whose example is being rewritten by its owner: the block still
# runs, a failure is reported as xfail. Empty this when they run.
PENDING = {}


def python_blocks():
    """`(page:line, code)` of every ```python block, in page order."""
    blocks = []
    for page in PAGES:
        text = page.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            page_name = str(page.relative_to(ROOT))
            marks = []
            if page_name in PENDING:
                marks.append(
                    pytest.mark.xfail(reason=PENDING[page_name], strict=False)
                )
            blocks.append(
                pytest.param(
                    match.group(1), id=f"{page_name}:{line}", marks=marks
                )
            )
    return blocks


def test_blocks_are_found():
    # The README and the data page each hold at least one Python block.
    names = {param.id.split(":")[0] for param in python_blocks()}
    assert {"README.md", "docs/data.md"} <= names


@pytest.mark.parametrize("code", python_blocks())
def test_python_block_runs(code, tmp_path):
    env = dict(os.environ)
    env.setdefault("KERAS_HOME", str(ROOT / ".keras_home"))
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["MPLBACKEND"] = "Agg"
    if (
        "import keras_hub" in code
        and importlib.util.find_spec("keras_hub") is None
    ):
        pytest.skip('the block needs keras-hub: pip install -e ".[hub]"')
    backend = BACKEND.match(code)
    if backend:
        if importlib.util.find_spec(backend.group(1)) is None:
            pytest.skip(f"the block needs {backend.group(1)}")
        env["KERAS_BACKEND"] = backend.group(1)
    (tmp_path / "data").symlink_to(ROOT / "data")
    script = tmp_path / "block.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, (
        f"block failed (exit {result.returncode}):\n{code}\n"
        f"--- stderr (end) ---\n{result.stderr[-3000:]}"
    )
