"""The torch-free commands start light (issue 15): none imports torch, pydantic, matplotlib or numpy, and JSON and
CSV are written without rich. Each command runs in a fresh interpreter, which then lists the modules it loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("torch", "pydantic", "matplotlib", "numpy", "onnx", "onnxscript", "onnxruntime")

# The commands issue 15 times; run as ``resnet-cli ARGS``.
FAST_COMMANDS = [
    ["--help"],
    ["archs"],
    ["params", "--arch", "resnet50"],
    ["params", "--arch", "resnet50", "-f", "json"],
    ["params", "--arch", "resnet50", "--input-size", "224x320", "--depth", "2", "-b", "8", "--dtype", "float16"],
    ["compare", "resnet18", "resnet50", "resnet152"],
    ["paths", "--blocks", "54"],
    ["export", "--help"],
]
MACHINE_READABLE = [
    ["archs", "-f", "json"],
    ["params", "--arch", "resnet50", "-f", "json"],
    ["params", "--arch", "resnet50", "-f", "csv"],
    ["compare", "resnet18", "resnet50", "-f", "csv"],
    ["paths", "--blocks", "54", "-f", "json"],
    ["paths", "--blocks", "54", "-f", "csv"],
]

_PROBE = """
import json, sys
from resnet_cli.cli import main
sys.argv = ['resnet-cli', *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
roots = sorted({name.partition('.')[0] for name in sys.modules})
from resnet_cli.cli.app import COMMANDS
commands = sorted({f'resnet_cli.cli.{module}' for module in COMMANDS.values()} & set(sys.modules))
print(json.dumps({'exit': code, 'modules': roots, 'command_modules': commands}), file=sys.stderr)
"""


def probe(args: list[str]) -> dict:
    """What ``resnet-cli ARGS`` had imported when it finished (it must succeed)."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=ROOT, check=False, capture_output=True,
                          text=True, timeout=120)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["exit"] in (0, None), proc.stderr
    assert proc.stdout, "the command printed nothing"
    return report


def loaded_modules(args: list[str]) -> set[str]:
    """The top-level packages ``resnet-cli ARGS`` had imported."""
    return set(probe(args)["modules"])


@pytest.mark.parametrize("args", FAST_COMMANDS, ids=" ".join)
def test_fast_command_imports_nothing_heavy(args):
    heavy = sorted(set(HEAVY) & loaded_modules(args))
    assert not heavy, f"'resnet-cli {' '.join(args)}' imported {', '.join(heavy)}"


@pytest.mark.parametrize("args", MACHINE_READABLE, ids=" ".join)
def test_json_and_csv_are_written_without_rich(args):
    loaded = loaded_modules(args)
    assert "rich" not in loaded and not set(HEAVY) & loaded


def test_the_probe_sees_heavy_imports():
    # The check above can fail: a command that does import torch is seen doing so.
    assert "torch" in loaded_modules(["params", "--arch", "resnet18", "--engine", "fvcore", "-f", "json"])


@pytest.mark.parametrize(("args", "module"), [(["paths", "--blocks", "4"], "paths"), (["archs"], "params"),
                                              (["train", "--help"], "train"), (["export", "--help"], "export")])
def test_only_the_invoked_commands_module_is_imported(args, module):
    assert probe(args)["command_modules"] == [f"resnet_cli.cli.{module}"]
