"""Veit et al. (2016) on a real trained network: akamaster's CIFAR-10 ResNet-20 (or -32, -44, -56, -110),
exactly as published, on real CIFAR-10 test images.

Runs the tool's own commands on the file as downloaded (no conversion), as a user would type them:

    resnet-cli eval WEIGHTS --dataset cifar10 --data-dir DIR
    resnet-cli lesion WEIGHTS --dataset cifar10 --data-dir DIR --samples 20 --out OUT/lesion
    resnet-cli gradients WEIGHTS --dataset cifar10 --data-dir DIR --split test --limit 128 --samples 8 \
        --out OUT/gradients

and writes OUT/summary.json and OUT/summary.md (baseline, each single deletion, multi-deletion and reorder means
by k, the gradient's effective range) next to the commands' own JSON and figures.

Needs (nothing is downloaded):
- WEIGHTS: a file of github.com/akamaster/pytorch_resnet_cifar10, pretrained_models/ (resnet20-12fca82f.th, ...);
- DIR: holding cifar-10-batches-py/test_batch (the official "python version" archive,
  https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz; evaluation needs only test_batch).

    python examples/veit_cifar10.py --weights resnet20-12fca82f.th --data-dir DIR [--out veit-cifar10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_cli.fileio import atomic_write_text  # noqa: E402

WHAT_TO_GET = """\
This example needs a trained network and the CIFAR-10 test images, and downloads nothing:
  --weights FILE   one of akamaster's trained CIFAR-10 ResNets, e.g. resnet20-12fca82f.th from
                   https://github.com/akamaster/pytorch_resnet_cifar10/tree/master/pretrained_models
  --data-dir DIR   a folder holding cifar-10-batches-py/test_batch, from the official archive
                   https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (unpack it into DIR)"""


def run(args: list[str], log: list[dict], threads: int) -> dict:
    """One resnet-cli command with --format json; its document (and the command line, for the record)."""
    # Small nets on a busy machine: OpenMP threads spin-waiting on each other made the gradients 10x slower.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "resnet_cli", *args, "--format", "json", "--quiet", "--device", "cpu"]
    shown = "resnet-cli " + " ".join(args)
    print(f"$ {shown}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                          env=env)
    if done.returncode != 0:
        print(done.stderr.strip(), file=sys.stderr)
        sys.exit(done.returncode)
    log.append({"command": shown, "seconds": round(time.perf_counter() - start, 1)})
    return json.loads(done.stdout)


def summary_markdown(ev: dict, lesion: dict, grads: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    lines = [f"{ev['arch']} on {ev['images']} {ev['dataset']} test images, normalised "
             f"{ev['normalization']['name']} ({ev['normalization']['source']}): error **{pct(ev['error'])}** "
             f"({ev['images'] - ev['correct']} wrong)", "",
             "| deleted block | downsampling | error | change |", "|---|---|---:|---:|"]
    base = lesion["baseline_error"]
    for r in lesion["single"]:
        lines.append(f"| {r['block']} | {'yes' if r['downsample'] else ''} | {pct(r['error'])} | "
                     f"{100 * (r['error'] - base):+.1f} pts |")
    for name, what in (("multi", "blocks deleted"), ("reorder", "pairs swapped")):
        if lesion[name]:
            lines += ["", f"| k ({what}) | samples | mean error | std | min | max |",
                      "|---:|---:|---:|---:|---:|---:|"]
            for r in lesion[name]:
                lines.append(f"| {r['k']} | {len(r['errors'])} | {pct(r['mean'])} | {100 * r['std']:.1f} | "
                             f"{pct(min(r['errors']))} | {pct(max(r['errors']))} |")
    eff = grads["effective_range"]
    lines += ["", f"Gradient: {pct(eff['share'])} of it comes from paths {eff['low']}-{eff['high']} blocks long "
                  f"(of {grads['blocks']}), which are {pct(eff['fraction_of_paths'])} of all 2^{grads['blocks']} "
                  f"paths."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=WHAT_TO_GET)
    parser.add_argument("--weights", type=Path, help="akamaster's trained network (resnet20-12fca82f.th, ...)")
    parser.add_argument("--data-dir", type=Path, help="folder with cifar-10-batches-py/test_batch")
    parser.add_argument("--out", type=Path, default=Path("veit-cifar10"), help="folder for results and figures")
    parser.add_argument("--samples", type=int, default=20, help="lesion multi/reorder: samples per k")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads per command (OMP_NUM_THREADS)")
    parser.add_argument("--gradient-images", type=int, default=128, help="images the gradients average over")
    args = parser.parse_args()
    if args.weights is None or args.data_dir is None:
        print(WHAT_TO_GET, file=sys.stderr)
        return 2
    missing = [str(p) for p in (args.weights, args.data_dir / "cifar-10-batches-py" / "test_batch")
               if not p.is_file()]
    if missing:
        print(f"missing: {', '.join(missing)}\n{WHAT_TO_GET}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    data = ["--dataset", "cifar10", "--data-dir", str(args.data_dir)]
    log: list[dict] = []
    ev = run(["eval", str(args.weights), *data], log, args.threads)
    # A study kept in OUT/lesion (an earlier or interrupted run) is continued, not refused.
    again = ["--resume"] if (args.out / "lesion" / "measurements.json").is_file() else []
    lesion = run(["lesion", str(args.weights), *data, "--samples", str(args.samples), "--out",
                  str(args.out / "lesion"), *again], log, args.threads)
    grads = run(["gradients", str(args.weights), *data, "--split", "test", "--limit", str(args.gradient_images),
                 "--samples", "8", "--out", str(args.out / "gradients")], log, args.threads)
    atomic_write_text(args.out / "summary.json", json.dumps({"eval": ev, "commands": log}, indent=2) + "\n")
    text = summary_markdown(ev, lesion, grads)
    atomic_write_text(args.out / "summary.md", text)
    print(text)
    for entry in log:
        print(f"{entry['seconds']:7.1f} s  {entry['command']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
