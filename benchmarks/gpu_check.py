"""One prepared check of the GPU path, under 8 minutes on one GPU: one table on stdout, the numbers in JSON.

Four parts, each with a time budget (a part stops repeating once its budget is spent, and none starts past
``--max-seconds``, 450 by default; ``--parts`` runs some):

* ``agreement``: a small CIFAR-style ResNet, trained for a few steps on the CPU (``train``, seeded), runs its
  single-deletion lesion study on the CPU (the reference) and on ``--device``, with autocast (bf16, or fp16 on
  older GPUs) and without it (float32, TF32 off). Reported per run: the correct count of every configuration and,
  from a per-image pass, how many images' predictions differ from the CPU's. Tolerance: lower precision moves
  every logit a little, so an image whose two highest logits are closer than that can change its argmax; such
  flips are allowed up to ``TOLERANCE`` of the images per configuration (bf16 keeps 8 bits of mantissa, float32
  24), and each run also reports the CPU's top-2 logit margin of the flipped images (borderline ones have small
  margins). On ``--device cpu`` every run is the CPU's float32 and must agree exactly.
* ``lesion``: single-deletion throughput of ResNet-56 (32 px) and ResNet-50 (224 px), random weights, seeded
  images: images/s and effective GMAC/s of the naive, cached and stacked engines against plain inference
  (``bench_lesion.measure``).
* ``train``: ``Trainer`` images/s against a minimal AMP loop, same model, batch, optimizer and images, step by
  step (``bench_train.paired_epoch``).
* ``torchrun``: the agreement net's study run by the CLI under ``torchrun --nproc-per-node 2`` on the one
  device (on one GPU both processes share it, over gloo: NCCL takes one process per GPU) against the same
  command in one process: the correct counts must be equal.

    python benchmarks/gpu_check.py                          # --device auto: the GPU where there is one
    python benchmarks/gpu_check.py --device cpu --quick     # small sizes: what the tests run
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benchmarks' pieces

import torch  # noqa: E402
from bench_lesion import measure, seeded_images  # noqa: E402
from bench_train import paired_epoch  # noqa: E402

from resnet_cli import get_spec  # noqa: E402
from resnet_cli.analysis.lesion import (  # noqa: E402
    Config,
    Layout,
    Runtime,
    lesion_study,
    prepared_model,
    single_measurements,
)
from resnet_cli.checkpoint import load_checkpoint  # noqa: E402
from resnet_cli.data import dataset_tensors, load_dataset  # noqa: E402
from resnet_cli.devices import autocast_dtype, resolve_device  # noqa: E402
from resnet_cli.fileio import atomic_write_text  # noqa: E402
from resnet_cli.training import TrainConfig, train  # noqa: E402

PARTS = ("agreement", "lesion", "train", "torchrun")
#: Images per configuration whose prediction may differ from the CPU's, as a fraction of the images.
TOLERANCE = {"bfloat16": 0.05, "float16": 0.02, None: 0.001}


@dataclass(frozen=True)
class Sizes:
    """What each part runs, and its budget in seconds."""

    agree_arch: str  # the small net: arch, its overrides, input size; trained on synthetic data on the CPU
    agree_overrides: dict
    agree_train_images: int
    agree_epochs: int
    agree_train_batch: int
    agree_images: int  # test images of the study
    agree_batch: int
    lesion_nets: tuple  # (arch, input size, images, batch size, repeats, budget s)
    train_arch: str
    train_input: int
    train_batch: int
    train_steps: int
    train_repeats: int
    budgets: dict


FULL = Sizes("cifar_resnet14", {"widths": "8,16,32", "stem_width": 8, "input_size": 16}, 2048, 2, 64, 1024, 256,
             (("resnet56", 32, 4096, 512, 3, 75), ("resnet50", 224, 512, 128, 2, 90)),
             "resnet20", 32, 256, 16, 3,
             {"agreement": 45, "train": 45, "torchrun": 120})
QUICK = Sizes("cifar_resnet8", {"widths": "8,16,32", "stem_width": 8, "input_size": 12}, 512, 2, 32, 128, 32,
              (("resnet20", 16, 16, 16, 1, 10), ("resnet50", 32, 8, 8, 1, 10)),
              "resnet20", 16, 32, 3, 1,
              {"agreement": 30, "train": 10, "torchrun": 120})


#: A part (or a lesion net) given less time than this is skipped, and the JSON says so.
MIN_PART_S = 5.0


class Clock:
    """The run's deadline: each part gets its own budget or what is left, whichever is less."""

    def __init__(self, total_s: float) -> None:
        self.end = time.monotonic() + total_s

    def budget(self, wanted: float) -> float:
        return max(0.0, min(wanted, self.end - time.monotonic()))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def tf32(allowed: bool):
    """TF32 convolutions and matmuls on or off (torch has them on for cuDNN convolutions by default)."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


# --------------------------------------------------------------------------- agreement
def small_net(sizes: Sizes, folder: Path) -> tuple[Path, int, float]:
    """Train the agreement net on the CPU (seeded: the same weights on any machine); its checkpoint, input size
    and test error."""
    spec = get_spec(sizes.agree_arch, **sizes.agree_overrides)
    ckpt = folder / "small.pt"
    config = TrainConfig(epochs=sizes.agree_epochs, batch_size=sizes.agree_train_batch, seed=0)
    result = train(spec, "synthetic", config, device="cpu", train_limit=sizes.agree_train_images,
                   test_limit=sizes.agree_images, checkpoint=ckpt)
    return ckpt, result.spec.input_size, result.final["test_error"]


def predictions(model, images, batch_size: int, device, amp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per configuration (baseline, then each single deletion) and image: the predicted class and the top-2
    logit margin (float32 logits), returned on the CPU. A naive pass per configuration, run as the study runs it
    (``Runtime``: the device, autocast, channels_last)."""
    runtime = Runtime.choose(device, amp, None, images)
    with prepared_model(model, runtime.device, runtime.channels_last) as work:
        layout = Layout(work)
        layout.probe(runtime.prepare(images[:1]))
        configs = [Config()] + [m.config for m in single_measurements(layout.blocks)]
        preds, margins = [], []
        with torch.inference_mode(), runtime.autocast():
            for config in configs:
                ops = layout.ops(config)
                p, m = [], []
                for i in range(0, len(images), batch_size):
                    h = work.forward_stem(runtime.prepare(images[i:i + batch_size]))
                    for op in ops:
                        h = layout.apply(op, h)
                    top2 = work.forward_head(h).float().topk(2, dim=1)
                    p.append(top2.indices[:, 0].cpu())
                    m.append((top2.values[:, 0] - top2.values[:, 1]).cpu())
                preds.append(torch.cat(p))
                margins.append(torch.cat(m))
    return torch.stack(preds), torch.stack(margins)


def study_counts(model, images, labels, batch_size: int, device, amp: bool, engine: str = "cached") -> list[int]:
    """The lesion study's correct counts: baseline, then each single deletion."""
    result = lesion_study(model, images, labels, experiments=["single"], batch_size=batch_size, device=device,
                          amp=amp, engine=engine)
    return [result.baseline_correct] + [r.correct for r in result.single]


def agreement(sizes: Sizes, device: torch.device, folder: Path, budget_s: float) -> dict:
    t0 = time.monotonic()
    ckpt, input_size, test_error = small_net(sizes, folder)
    model = load_checkpoint(ckpt).build_model().eval()
    data, _ = load_dataset("synthetic", "test", input_size=input_size, limit=sizes.agree_images)
    images, labels = dataset_tensors(data)
    bs = sizes.agree_batch
    reference_preds, reference_margins = predictions(model, images, bs, torch.device("cpu"), amp=False)
    runs = [{"run": "cpu float32 (reference)", "device": "cpu", "autocast": None, "tf32": False,
             "correct": study_counts(model, images, labels, bs, torch.device("cpu"), amp=False)}]
    for amp in (True, False):  # autocast as the study runs it by default, then float32 with TF32 off
        if time.monotonic() - t0 > budget_s:
            break
        dtype = autocast_dtype(device, amp)
        name = str(dtype).replace("torch.", "") if dtype else None
        start = time.monotonic()
        with tf32(False) if not amp else contextlib.nullcontext():
            correct = study_counts(model, images, labels, bs, device, amp)
            stacked = study_counts(model, images, labels, bs, device, amp, engine="stacked")
            preds, _ = predictions(model, images, bs, device, amp)
        sync(device)
        differ = preds != reference_preds
        flipped = reference_margins[differ]
        # on the CPU the same kernels run as for the reference: nothing may differ
        allowed = 0 if device.type == "cpu" else max(1, int(TOLERANCE[name] * len(images)))
        label = (f"{device.type} autocast {name or 'off (none on the CPU)'}" if amp
                 else f"{device.type} float32, TF32 off")
        runs.append({
            "run": label, "device": str(device), "autocast": name,
            "tf32": amp and device.type == "cuda" and torch.backends.cudnn.allow_tf32,
            "correct": correct, "seconds": time.monotonic() - start,
            "count_differences": [a - b for a, b in zip(correct, runs[0]["correct"])],
            "differing_images": differ.sum(1).tolist(),
            "max_differing_images": int(differ.sum(1).max()),
            "allowed_differing_images": allowed,
            "within_tolerance": int(differ.sum(1).max()) <= allowed,
            # the study's counts (cached engine) against the per-image pass (naive): a count can move only as
            # far as images flipped
            "counts_bounded_by_flips": all(abs(a - b) <= int(d) for a, b, d in
                                           zip(correct, runs[0]["correct"], differ.sum(1))),
            "flipped_max_cpu_margin": float(flipped.max()) if len(flipped) else None,
            # the stacked engine runs the branches in larger batches, whose kernels may round differently
            "stacked_correct": stacked,
            "stacked_max_difference": max(abs(a - b) for a, b in zip(stacked, correct)),
        })
        run = runs[-1]
        run["ok"] = run["within_tolerance"] and run["counts_bounded_by_flips"] and \
            run["stacked_max_difference"] <= allowed
    return {"arch": sizes.agree_arch, "overrides": sizes.agree_overrides, "input_size": input_size,
            "images": len(images), "batch_size": bs, "configurations": len(runs[0]["correct"]),
            "test_error": test_error, "median_cpu_margin": float(reference_margins.median()),
            "tolerance": "per configuration, images whose prediction differs from the CPU's: at most "
                         + ", ".join(f"{TOLERANCE[k]:.1%} ({k or 'float32'})" for k in TOLERANCE)
                         + " of the images (and at least 1): lower precision moves the logits a little and flips "
                           "images whose top-2 margin is smaller; count differences are bounded by the flips",
            "runs": runs, "checkpoint": ckpt}


# --------------------------------------------------------------------------- lesion, train
def lesion_speed(sizes: Sizes, device: torch.device, clock: Clock, skipped: dict) -> list[dict]:
    nets = []
    for arch, input_size, n, bs, repeats, wanted in sizes.lesion_nets:
        budget = clock.budget(wanted)
        if budget < MIN_PART_S:
            skipped[f"lesion {arch}"] = "out of time (--max-seconds)"
            continue
        spec = get_spec(arch, input_size=input_size)
        images, labels = seeded_images(spec, n)
        nets.append(measure(spec, images, labels, bs, device, repeats, budget_s=budget))
    return nets


def train_speed(sizes: Sizes, device: torch.device, budget_s: float) -> dict:
    import statistics

    spec = get_spec(sizes.train_arch, input_size=sizes.train_input)
    bs = sizes.train_batch
    dataset, info = load_dataset("synthetic", "train", input_size=spec.input_size, limit=sizes.train_steps * bs)
    trainer_s, minimal_s = [], []
    started = time.monotonic()
    for r in range(sizes.train_repeats):
        t, m = paired_epoch(spec, dataset, info, bs, r, augment=False, device=device)
        trainer_s += t
        minimal_s += m
        if time.monotonic() - started > budget_s:
            break
    return {"arch": sizes.train_arch, "input_size": spec.input_size, "batch_size": bs, "steps": len(trainer_s),
            "autocast": str(autocast_dtype(device)).replace("torch.", "") if autocast_dtype(device) else None,
            "trainer_images_per_s": bs / statistics.median(trainer_s),
            "minimal_images_per_s": bs / statistics.median(minimal_s),
            "median_step_time_ratio": statistics.median(a / b for a, b in zip(trainer_s, minimal_s)),
            "trainer_step_s": trainer_s, "minimal_step_s": minimal_s}


# --------------------------------------------------------------------------- torchrun
def lesion_command(ckpt: Path, sizes: Sizes, device: torch.device) -> list[str]:
    return ["lesion", str(ckpt), "--limit", str(sizes.agree_images), "-b", str(sizes.agree_batch),
            "--experiments", "single", "--device", device.type, "-f", "json", "-q"]


def cli_counts(doc: dict) -> list[int]:
    return [doc["baseline_correct"]] + [r["correct"] for r in doc["single"]]


def torchrun_smoke(ckpt: Path, sizes: Sizes, device: torch.device, budget_s: float) -> dict:
    """The agreement net's study by the CLI in one process and under torchrun with 2 processes, both started
    afresh (this process's settings, such as the trainer's cuDNN autotuning, would make its kernels differ)."""
    args = lesion_command(ckpt, sizes, device)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's package in the processes started here
    shared = device.type == "cuda" and torch.cuda.device_count() < 2
    if shared:
        env["RESNET_CLI_DIST_BACKEND"] = "gloo"  # two processes on one GPU: NCCL refuses, gloo shares
    if device.type == "cpu":
        env.setdefault("OMP_NUM_THREADS", "1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    started = time.monotonic()
    runs = {}
    for name, launcher in (("single", [sys.executable]), ("torchrun", torchrun)):
        left = budget_s - (time.monotonic() - started)
        try:
            proc = subprocess.run([*launcher, "-m", "resnet_cli", *args], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=max(1.0, left), check=False)
            runs[name] = (proc.returncode, proc.stdout, proc.stderr)
        except subprocess.TimeoutExpired:
            runs[name] = (None, "", f"timed out: the part's budget is {budget_s:g} s")
    counts = {}
    for name, (code, stdout, _) in runs.items():
        counts[name] = None
        if code == 0:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                counts[name] = cli_counts(json.loads(stdout))
    single, two = counts["single"], counts["torchrun"]
    failed = [f"{name}: {stderr[-1500:]}" for name, (code, _, stderr) in runs.items() if counts[name] is None]
    return {"processes": 2, "backend": "gloo" if shared or device.type == "cpu" else "nccl",
            "command": "torchrun --standalone --nproc-per-node 2 -m resnet_cli " + " ".join(args),
            "returncodes": {name: run[0] for name, run in runs.items()}, "seconds": time.monotonic() - started,
            "single_correct": single, "torchrun_correct": two, "equal": two is not None and two == single,
            "max_count_difference": max(abs(a - b) for a, b in zip(single, two)) if single and two else None,
            "errors": failed or None}


# --------------------------------------------------------------------------- the table

def _engine_note(net: dict, run: str) -> str:
    """What a lesion row's errors say: the naive engine is the reference; the cached engine must equal it (the
    same batches); the stacked one may differ where autocast rounds its larger batches otherwise."""
    if run == "inference":
        return f"{net['configurations']} configurations, {net['images']} images, batch {net['batch_size']}"
    if run == "naive":
        return "the reference errors"
    diff = net["error_difference_from_naive"][run]
    if diff == 0:
        return "errors = naive's"
    return ("ERRORS DIFFER" if run == "cached" else "errors differ") + f" from naive's by up to {100 * diff:.2f} points"

def table(doc: dict) -> list[str]:
    """One table: part, run, images/s, effective GMAC/s, a ratio, and the check or note."""
    rows = []
    parts = doc["parts"]
    if "agreement" in parts:
        a = parts["agreement"]
        ref = a["runs"][0]
        rows.append(("agreement", ref["run"], "", "", "", f"{a['configurations']} configurations, {a['images']} "
                     f"images, test error {100 * a['test_error']:.1f}%"))
        for r in a["runs"][1:]:
            rows.append(("agreement", r["run"], "", "", "",
                         f"max {r['max_differing_images']} images differ (allowed {r['allowed_differing_images']}),"
                         f" max count difference {max(map(abs, r['count_differences']))}, stacked engine "
                         f"{r['stacked_max_difference']}: "
                         f"{'ok' if r['ok'] else 'FAILED'}"))
    for net in parts.get("lesion", []):
        inference = net["rows"][0]
        for r in net["rows"]:
            ratio = f"{inference['median_s'] / r['median_s'] * net['configurations']:.2f}x" \
                if r["run"] != "inference" else "1.00x"
            note = _engine_note(net, r["run"])
            rows.append(("lesion", f"{net['arch']} {net['input_size']}px {r['run']}", f"{r['images_per_s']:.0f}",
                         f"{r['effective_macs_per_s'] / 1e9:.1f}", ratio, note))
    if "train" in parts:
        t = parts["train"]
        rows.append(("train", f"{t['arch']} Trainer", f"{t['trainer_images_per_s']:.0f}", "",
                     f"{t['median_step_time_ratio']:.3f}x", f"batch {t['batch_size']}, {t['steps']} paired steps, "
                                                            f"autocast {t['autocast'] or 'off'}"))
        rows.append(("train", f"{t['arch']} minimal AMP loop", f"{t['minimal_images_per_s']:.0f}", "", "1.000x", ""))
    if "torchrun" in parts:
        t = parts["torchrun"]
        rows.append(("torchrun", f"2 processes ({t['backend']})", "", "", "",
                     f"counts equal to one process: {'yes' if t['equal'] else 'NO'} ({t['seconds']:.0f} s)"))
    rows += [("skipped", name, "", "", "", why) for name, why in doc["skipped"].items()]
    head = ("part", "run", "images/s", "eff. GMAC/s", "ratio", "check / note")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).rjust(w) if i in (2, 3, 4) else str(c).ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in [head, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("ratio: lesion, time of one plain-inference pass per configuration / the engine's time (above 1: "
                 "faster than scoring each configuration by inference); train, trainer step time / minimal step time")
    return lines


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto (the GPU where there is one), cuda or cpu")
    ap.add_argument("--quick", action="store_true", help="small sizes (a CPU, the tests)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    ap.add_argument("--max-seconds", type=float, default=450.0, help="no part starts after this (default 450)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "gpu_check.json"))
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        ap.error(f"unknown part {unknown[0]!r}: choose from {', '.join(PARTS)}")
    device = resolve_device(args.device)
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    doc = {"benchmark": "gpu_check", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "device": str(device), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
           "torch": torch.__version__, "cuda": torch.version.cuda, "threads": torch.get_num_threads(),
           "machine": platform.machine(), "quick": args.quick, "max_seconds": args.max_seconds,
           "budgets_s": {**sizes.budgets, **{f"lesion {net[0]}": net[-1] for net in sizes.lesion_nets}},
           "parts": {}, "seconds": {}, "skipped": {}}
    clock, skipped = Clock(args.max_seconds), doc["skipped"]
    with tempfile.TemporaryDirectory(prefix="gpu_check.") as tmp:
        ckpt = None
        for part in parts:
            budget = clock.budget(sizes.budgets.get(part, args.max_seconds))
            if budget < MIN_PART_S:
                skipped[part] = "out of time (--max-seconds)"
                continue
            t0 = time.monotonic()
            print(f"{part} ...", file=sys.stderr)
            if part == "agreement" or (part == "torchrun" and ckpt is None):
                result = agreement(sizes, device, Path(tmp), clock.budget(sizes.budgets["agreement"]))
                ckpt = result.pop("checkpoint")
                if part == "agreement":
                    doc["parts"]["agreement"] = result
            if part == "lesion":
                doc["parts"]["lesion"] = lesion_speed(sizes, device, clock, skipped)
            elif part == "train":
                doc["parts"]["train"] = train_speed(sizes, device, budget)
            elif part == "torchrun":
                doc["parts"]["torchrun"] = torchrun_smoke(ckpt, sizes, device, clock.budget(budget))
            doc["seconds"][part] = time.monotonic() - t0
    doc["total_s"] = time.monotonic() - started
    print(f"gpu_check on {doc['gpu'] or device} (torch {torch.__version__}), {doc['date']}, "
          f"{'quick sizes, ' if args.quick else ''}{doc['total_s']:.0f} s")
    print("\n".join(table(doc)))
    atomic_write_text(args.out, json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return doc


if __name__ == "__main__":
    main()
