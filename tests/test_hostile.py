"""Hostile files and hostile sizes: every case ends with one ``Error:`` line, the right exit code, no traceback,
within bounded time and memory, and loses nothing already finished.

The corpus is made here (nothing downloaded). Cases run in a few subprocesses, not one each: ``run_cases`` starts
one Python that caps its own address space with ``RLIMIT_AS`` and then runs every case through the CLI's
``main()`` in turn, each with its stdout and stderr on files. Why ``RLIMIT_AS`` at ``MEMORY_LIMIT``: importing
torch, Pillow and numpy takes about 650 MB of address space here (measured with VmPeak), so 1.5 GiB leaves under
900 MB for the work itself, while each bomb below would need 2 GB (a zip record), 7 GB (a resized image strip) or
16 GB (an 8192-pixel eval): a case that tried would die with a ``MemoryError`` (exit 2 "not enough memory"), not
finish with the limit's own message that each case asserts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 1536 * 2**20
CASE_SECONDS = 20  # each case, on a loaded 2-core machine; the refusals themselves take well under a second

DRIVER = textwrap.dedent("""
    import json, os, resource, sys, time
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cases = json.loads(open(sys.argv[2]).read())
    from resnet_cli.cli import main
    results = []
    saved = os.dup(1), os.dup(2)
    for i, case in enumerate(cases):
        out = os.open(case["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        err = os.open(case["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(out, 1); os.dup2(err, 2)
        sys.argv = ["resnet-cli", *case["argv"]]
        os.environ.update(case.get("env", {}))
        t0 = time.perf_counter()
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # a failure that escaped main(): what the test must catch
            import traceback
            traceback.print_exc()
            code = "escaped"
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        os.close(out); os.close(err)
        results.append({"code": code, "seconds": time.perf_counter() - t0})
    print(json.dumps(results))
""")


def run_cases(tmp_path: Path, cases: list[dict]) -> list[dict]:
    """Run ``cases`` (dicts with ``argv``, optional ``env``) in one memory-capped subprocess; each result gets
    ``code``, ``seconds``, ``stdout`` and ``stderr``."""
    for i, case in enumerate(cases):
        case["out"], case["err"] = str(tmp_path / f"case{i}.out"), str(tmp_path / f"case{i}.err")
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(MEMORY_LIMIT), str(spec)], check=False,
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=CASE_SECONDS * len(cases) + 60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for case, result in zip(cases, results):
        result["stdout"] = Path(case["out"]).read_text(errors="replace")
        result["stderr"] = Path(case["err"]).read_text(errors="replace")
        result["argv"] = case["argv"]
    return results


def assert_refused(result: dict, *words: str, code: int = 2) -> None:
    """Exit ``code``, exactly one stderr line, starting 'Error: ' and naming ``words``, no traceback, in time."""
    where = f"{result['argv']}: {result['stderr'][-2000:]!r}"
    assert result["code"] == code, where
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), where
    assert "Traceback" not in result["stderr"] and "\x1b" not in result["stderr"], where
    for word in words:
        assert word in lines[0], where
    assert result["seconds"] < CASE_SECONDS, where


# --------------------------------------------------------------------------- typed sizes (torch-free commands)
def test_typed_sizes_are_refused_by_the_limit_they_pass(tmp_path):
    cases = [
        {"argv": ["params", "--arch", "densenet1000000000_12"]},
        {"argv": ["params", "--arch", "resnet20", "--set", "layers=1000000000,1,1"]},
        {"argv": ["compare", "resnet20", "cifar_resnet6000000002"]},
        {"argv": ["params", "--arch", "resnet18", "--widths", "100000,1,1,1"]},
        {"argv": ["params", "--arch", "resnet20", "--set", "name=" + "x" * 300]},
        {"argv": ["params", "--arch", "resnet20", "--set", "name=a\x1b]0;pwned\x07b\x1b[2J"]},
        {"argv": ["paths", "--arch", "resnet20", "--set", f"layers={10**6},1,1"]},
        {"argv": ["params", "--arch", "resnet18", "--input-size", "100000"]},
    ]
    results = run_cases(tmp_path, cases)
    for result in results[:3]:
        assert_refused(result, "at most 20,000 blocks")
    assert_refused(results[3], "at most 16,384")
    assert_refused(results[4], "200 printable characters")
    assert_refused(results[5], "printable", "\\x1b")  # shown escaped, never sent
    assert_refused(results[6], "20,000 blocks")
    assert_refused(results[7], "8192 pixels")


def test_markup_in_a_name_is_printed_as_typed(tmp_path):
    [result] = run_cases(tmp_path, [{"argv": ["params", "--arch", "resnet20", "--set", "name=[/bold]x[red]"]}])
    assert result["code"] == 0, result["stderr"]
    assert "[/bold]x[red]" in result["stdout"]


# --------------------------------------------------------------------------- stdout that fails
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
                                  ["params", "--arch", "resnet152", "--depth", "3"]])
def test_a_closed_pipe_ends_quietly(argv):
    """`... | head -3`: the reader goes away after three lines; the CLI stops at once, silently, exit 0 (also
    past islice's 2^63-1 with 2^64 paths)."""
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
