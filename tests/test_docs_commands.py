"""Every `keras-evopose` command line the README and docs/ show parses:
its subcommand and flags exist, its presets are presets, and the bundled
`data/` paths it names are there. The README's commands call
`.venv/bin/keras-evopose`, which the Quickstart installs (no activated
venv is assumed). The demo itself is run by hand (minutes); this keeps
its flags from drifting."""

import contextlib
import io
import pathlib
import re
import shlex

import pytest

from keras_evopose.cli import build_parser
from keras_evopose.models import presets

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=(\S*)$")
ENVIRONMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def command_lines():
    """`(page:line, words)` of each command line: continuation lines
    joined, `$ ` prompts, environment assignments and comments dropped,
    `$VAR` replaced by its assignment earlier in the block. Synopses
    (blocks with `[--`, lines with `[`, `(` or ` | `) are skipped."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for block in FENCE.finditer(text):
            if "[--" in block.group(1):
                continue  # a synopsis (optional flags in brackets)
            first_line = text.count("\n", 0, block.start()) + 2
            variables = {"$(mktemp -d)": "/tmp/demo"}
            lines, starts, pending = [], [], None
            for offset, raw in enumerate(block.group(1).splitlines()):
                if pending is None:
                    pending, start = "", offset
                if raw.endswith("\\"):
                    pending += raw[:-1] + " "
                    continue
                lines.append(pending + raw)
                starts.append(start)
                pending = None
            for offset, line in zip(starts, lines):
                line = line.strip().removeprefix("$ ")
                line = re.split(r"\s#", line)[0].strip()
                assignment = ASSIGNMENT.match(line)
                if assignment:
                    name, value = assignment.groups()
                    variables[name] = variables.get(value, value)
                    continue
                for name, value in variables.items():
                    if name.startswith("$("):
                        line = line.replace(name, value)
                    else:
                        line = re.sub(rf"\${name}\b", value, line)
                words = line.split()
                while words and ENVIRONMENT.match(words[0]):
                    words = words[1:]
                if not words or not words[0].endswith("keras-evopose"):
                    continue
                if any(mark in line for mark in ("[", "(", " | ", "...")):
                    continue
                words = shlex.split(" ".join(words))
                for index, word in enumerate(words):
                    if word in ("&&", "|", ">", ";", "&"):
                        words = words[:index]
                        break
                where = f"{page.relative_to(ROOT)}:{first_line + offset}"
                found.append(pytest.param(words, id=where))
    return found


COMMANDS = command_lines()


def test_commands_are_found():
    pages = {param.id.split(":")[0] for param in COMMANDS}
    assert {"README.md", "docs/deployment.md", "docs/search.md"} <= pages


@pytest.mark.parametrize("words", COMMANDS)
def test_command_parses(words, request):
    page = request.node.callspec.id.split(":")[0]
    if page == "README.md":
        # The Quickstart makes .venv and activates nothing.
        assert words[0] == ".venv/bin/keras-evopose", words
    argv = words[1:]
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser([command] if command else [])
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit:
            assert exit.code == 0, stderr.getvalue()
            return
    preset = getattr(args, "preset", None)
    assert preset is None or preset in presets.list_presets(), preset
    for word in argv:
        if word.startswith("data/"):
            assert (ROOT / word).exists(), word
