"""Tables as a user reads them: at 80 columns no number or header is cut; sent to a file or a pipe, at their
natural width."""

import json
import os
import subprocess
import sys

import pytest
from cli_runner import run


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
