"""Benchmark: single-block deletions of a ResNet-56, the cached and stacked engines against the naive one.

The stacked engine runs the cached engine's work (the same tree of shared prefixes) with the branches that run
the same block at the same position stacked into one larger batch: fewer, larger kernels, for small networks on
large GPUs. All engines run the same study (baseline + every block deleted in turn) on the same images; the
errors must be identical. Reported: median wall time over repeats, the speed-up, and MACs per second
(multiply-adds of conv and linear layers, from the analytic plan) against plain inference of the same model on
the same machine:

* executed MACs/s: the work an engine really runs (the cached engine runs less of it) per second;
* effective MACs/s: the work of the naive study (a full forward pass per configuration) per second of this engine.

    python benchmarks/bench_lesion.py                      # CPU, 256 random images (a random-init network)
    python benchmarks/bench_lesion.py --images 2048 --device cuda --batch-size 1024
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from resnet_cli.analysis.lesion import Config, Layout, executed_ops, lesion_study, single_measurements
from resnet_cli.devices import resolve_device
from resnet_cli.fileio import atomic_write_text
from resnet_cli.models import build_model
from resnet_cli.plan import plan_model
from resnet_cli.registry import get_spec


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def study_macs(model, spec, images: torch.Tensor, engine: str) -> int:
    """Multiply-adds the engine executes for the single-deletion study over ``images``, from the plan."""
    plan = plan_model(spec)
    units = {u.name: u for u in plan.units}
    layout = Layout(model)
    layout.probe(images[:1])
    op_lists = [layout.ops(Config())] + [layout.ops(m.config) for m in single_measurements(layout.blocks)]
    names = [ref.name if ref is not None else "" for ref in layout.refs]

    def cost(op):
        kind, p = op
        unit = units.get(names[p])
        if unit is None:
            return 0
        if kind == "run":
            return unit.macs
        return sum(layer.macs for layer in unit.layers if ".downsample" in layer.name)

    per_image = sum(cost(op) for op in executed_ops(op_lists, "naive" if engine == "naive" else "cached"))
    stems = 1 if engine in ("cached", "stacked") else len(op_lists)
    per_image += stems * units["stem"].macs + len(op_lists) * units["head"].macs
    return per_image * len(images)


def time_inference(model, images, batch_size, device, amp_dtype) -> float:
    work = model.to(device)
    if device.type == "cuda":
        work = work.to(memory_format=torch.channels_last)
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode(), (torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else _null()):
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(device)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            work(x).argmax(1)
    sync(device)
    return time.perf_counter() - start


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="resnet56")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "lesion.json"))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    spec = get_spec(args.arch)
    model = build_model(spec).eval()
    images = torch.randn(args.images, spec.in_channels, spec.input_size, spec.input_size)
    labels = torch.randint(0, spec.num_classes, (args.images,))
    amp_dtype = None
    if device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    time_inference(model, images[: args.batch_size], args.batch_size, device, amp_dtype)  # warm-up
    times: dict[str, list[float]] = {"naive": [], "cached": [], "stacked": [], "inference": []}
    errors: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for engine in ("naive", "cached", "stacked"):  # alternated, so drifts in machine load hit both alike
            sync(device)
            start = time.perf_counter()
            result = lesion_study(model, images, labels, experiments=["single"], batch_size=args.batch_size,
                                  device=device, engine=engine)
            sync(device)
            times[engine].append(time.perf_counter() - start)
            errors[engine] = [result.baseline_error] + [r.error for r in result.single]
        times["inference"].append(time_inference(model, images, args.batch_size, device, amp_dtype))
    model.cpu()
    median = {k: statistics.median(v) for k, v in times.items()}
    macs = {engine: study_macs(model, spec, images, engine) for engine in ("naive", "cached", "stacked")}
    macs["inference"] = plan_model(spec).macs * args.images
    rows = []
    for name in ("inference", "naive", "cached", "stacked"):
        rows.append({
            "run": name,
            "median_s": median[name],
            "times_s": times[name],
            "executed_macs": macs[name],
            "executed_macs_per_s": macs[name] / median[name],
            "effective_macs_per_s": (macs["naive"] if name != "inference" else macs[name]) / median[name],
        })
    doc = {
        "benchmark": "lesion single deletions, cached and stacked vs naive engine",
        "arch": args.arch, "images": args.images, "batch_size": args.batch_size, "repeats": args.repeats,
        "device": str(device), "autocast": str(amp_dtype).replace("torch.", "") if amp_dtype else None,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
        "configurations": len(errors["cached"]),
        "speedup_cached_over_naive": median["naive"] / median["cached"],
        "speedup_stacked_over_naive": median["naive"] / median["stacked"],
        "work_ratio_naive_over_cached": macs["naive"] / macs["cached"],
        "errors_identical": errors["naive"] == errors["cached"] == errors["stacked"],
        "max_error_difference": max(abs(a - b) for e in ("cached", "stacked")
                                    for a, b in zip(errors["naive"], errors[e])),
        "units": {"median_s": "seconds (median over repeats)", "macs": "multiply-adds of conv and linear layers"},
        "rows": rows,
    }
    print(f"{args.arch}: baseline + {doc['configurations'] - 1} single deletions, {args.images} images, "
          f"batch {args.batch_size}, {device}, {doc['threads']} threads, median of {args.repeats}")
    print(f"{'run':<10}{'median s':>10}{'GMACs run':>12}{'GMAC/s run':>12}{'GMAC/s eff.':>13}")
    for r in rows:
        print(f"{r['run']:<10}{r['median_s']:>10.3f}{r['executed_macs'] / 1e9:>12.2f}"
              f"{r['executed_macs_per_s'] / 1e9:>12.2f}{r['effective_macs_per_s'] / 1e9:>13.2f}")
    print(f"speed-up cached/naive: {doc['speedup_cached_over_naive']:.2f}x, stacked/naive: "
          f"{doc['speedup_stacked_over_naive']:.2f}x (work ratio "
          f"{doc['work_ratio_naive_over_cached']:.2f}x); errors identical: {doc['errors_identical']}"
          f" (max difference {doc['max_error_difference']:.2g})")
    atomic_write_text(args.out, json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return doc


if __name__ == "__main__":
    main()
