"""stdout that fails: a full disk under stdout is one line; a reader that goes away ends the command quietly."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from hostile_runner import ROOT


def test_a_full_disk_under_stdout_is_one_line():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "resnet_cli", "params", "--arch", "resnet20", "--format",
                               "json"], check=False, cwd=ROOT, env=env, stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["Error: cannot write the results to standard output: No space left on "
                                        "device"]


@pytest.mark.parametrize("argv", [["paths", "--blocks", "64", "--list", "--force"],
                                  ["paths", "--blocks", "64", "--list", "--force", "--limit", str(10 ** 15)],
                                  ["params", "--arch", "resnet152", "--depth", "3"]])
def test_a_closed_pipe_ends_quietly(argv):
    """`... | head -3`: the reader goes away after three lines; the CLI stops at once, silently, exit 0 (also
    past islice's 2^63-1 with 2^64 paths, and with the largest --limit allowed, which no one could wait for)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "resnet_cli", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()
    code = proc.wait(timeout=60)
    stderr = proc.stderr.read().decode()
    assert all(lines), lines
    assert code == 0 and stderr == "", (code, stderr)
    assert time.monotonic() - t0 < 60
