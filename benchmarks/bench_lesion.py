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
import contextlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from resnet_cli.analysis.lesion import Config, Layout, executed_ops, lesion_study, single_measurements
from resnet_cli.devices import autocast_dtype, resolve_device
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
    """Seconds of plain inference (argmax of every batch) of ``model`` over ``images``: the reference speed,
    with the lesion study's settings on CUDA (channels_last, autocast)."""
    work = model.to(device)
    if device.type == "cuda":
        work = work.to(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    images = images.to(device)  # before the clock: the engines hold the study's images on the device too
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode(), autocast:
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size]
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            work(x).argmax(1)
    sync(device)
    return time.perf_counter() - start


ENGINES = ("naive", "cached", "stacked")


def measure(spec, images, labels, batch_size: int, device, repeats: int, budget_s: float | None = None) -> dict:
    """The single-deletion study of a random-init ``spec`` on ``images`` with every engine, and plain inference,
    ``repeats`` times (fewer when ``budget_s`` seconds have passed after a repeat): the rows of the table.

    Per row: median seconds, executed MACs, ``images_per_s`` (images x configurations the run scores, per
    second: one configuration for inference) and MACs per second, executed and effective (the naive study's
    MACs per second of this run)."""
    torch.manual_seed(0)
    model = build_model(spec).eval()
    amp_dtype = autocast_dtype(device)
    time_inference(model, images[:batch_size], batch_size, device, amp_dtype)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in ("inference", *ENGINES)}
    errors: dict[str, list[float]] = {}
    started = time.monotonic()
    for _ in range(repeats):
        for engine in ENGINES:  # alternated, so drifts in machine load hit all alike
            sync(device)
            start = time.perf_counter()
            result = lesion_study(model, images, labels, experiments=["single"], batch_size=batch_size,
                                  device=device, engine=engine)
            sync(device)
            times[engine].append(time.perf_counter() - start)
            errors[engine] = [result.baseline_error] + [r.error for r in result.single]
        times["inference"].append(time_inference(model, images, batch_size, device, amp_dtype))
        if budget_s is not None and time.monotonic() - started > budget_s:
            break
    model.cpu()
    median = {k: statistics.median(v) for k, v in times.items()}
    macs = {engine: study_macs(model, spec, images, engine) for engine in ENGINES}
    macs["inference"] = plan_model(spec).macs * len(images)
    configurations = len(errors["cached"])
    rows = []
    for name in ("inference", *ENGINES):
        scored = len(images) * (1 if name == "inference" else configurations)
        rows.append({
            "run": name,
            "median_s": median[name],
            "times_s": times[name],
            "images_per_s": scored / median[name],
            "executed_macs": macs[name],
            "executed_macs_per_s": macs[name] / median[name],
            "effective_macs_per_s": (macs["naive"] if name != "inference" else macs[name]) / median[name],
        })
    return {
        "arch": spec.name, "input_size": spec.input_size, "images": len(images), "batch_size": batch_size,
        "repeats": len(times["inference"]), "device": str(device),
        "autocast": str(amp_dtype).replace("torch.", "") if amp_dtype else None,
        "configurations": configurations,
        "speedup_cached_over_naive": median["naive"] / median["cached"],
        "speedup_stacked_over_naive": median["naive"] / median["stacked"],
        "work_ratio_naive_over_cached": macs["naive"] / macs["cached"],
        "errors_identical": errors["naive"] == errors["cached"] == errors["stacked"],
        "max_error_difference": max(abs(a - b) for e in ("cached", "stacked")
                                    for a, b in zip(errors["naive"], errors[e])),
        # per engine: on a GPU under autocast the stacked engine's larger batches may round a borderline image
        # the other way, so its difference is a measurement, not a failure (gpu_check's agreement bounds it)
        "error_difference_from_naive": {e: max(abs(a - b) for a, b in zip(errors["naive"], errors[e]))
                                        for e in ("cached", "stacked")},
        "units": {"median_s": "seconds (median over repeats)", "macs": "multiply-adds of conv and linear layers",
                  "images_per_s": "images x configurations scored per second"},
        "rows": rows,
    }


def seeded_images(spec, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` seeded random images and labels for ``spec`` (a random-init net's speed does not need real ones)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, spec.in_channels, spec.input_size, spec.input_size, generator=g)
    return images, torch.randint(0, spec.num_classes, (n,), generator=g)


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
    spec = get_spec(args.arch)
    images, labels = seeded_images(spec, args.images)
    doc = {"benchmark": "lesion single deletions, cached and stacked vs naive engine",
           **measure(spec, images, labels, args.batch_size, device, args.repeats),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine()}
    print(f"{args.arch}: baseline + {doc['configurations'] - 1} single deletions, {args.images} images, "
          f"batch {args.batch_size}, {device}, {doc['threads']} threads, median of {args.repeats}")
    print(f"{'run':<10}{'median s':>10}{'GMACs run':>12}{'GMAC/s run':>12}{'GMAC/s eff.':>13}")
    for r in doc["rows"]:
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
