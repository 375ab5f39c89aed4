"""How fast ``resnet-cli paths`` is: the exact path-length distribution for n = 54 ... 20,000 blocks.

For each n, the median of ``--repeats`` runs of:

* ``row``: the exact row C(n, 0..n) built iteratively (one multiply and one exact divide per entry), against
  ``math.comb`` called once per k (the obvious way) — the ratio is how much the iteration saves. Above
  1,000 blocks ``math.comb`` per k takes minutes (94 s at 20,000), so it is timed on 101 evenly spaced k and
  scaled to n + 1 (marked ``estimated``);
* ``report``: ``path_lengths(n)``: row, shares, the 95% central range, the listed window;
* ``stochastic``: ``path_lengths(n, survival=linear:0.5)``: adds the two Poisson-binomial distributions;
* ``cli json``: the whole command in a fresh interpreter, ``python -m resnet_cli paths --blocks N -f json``,
  interpreter start-up and imports included; it also checks that torch was never imported.

Prints a table and writes JSON (``--out``, default benchmarks/results/paths.json).

    python benchmarks/bench_paths.py            # n = 54, 1000, 10000, 20000
    python benchmarks/bench_paths.py --repeats 3 --sizes 54 1000
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_cli.analysis import paths as P  # noqa: E402
from resnet_cli.fileio import atomic_write_text  # noqa: E402

NO_TORCH_CHECK = (
    "import sys, io, contextlib\n"
    "from resnet_cli.cli import app\n"
    "sys.set_int_max_str_digits(0) if hasattr(sys, 'set_int_max_str_digits') else None\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    app(['paths', '--blocks', sys.argv[1], '-f', 'json'], standalone_mode=False)\n"
    "print('torch' in sys.modules)\n"
)


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cli_seconds(n: int, repeats: int) -> tuple[float, bool]:
    times, torch_seen = [], False
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", NO_TORCH_CHECK, str(n)], cwd=ROOT, capture_output=True,
                              text=True, check=True)
        times.append(time.perf_counter() - start)
        torch_seen |= proc.stdout.strip().endswith("True")
    return statistics.median(times), torch_seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[54, 1000, 10_000, 20_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "paths.json")
    args = parser.parse_args()

    rows = []
    for n in args.sizes:
        row_s = median_seconds(lambda n=n: P.binomial_row(n), args.repeats)
        estimated = n > 1000
        ks = range(0, n + 1, max(1, n // 100)) if estimated else range(n + 1)
        comb_s = median_seconds(lambda n=n, ks=ks: [math.comb(n, k) for k in ks], max(1, min(args.repeats, 3)))
        comb_s *= (n + 1) / len(ks)
        report_s = median_seconds(lambda n=n: P.path_lengths(n), args.repeats)
        survival = P.linear_survival(n, 0.5)
        sd_s = median_seconds(lambda n=n, survival=survival: P.path_lengths(n, survival=survival), args.repeats)
        cli_s, torch_seen = cli_seconds(n, max(1, min(args.repeats, 3)))
        report = P.path_lengths(n)
        rows.append({
            "blocks": n, "digits_of_largest_count": len(str(report.counts[n // 2])) if n < 14_000
            else int(math.log10(report.counts[n // 2])) + 1,
            "row_s": row_s, "math_comb_per_k_s": comb_s, "math_comb_estimated": estimated,
            "comb_over_row": comb_s / row_s,
            "report_s": report_s, "stochastic_s": sd_s, "cli_json_s": cli_s, "cli_imported_torch": torch_seen,
            "central_range_95": [report.central.first, report.central.last],
        })

    header = ("blocks", "digits", "row", "comb per k", "× saved", "report", "stochastic", "cli json", "torch?")
    print(f"median of {args.repeats} runs (cli: of {max(1, min(args.repeats, 3))}), seconds; "
          f"Python {platform.python_version()} on {platform.machine()}")
    print("  ".join(f"{h:>10}" for h in header))
    for r in rows:
        cells = (f"{r['blocks']:,}", str(r["digits_of_largest_count"]), f"{r['row_s']:.4f}",
                 f"{r['math_comb_per_k_s']:.4f}{'*' if r['math_comb_estimated'] else ''}",
                 f"{r['comb_over_row']:.1f}", f"{r['report_s']:.4f}",
                 f"{r['stochastic_s']:.4f}", f"{r['cli_json_s']:.3f}", "yes" if r["cli_imported_torch"] else "no")
        print("  ".join(f"{c:>10}" for c in cells))
    print("* estimated from 101 evenly spaced k. cli json: a fresh interpreter, start-up and printing included.")
    goal = [r for r in rows if r["blocks"] == 10_000]
    if goal:
        met = goal[0]["report_s"] < 1.0 and not any(r["cli_imported_torch"] for r in rows)
        print(f"goal (issue 4): exact distribution for n = 10,000 well under 1 s, no torch: "
              f"{'met' if met else 'NOT met'} ({goal[0]['report_s']:.3f} s)")
    result = {"benchmark": "paths", "unit": "seconds (median)", "repeats": args.repeats,
              "python": platform.python_version(), "machine": platform.machine(), "rows": rows}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
