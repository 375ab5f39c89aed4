"""Tables as a user reads them: at 80 columns no number or header is cut; sent to a file or a pipe, at their
natural width."""

import io
import json
import os
import subprocess
import sys

import pytest
from cli_runner import run
from rich.console import Console


def test_compare_at_80_columns_shows_every_ratio_whole():
    names = ["resnet20", "keras_minimodel", "densenet_bc250_24", "wide_resnet101_2", "resnext101_64x4d"]
    doc = json.loads(run("compare", *names, "-f", "json").stdout)
    table = run("compare", *names, env={"COLUMNS": "80"}).stdout
    assert "…" not in table and "input px" in table
    assert max(len(line) for line in table.splitlines()) <= 80
    for a in doc["archs"]:
        row = next(line for line in table.splitlines() if line.split() and line.split()[0] == a["arch"])
        assert f"{a['params_ratio']:.2f}" in row and f"{a['macs_ratio']:.2f}" in row  # e.g. 470.44, not 470.…


@pytest.mark.parametrize("args", [["--arch", "densenet121", "--depth", "3"],
                                  ["--arch", "resnext50_32x4d", "--depth", "3", "--engine", "fvcore"]])


def test_params_table_at_80_columns_cuts_no_number(args):
    doc = json.loads(run("params", *args, "-f", "json").stdout)
    table = run("params", *args, env={"COLUMNS": "80"}).stdout
    assert "…" not in table and max(len(line) for line in table.splitlines()) <= 80
    rows = [row for stage in doc["stages"] for row in [stage, *stage.get("blocks", [])]]
    numbers = {f"{doc['params']:,}", f"{doc['macs']:,}"} | {f"{r['macs']:,}" for r in rows}
    if doc.get("fvcore"):
        numbers |= {f"{m['flops']:,}" for m in doc["fvcore"]["modules"]}
    missing = [n for n in numbers if n not in table]
    assert not missing, missing  # "1,040,449,…" before


def test_a_table_sent_to_a_file_is_laid_out_at_its_natural_width(tmp_path):
    """A file has no width: rich would assume 80 columns and cut the headers ("histogr…", "alive sha…")."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = tmp_path / "paths.txt"
    with out.open("w") as f:
        subprocess.run([sys.executable, "-m", "resnet_cli", "paths", "--blocks", "54", "--survival", "linear:0.5"],
                       stdout=f, stderr=subprocess.DEVNULL, env=env, check=True)
    text = out.read_text()
    header = next(line for line in text.splitlines() if "length" in line and "paths" in line)
    assert header.split() == ["length", "paths", "share", "histogram", "P(depth)", "alive", "share"]
    assert "…" not in text
    assert any(len(line.rstrip()) > 80 for line in text.splitlines())
    # an explicit COLUMNS is the width asked for, as on a terminal
    narrow = run("paths", "--blocks", "54", "--survival", "linear:0.5", env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in narrow.splitlines()) <= 80


def _print_to_text(table, width):
    from resnet_cli.render import print_table

    out = io.StringIO()
    print_table(Console(file=out, width=width, highlight=False, emoji=False), table)
    return out.getvalue()


def test_a_title_longer_than_its_table_is_kept_whole():
    """rich wraps a table's title at the table's width, mid-phrase ("augmentation" / "crop (pad 4)") even in a
    file; print_table prints such a title whole, wrapping it only at the console's width."""
    from rich.table import Table

    from resnet_cli.render import NATURAL_WIDTH

    def narrow(title):
        table = Table(title=title, title_justify="left")
        table.add_column("epoch")
        table.add_row("1")
        return table

    title = "cifar_resnet8 on synthetic  ·  device cpu  ·  augmentation crop (pad 4)"
    lines = _print_to_text(narrow(title), NATURAL_WIDTH).splitlines()
    assert lines[0] == title  # whole, and not padded to the file's 1,000 columns
    assert "epoch" in lines[2] and max(len(line) for line in lines) == len(title)
    # on a 40-column terminal it wraps at 40 columns, between words
    lines = _print_to_text(narrow(title), 40).splitlines()
    assert lines[0].rstrip() == "cifar_resnet8 on synthetic  ·  device" and lines[1].startswith("cpu  ·  ")
    assert all(len(line) <= 40 for line in lines)
    # a title that fits its table is rich's own, byte for byte (the goldens at 80 columns stay as recorded)
    out = io.StringIO()
    Console(file=out, width=80, highlight=False, emoji=False).print(narrow("short"))
    assert _print_to_text(narrow("short"), 80) == out.getvalue()


def test_train_piped_to_a_file_keeps_its_header_whole(tmp_path):
    result = run("train", "--arch", "cifar_resnet8", "--widths", "8,16,32", "--set", "stem_width=8",
                 "--input-size", "12", "--dataset", "synthetic", "--epochs", "1", "--limit", "32",
                 "--test-limit", "16", "-b", "32", "--device", "cpu", "-q", "-o", tmp_path / "x.pt",
                 env={"COLUMNS": None})
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    assert header.startswith("cifar_resnet8") and header.endswith("augmentation crop (pad 1)"), result.stdout


def test_draw_piped_to_a_file_names_a_long_output_path_on_one_line(tmp_path):
    out = tmp_path / ("a_rather_long_folder_name_for_the_figures_of_the_paper" * 2) / "figure_3.png"
    out.parent.mkdir()
    result = run("draw", "resnet20", "-o", out, "--dpi", "50", env={"COLUMNS": None})
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"drawn to {out}"


@pytest.mark.parametrize("args", [["--blocks", "54"], ["--arch", "resnet110", "--survival", "linear:0.5"],
                                  ["--arch", "resnet1202"]])
def test_paths_at_80_columns_keeps_every_header_whole(args):
    """The histogram takes what the counts leave, never less than its header ("histogr…", "alive sha…" before)."""
    table = run("paths", *args, env={"COLUMNS": "80"}).stdout
    header = next(line for line in table.splitlines() if "histogram" in line)
    assert "…" not in table and len(header) <= 80
    last = ["alive", "share"] if "--survival" in args else ["histogram"]
    assert header.split()[-len(last):] == last


def _last_column(table: str, before: str) -> list[str]:
    """The text of the (unnamed) last column row by row, each row's folded pieces joined; a row starts where the
    column ``before`` it, right-aligned under its header, holds a value."""
    lines = table.splitlines()
    head = next(line for line in lines if before in line)
    prev, start = head.index(before), head.index(before) + len(before)
    rows: list[str] = []
    for line in lines[lines.index(head) + 2:]:
        if not line.strip() or set(line.strip()) <= {"─"}:
            continue
        if line[prev:start].strip() or not rows:
            rows.append("")
        rows[-1] += line[start:].strip()
    return rows


@pytest.mark.parametrize("arch", ["resnet50", "densenet121"])
def test_params_at_80_columns_folds_the_last_column_without_losing_a_character(arch):
    """At --depth 3 the numbers leave too little room for the floors of the text columns: the table was one
    column wider than the terminal, which cropped it ('projecti' / 'n', '2048->10' / '0')."""
    doc = json.loads(run("params", "--arch", arch, "--depth", "3", "-f", "json").stdout)
    table = run("params", "--arch", arch, "--depth", "3", env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in table.splitlines()) <= 80
    shown = [cell.replace(" ", "") for cell in _last_column(table, "RF px")]
    wanted = [row["detail"].replace(" ", "") for row in doc["rows"]]
    assert shown[:len(wanted)] == wanted
