"""Figures the docs quote from a command are what the command prints."""

import pathlib
import re

import pytest

from keras_evopose.cli import info

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _table_rows(page):
    """`{preset: cells}` of the rows of the page's first table whose
    header has a FLOPs column."""
    rows = {}
    names = set(info.preset_table())
    in_table = False
    for line in (ROOT / page).read_text().splitlines():
        if not line.startswith("|"):
            if rows:
                break
            in_table = False
            continue
        cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        in_table = in_table or any("FLOPs" in cell for cell in cells)
        if in_table and cells[0] in names:
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("page", ["README.md", "docs/presets.md"])
def test_preset_tables_match_keras_evopose_info(page):
    rows = _table_rows(page)
    assert rows, f"{page} has no preset table"
    # The strings `keras-evopose info` prints.
    table = info.format_table([info.preset_info(name) for name in rows])
    for name, cells in rows.items():
        described = info.preset_info(name)
        line = next(x for x in table.splitlines() if x.startswith(name + " "))
        height, width = described["input_size"]
        for text in (
            f"{height}x{width}",
            f"{described['params']:,}",
            info.format_flops(described["flops"]),
        ):
            assert text in cells and text in line, (page, name, text, cells)


@pytest.mark.slow  # two check-data runs at 256x192: ~20 s
def test_check_data_output_in_data_commands_md(capsys, monkeypatch):
    # The page's first check-data block, run as written: every line it
    # shows is what the command prints (the progress bar aside).
    import json
    import shlex

    from keras_evopose.cli import main

    text = (ROOT / "docs" / "data_commands.md").read_text()
    block = text.split("On the bundled data:\n\n```\n", 1)[1].split("```")[0]
    command, *shown = block.replace("\\\n", " ").splitlines()
    argv = shlex.split(command.removeprefix("$ keras-evopose "))
    monkeypatch.chdir(ROOT)
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in shown if "━" not in line] == printed
    # "With `--out-of-crop ignore` ... the same run gives 0.9772 / 0.9956".
    quoted = re.search(r"gives (\d\.\d{4}) / (\d\.\d{4})", text).groups()
    assert main([*argv, "--out-of-crop", "ignore", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ap = report["ceiling_ap"]
    assert quoted == (
        f"{ap['ground_truth_boxes']['ap']:.4f}",
        f"{ap['detection_boxes']['ap']:.4f}",
    )
