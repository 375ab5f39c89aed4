"""Training throughput on the CPU: resnet-cli's Trainer against a minimal hand-written PyTorch loop.

Same model (resnet20 by default, CIFAR 32x32, 10 classes), same images (the synthetic dataset), same batch size,
optimizer and seed:

- ``minimal``: index the image tensor, forward, cross-entropy, backward, SGD step — nothing else;
- ``trainer``: ``Trainer`` over the same images, augmentation off (the same work as ``minimal`` plus the trainer's
  bookkeeping: per-epoch order, loss/accuracy sums, finite-loss check);
- ``trainer+aug``: the same with the paper's crop augmentation (synthetic data: crop, no flip).

The steps are *paired*: after every trainer step (its ``on_step`` hook) the minimal loop runs one step on its own
model, so that both see the same machine load, which on a shared machine changes by 5x within seconds. Reported:
median images/s of each over all steps, and the median of the per-step time ratios (trainer / minimal). Prints a
table and writes JSON (``--out``). One untimed warm-up step each first (oneDNN builds its kernels then).

    python benchmarks/bench_train.py                      # resnet20, 8 steps x 128 images, 3 repetitions
    python benchmarks/bench_train.py --steps 20 --repeats 5 --threads 4 --out benchmarks/results/train.json
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch

from resnet_cli import get_spec
from resnet_cli.data import load_dataset
from resnet_cli.devices import autocast_dtype
from resnet_cli.fileio import atomic_write_text
from resnet_cli.models import build_model
from resnet_cli.training import TrainConfig, Trainer


class MinimalLoop:
    """The hand-written baseline: what a PyTorch tutorial's training loop does. On CUDA, PyTorch's AMP recipe:
    the images on the GPU (channels_last), autocast in the dtype the trainer uses (``autocast_dtype``), a
    GradScaler for float16, and the loss read once per step (as the trainer reads its numbers)."""

    def __init__(self, spec, images, labels, batch_size, seed, device="cpu"):
        self.device = torch.device(device)
        self.amp_dtype = autocast_dtype(self.device)
        torch.manual_seed(seed)
        self.model = build_model(spec).to(self.device).train()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
            images = images.to(self.device).contiguous(memory_format=torch.channels_last)
            labels = labels.to(self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.images, self.labels = images, labels
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        self.batches = [b.to(self.device) for b in torch.split(order, batch_size)]
        self.i = 0

    def step(self) -> float:
        """One step; returns its seconds."""
        t0 = time.perf_counter()
        idx = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype else contextlib.nullcontext():
            loss = torch.nn.functional.cross_entropy(self.model(self.images[idx]), self.labels[idx])
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
        loss.item()
        return time.perf_counter() - t0


def paired_epoch(spec, dataset, info, batch_size, seed, augment, device="cpu"):
    """Per-step seconds of the trainer and of the minimal loop, interleaved step by step."""
    minimal = MinimalLoop(spec, dataset.images, dataset.labels, batch_size, seed, device)
    torch.manual_seed(seed)
    config = TrainConfig(epochs=1, batch_size=batch_size, seed=seed, augment=augment)
    trainer_times, minimal_times = [], []
    clock = {"t": 0.0}

    def on_step(trainer, epoch, step):
        trainer_times.append(time.perf_counter() - clock["t"])
        minimal_times.append(minimal.step())
        clock["t"] = time.perf_counter()

    trainer = Trainer(build_model(spec), spec, dataset, dataset, info, config, device=device, on_step=on_step)
    trainer._step(*next(trainer._device_batches([torch.arange(batch_size)], 0, 0)))  # warm-up for both
    minimal.step()
    minimal.i = 0
    clock["t"] = time.perf_counter()
    trainer._train_epoch()
    return trainer_times, minimal_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    default_out = Path(__file__).resolve().parent / "results" / "train.json"
    parser.add_argument("--out", "--json", dest="out", default=str(default_out),
                        help="where to write the results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = get_spec(args.arch)
    bs = args.batch_size
    dataset, info = load_dataset("synthetic", "train", input_size=spec.input_size, limit=args.steps * bs)
    results = {}
    for name, augment in (("trainer", False), ("trainer+aug", True)):
        t_steps, m_steps = [], []
        for r in range(args.repeats):
            t, m = paired_epoch(spec, dataset, info, bs, r, augment)
            t_steps += t
            m_steps += m
            print(f"{name:<12} repeat {r + 1}/{args.repeats}: trainer {bs * len(t) / sum(t):7.1f} images/s, "
                  f"minimal {bs * len(m) / sum(m):7.1f} images/s", file=sys.stderr)
        results[name] = {
            "trainer_images_per_s": bs / statistics.median(t_steps),
            "minimal_images_per_s": bs / statistics.median(m_steps),
            "median_step_time_ratio": statistics.median(a / b for a, b in zip(t_steps, m_steps)),
            "trainer_step_s": t_steps, "minimal_step_s": m_steps,
        }
    print(f"\n{args.arch} training throughput on the CPU ({torch.get_num_threads()} threads; batch {bs}; "
          f"{args.steps} steps x {args.repeats} repeats, each trainer step paired with a minimal-loop step; medians)")
    print(f"{'variant':<14}{'trainer img/s':>15}{'minimal img/s':>15}{'time ratio':>12}   (trainer / minimal, "
          f"per step)")
    for name, r in results.items():
        print(f"{name:<14}{r['trainer_images_per_s']:>15.1f}{r['minimal_images_per_s']:>15.1f}"
              f"{r['median_step_time_ratio']:>11.3f}x")
    doc = {"arch": args.arch, "batch_size": bs, "steps": args.steps, "repeats": args.repeats,
           "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
           "unit": "images/s (median over steps); ratio = trainer step time / minimal step time",
           "results": results}
    atomic_write_text(args.out, json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
