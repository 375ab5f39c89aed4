"""How long `resnet-cli params` takes from a cold shell: the analytic engine against build + fvcore.

Each run is a fresh interpreter (what a user pays at the prompt: Python start-up, imports, counting, printing).
The goal (issue 2): `params --arch resnet1202` under 1.5 s on a 2-core machine and at least 5x faster than
building the module and running fvcore over it. Both are measured side by side in this one run; we report
medians because shared machines are noisy.

    python benchmarks/bench_params.py [--arch resnet1202] [--repeats 5] [--out benchmarks/results/params.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command(arch: str, engine: str) -> list[str]:
    # The installed console script when there is one (what users run), else the module.
    exe = shutil.which("resnet-cli")
    base = [exe] if exe else [sys.executable, "-m", "resnet_cli"]
    return [*base, "params", "--arch", arch, "--engine", engine, "--format", "json"]


def time_cold(cmd: list[str], repeats: int) -> tuple[list[float], dict]:
    times, last = [], {}
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, check=False, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
        last = json.loads(proc.stdout)
    return times, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet1202")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "params.json"))
    args = parser.parse_args()

    rows = []
    results = {}
    for engine in ("analytic", "fvcore"):
        times, doc = time_cold(command(args.arch, engine), args.repeats)
        results[engine] = {"times_s": times, "median_s": statistics.median(times), "params": doc["params"],
                           "macs": doc["macs"], "fvcore_conv_linear": doc.get("fvcore", {}).get("conv_linear")}
        rows.append((engine, statistics.median(times), min(times), max(times)))
    ratio = results["fvcore"]["median_s"] / results["analytic"]["median_s"]
    agree = results["fvcore"]["fvcore_conv_linear"] == results["analytic"]["macs"]

    print(f"resnet-cli params --arch {args.arch}, cold shell, {args.repeats} runs each "
          f"({os.cpu_count()} CPUs, Python {platform.python_version()})")
    print(f"{'engine':<26}{'median s':>10}{'min s':>9}{'max s':>9}")
    for engine, med, lo, hi in rows:
        label = "analytic (no torch)" if engine == "analytic" else "build + fvcore"
        print(f"{label:<26}{med:>10.3f}{lo:>9.3f}{hi:>9.3f}")
    print(f"speed-up (median fvcore / median analytic): {ratio:.1f}x   goal: >= 5x, analytic < 1.5 s: "
          f"{'met' if ratio >= 5 and results['analytic']['median_s'] < 1.5 else 'NOT met'}")
    print(f"analytic MACs == fvcore conv+linear: {agree} ({results['analytic']['macs']:,})")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": "params", "arch": args.arch, "repeats": args.repeats, "cpus": os.cpu_count(),
               "python": platform.python_version(), "results": results, "speedup": ratio, "macs_agree": agree}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
