"""The CLI's output, byte for byte, against files recorded before the start-up work (issue 15).

Each case runs ``python -m resnet_cli ARGS`` in a fresh interpreter at 80 columns with colours off and compares
stdout, stderr and the exit code with ``tests/golden/<name>.txt``. A refactor that means to leave the output alone
(lazy imports, command registration) must keep these equal. A change that means to change output rewrites the
files with ``RESNET_CLI_UPDATE_GOLDEN=1 python -m pytest tests/test_cli_golden.py`` and shows the diff in its commit.

Help screens and click's own usage errors are typer's and click's text (their layout and metavars change between
versions): those files name the versions they were recorded with and are compared only under the same versions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from resnet_cli.cli.app import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"

# name -> arguments. The torch-free commands in every format, --help of every command, and a few one-line errors.
CASES = {
    "help": ["--help"],
    "archs": ["archs"],
    "archs_json": ["archs", "-f", "json"],
    "archs_csv": ["archs", "-f", "csv"],
    "archs_pattern": ["archs", "resnet1*"],
    "params_resnet50": ["params", "--arch", "resnet50"],
    "params_resnet50_json": ["params", "--arch", "resnet50", "-f", "json"],
    "params_resnet50_csv": ["params", "--arch", "resnet50", "-f", "csv"],
    "params_resnet110_layers": ["params", "--arch", "resnet110", "--depth", "3", "--stochastic-depth", "0.5"],
    "params_block": ["params", "--block", "bottleneck"],
    "params_block_json": ["params", "--block", "basic", "-f", "json"],
    "compare": ["compare", "resnet18", "resnet50", "resnet152"],
    "compare_json": ["compare", "resnet18", "resnet50", "resnet152", "-f", "json"],
    "compare_csv": ["compare", "resnet18", "resnet50", "resnet152", "-f", "csv"],
    "paths_54": ["paths", "--blocks", "54"],
    "paths_54_json": ["paths", "--blocks", "54", "-f", "json"],
    "paths_54_csv": ["paths", "--blocks", "54", "-f", "csv"],
    "paths_resnet110_survival": ["paths", "--arch", "resnet110", "--survival", "linear:0.5", "-r", "19:35"],
    "paths_list": ["paths", "-n", "4", "--list"],
    "error_unknown_arch": ["params", "--arch", "resnet51"],
    "error_bad_option": ["params", "--arch", "resnet50", "--depth", "9"],
    "error_unknown_command": ["parms"],
    "error_no_such_option": ["archs", "--frobnicate"],
    **{f"help_{name.replace('-', '_')}": [name, "--help"]
       for name in COMMANDS},
}


# Cases whose text typer or click write (help screens, click's usage errors), not resnet-cli.
FROM_TYPER = {name for name in CASES if name.startswith("help")} | {"error_bad_option", "error_no_such_option"}
TYPER_CLICK = f"[typer {version('typer')}, click {version('click')}]\n"


def run_cli(args: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "TERM", "COLUMNS", "LINES")}
    env.update(COLUMNS="80", TERM="dumb")
    proc = subprocess.run([sys.executable, "-m", "resnet_cli", *args], cwd=ROOT, env=env, check=False,
                          capture_output=True, text=True, timeout=120)
    return f"$ resnet-cli {' '.join(args)}\n[exit {proc.returncode}]\n[stdout]\n{proc.stdout}[stderr]\n{proc.stderr}"


@pytest.mark.parametrize("name", list(CASES))
def test_output_is_unchanged(name):
    got = run_cli(CASES[name])
    if name in FROM_TYPER:
        got = TYPER_CLICK + got
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("RESNET_CLI_UPDATE_GOLDEN"):
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"{path} missing: record it with RESNET_CLI_UPDATE_GOLDEN=1"
    recorded_with = path.read_text(encoding="utf-8").partition("\n")[0] + "\n"
    if name in FROM_TYPER and recorded_with != TYPER_CLICK:
        pytest.skip(f"typer's and click's text, recorded with {recorded_with.strip()}; installed: "
                    f"{TYPER_CLICK.strip()}")
    assert got == path.read_text(encoding="utf-8"), (
        f"output of 'resnet-cli {' '.join(CASES[name])}' changed; if that is meant, rerun with "
        f"RESNET_CLI_UPDATE_GOLDEN=1 and commit the diff of {path.name}")
