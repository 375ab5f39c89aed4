"""How the hostile-input tests (test_hostile_*.py, test_typed_limits.py, test_study_files.py, ...) run a case: every
case ends with one ``Error:`` line, the right exit code, no traceback, within bounded time and memory.

Cases run in a few subprocesses, not one each: ``run_cases`` starts one Python that caps its own address space with
``RLIMIT_AS`` and then runs every case through the CLI's ``main()`` in turn, each with its stdout and stderr on
files. Why ``RLIMIT_AS`` at ``MEMORY_LIMIT``: importing torch, Pillow and numpy takes about 650 MB of address space
here (measured with VmPeak), so 1.5 GiB leaves under 900 MB for the work itself, while each bomb those tests make
would need 2 GB (a zip record), 7 GB (a resized image strip) or 16 GB (an 8192-pixel eval): a case that tried would
die with a ``MemoryError`` (exit 2 "not enough memory"), not finish with the limit's own message that each case
asserts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
        for name, text in case.get("files", {}).items():  # a file edited between two runs
            with open(name, "w", encoding="utf-8", errors="surrogateescape") as fh:  # "\\udcff": the byte 0xff
                fh.write(text)
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
    """Run ``cases`` (dicts with ``argv``, optional ``env`` and ``files`` to write first) in one memory-capped
    subprocess; each result gets ``code``, ``seconds``, ``stdout`` and ``stderr``."""
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


# A tiny CIFAR ResNet, fast to train on synthetic data (conftest's ``trained`` checkpoint, the resume tests).
TINY = dict(widths="8,16,32", stem_width=8, input_size=12)


def dead_pid() -> int:
    """The pid of a process that has ended (a killed run's lock or temporary file names one)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
