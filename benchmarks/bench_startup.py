"""How fast the torch-free commands start: each one cold, in a fresh interpreter, against ``python -c pass``.

Every round runs, one after another, ``python -c pass``, ``python -c "import torch"`` (what any torch-based
counter pays before it starts) and each command below with its output thrown away; a shared machine's load
drifts, so the rounds interleave the commands and the table shows medians over rounds. ``× pass`` is the
command's median over the median of ``python -c pass`` (issue 15 asks for at most 3×). The interpreter is
``sys.executable`` itself (a pyenv shim would add a shell script to every run), with this checkout first on
``PYTHONPATH``.

Bytecode: an installed package runs from compiled bytecode (pip compiles it when it installs). With
``PYTHONDONTWRITEBYTECODE=1`` in the caller's environment every run would compile this checkout's modules from
source again (≈ 0.5x ``python -c pass`` more here), so the runs get a bytecode cache of their own, a temporary
``PYTHONPYCACHEPREFIX`` that the warm-up run fills; ``--no-bytecode`` measures the compile-every-time start instead.

Then ``python -X importtime`` of the slowest command, a few times: the top-level imports by cumulative time, each
with its largest direct imports (medians): where a start-up goes before any work is done.

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
import tempfile
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


def environment(bytecode_cache: str | None) -> dict[str, str]:
    """The runs' environment: this checkout first on the path, 80 columns, and ``bytecode_cache`` as the folder of
    compiled modules (None: no bytecode written, every module compiled at every start)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.update(COLUMNS="80")
    if bytecode_cache is None:
        env.update(PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(PYTHONPYCACHEPREFIX=bytecode_cache)
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


def import_tree(stderr: str) -> list[dict]:
    """``-X importtime`` lines as a tree: each import with its cumulative microseconds and the imports it made
    (Python prints an import's children before it, indented two spaces deeper)."""
    pending: dict[int, list[dict]] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _self, cum, name = line.removeprefix("import time:").split("|")
        if not cum.strip().isdigit():
            continue  # the header line
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        node = {"module": name.strip(), "us": int(cum), "children": pending.pop(depth + 1, [])}
        pending.setdefault(depth, []).append(node)
    return pending.get(0, [])


def import_breakdown(argv: list[str], repeats: int, env: dict[str, str], top: int) -> list[dict]:
    """The top-level imports of ``python -X importtime ARGV`` by cumulative ms, each with its largest direct
    imports, medians over ``repeats`` runs."""
    times: dict[tuple[str, ...], list[int]] = {}

    def record(node: dict, path: tuple[str, ...]) -> None:
        path = (*path, node["module"])
        times.setdefault(path, []).append(node["us"])
        for child in node["children"]:
            record(child, path)

    for _ in range(repeats):
        proc = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=ROOT, env=env, check=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for node in import_tree(proc.stderr):
            record(node, ())
    ms = {path: statistics.median(us) / 1000 for path, us in times.items()}

    def children(path: tuple[str, ...]) -> list[tuple[tuple[str, ...], float]]:
        return sorted(((p, v) for p, v in ms.items() if len(p) == len(path) + 1 and p[:-1] == path),
                      key=lambda kv: -kv[1])

    rows = []
    for path, total in sorted(((p, v) for p, v in ms.items() if len(p) == 1), key=lambda kv: -kv[1])[:top]:
        below = children(path)
        while len(below) >= 1 and below[0][1] >= 0.9 * total:  # one import is nearly all of it: look inside
            below = children(below[0][0])
        rows.append({"module": path[0], "cumulative_ms": total,
                     "largest_imports": [{"module": " > ".join(p[1:]), "cumulative_ms": v}
                                         for p, v in below[:4] if v >= 2.0]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21, help="Rounds (each runs every command once).")
    parser.add_argument("--importtime-repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=8, help="Rows of the import-time breakdown.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "startup.json")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="Compile every module at every start (PYTHONDONTWRITEBYTECODE=1), as a checkout run "
                             "that may not write bytecode does; default: from a bytecode cache, as installed.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_startup_pycache_") as cache:
        run(args, environment(None if args.no_bytecode else cache))


def run(args: argparse.Namespace, env: dict[str, str]) -> None:
    runs = {**BASELINES, **{f"resnet-cli {name}": ["-m", "resnet_cli", *argv] for name, argv in COMMANDS.items()}}
    load_before = os.getloadavg()
    times = time_rounds(runs, args.repeats, env)
    load_after = os.getloadavg()
    base = statistics.median(times["python -c pass"])
    rows = [{"command": name, "median_s": statistics.median(ts), "min_s": min(ts),
             "times_pass": statistics.median(ts) / base} for name, ts in times.items()]

    width = max(len(r["command"]) for r in rows)
    print(f"cold start, median of {args.repeats} interleaved rounds; Python {platform.python_version()} on "
          f"{platform.machine()}, {os.cpu_count()} cores, load average {load_before[0]:.1f} -> {load_after[0]:.1f}, "
          f"{'no bytecode (every module compiled at every start)' if args.no_bytecode else 'bytecode cached'}")
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
    for r in breakdown:
        print(f"  {r['module']:<34}  {r['cumulative_ms']:>7.1f} ms")
        for child in r["largest_imports"]:
            print(f"      {child['module']:<30}  {child['cumulative_ms']:>7.1f} ms")

    result = {"benchmark": "startup", "unit": "seconds (median of interleaved rounds)", "repeats": args.repeats,
              "python": platform.python_version(), "machine": platform.machine(), "cores": os.cpu_count(),
              "load_average_before_after": [load_before[0], load_after[0]], "bytecode": not args.no_bytecode,
              "goal_times_pass": GOAL,
              "goal_met": met, "rows": rows, "slowest": slowest["command"], "slowest_imports": breakdown}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
