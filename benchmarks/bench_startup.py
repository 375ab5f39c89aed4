"""How fast the torch-free commands start: each one cold, in a fresh interpreter, against ``python -c pass``.

Every round runs, one after another, ``python -c pass``, ``python -c "import torch"`` (what any torch-based
counter pays before it starts) and each command below with its output thrown away; a shared machine's load
drifts, so the rounds interleave the commands and the table shows medians over rounds. ``× pass`` is the
command's median over the median of ``python -c pass`` (issue 15 asks for at most 3×). The interpreter is
``sys.executable`` itself (a pyenv shim would add a shell script to every run), with this checkout first on
``PYTHONPATH``.

Then ``python -X importtime`` of the slowest command, a few times: the top-level imports by cumulative time
(medians), which is where a start-up goes before any work is done.

Prints the tables and writes JSON (``--out``, default benchmarks/results/startup.json).

    python benchmarks/bench_startup.py                # 21 rounds
    python benchmarks/bench_startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_cli.fileio import atomic_write_text  # noqa: E402

BASELINES = {
    "python -c pass": ["-c", "pass"],
    'python -c "import torch"': ["-c", "import torch"],
}
COMMANDS = {
    "--help": ["--help"],
    "archs": ["archs"],
    "params --arch resnet50": ["params", "--arch", "resnet50"],
    "params --arch resnet50 -f json": ["params", "--arch", "resnet50", "-f", "json"],
    "compare resnet18 resnet50 resnet152": ["compare", "resnet18", "resnet50", "resnet152"],
    "paths --blocks 54": ["paths", "--blocks", "54"],
}
GOAL = 3.0  # issue 15: within 3x of python -c pass


def environment() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.update(COLUMNS="80")
    return env


def seconds(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - start


def time_rounds(runs: dict[str, list[str]], repeats: int, env: dict[str, str]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for argv in runs.values():  # one warm-up each: the file cache, not the interpreter, is what is warmed
        seconds(argv, env)
    for _ in range(repeats):
        for name, argv in runs.items():
            times[name].append(seconds(argv, env))
    return times


def import_breakdown(argv: list[str], repeats: int, env: dict[str, str], top: int) -> list[dict]:
    """Top-level imports of ``python -X importtime ARGV`` by cumulative microseconds, medians over ``repeats``."""
    cumulative: dict[str, list[int]] = {}
    for _ in range(repeats):
        proc = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=ROOT, env=env, check=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            _self, cum, name = line.removeprefix("import time:").split("|")
            if cum.strip().isdigit() and not name.startswith("  "):  # depth 0: imported by the command itself
                cumulative.setdefault(name.strip(), []).append(int(cum))
    rows = [{"module": name, "cumulative_ms": statistics.median(us) / 1000} for name, us in cumulative.items()]
    rows.sort(key=lambda r: -r["cumulative_ms"])
    return rows[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21, help="Rounds (each runs every command once).")
    parser.add_argument("--importtime-repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=15, help="Rows of the import-time breakdown.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "startup.json")
    args = parser.parse_args()

    env = environment()
    runs = {**BASELINES, **{f"resnet-cli {name}": ["-m", "resnet_cli", *argv] for name, argv in COMMANDS.items()}}
    load_before = os.getloadavg()
    times = time_rounds(runs, args.repeats, env)
    load_after = os.getloadavg()
    base = statistics.median(times["python -c pass"])
    rows = [{"command": name, "median_s": statistics.median(ts), "min_s": min(ts),
             "times_pass": statistics.median(ts) / base} for name, ts in times.items()]

    width = max(len(r["command"]) for r in rows)
    print(f"cold start, median of {args.repeats} interleaved rounds; Python {platform.python_version()} on "
          f"{platform.machine()}, {os.cpu_count()} cores, load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print(f"{'command':<{width}}  {'median ms':>9}  {'min ms':>7}  {'× pass':>6}")
    for r in rows:
        print(f"{r['command']:<{width}}  {1000 * r['median_s']:>9.1f}  {1000 * r['min_s']:>7.1f}  "
              f"{r['times_pass']:>6.2f}")
    cli_rows = [r for r in rows if r["command"].startswith("resnet-cli")]
    slowest = max(cli_rows, key=lambda r: r["median_s"])
    met = all(r["times_pass"] <= GOAL for r in cli_rows)
    print(f"goal (issue 15): every command within {GOAL:g}x of python -c pass: {'met' if met else 'NOT met'} "
          f"(slowest: {slowest['command']}, {slowest['times_pass']:.2f}x)")

    name = slowest["command"].removeprefix("resnet-cli ")
    breakdown = import_breakdown(["-m", "resnet_cli", *COMMANDS[name]], args.importtime_repeats, env, args.top)
    print(f"\nimports of the slowest, 'resnet-cli {name}' (python -X importtime, top level, cumulative, median "
          f"of {args.importtime_repeats}):")
    mod_width = max(len(r["module"]) for r in breakdown)
    for r in breakdown:
        print(f"  {r['module']:<{mod_width}}  {r['cumulative_ms']:>7.1f} ms")

    result = {"benchmark": "startup", "unit": "seconds (median of interleaved rounds)", "repeats": args.repeats,
              "python": platform.python_version(), "machine": platform.machine(), "cores": os.cpu_count(),
              "load_average_before_after": [load_before[0], load_after[0]], "goal_times_pass": GOAL,
              "goal_met": met, "rows": rows, "slowest": slowest["command"], "slowest_imports": breakdown}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
