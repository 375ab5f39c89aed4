"""Training throughput on the CPU: resnet-cli's Trainer against a minimal hand-written PyTorch loop.

Same model (resnet20 by default, CIFAR 32x32, 10 classes), same images (the synthetic dataset), same batch size,
optimizer and seed. Variants, interleaved in each repetition so that a busy machine slows all of them alike:

- ``minimal``: index the image tensor, forward, cross-entropy, backward, SGD step — nothing else;
- ``trainer``: ``Trainer`` one epoch over the same images, augmentation off (the same work as ``minimal``, plus
  the trainer's bookkeeping: per-step seeding, loss/accuracy sums, finite-loss check);
- ``trainer+aug``: the same with the paper's crop augmentation (synthetic data: crop, no flip).

Reports the median images/s of each over the repetitions and the ratio to ``minimal``; prints a table and writes
JSON (``--json``). Every timed run starts after one untimed warm-up step (oneDNN builds its kernels then).

    python benchmarks/bench_train.py                      # resnet20, 8 steps x 128 images, 3 repetitions
    python benchmarks/bench_train.py --steps 20 --repeats 5 --threads 4 --json bench_train.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from resnet_cli import get_spec  # noqa: E402
from resnet_cli.data import load_dataset  # noqa: E402
from resnet_cli.fileio import atomic_write_text  # noqa: E402
from resnet_cli.models import build_model  # noqa: E402
from resnet_cli.training import TrainConfig, Trainer  # noqa: E402


def minimal_loop(spec, images, labels, batch_size, seed):
    torch.manual_seed(seed)
    model = build_model(spec).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))

    def step(idx):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(images[idx]), labels[idx])
        loss.backward()
        opt.step()

    step(order[:batch_size])  # warm-up
    t0 = time.perf_counter()
    for idx in torch.split(order, batch_size):
        step(idx)
    return len(labels) / (time.perf_counter() - t0)


def trainer_epoch(spec, dataset, info, batch_size, seed, augment):
    torch.manual_seed(seed)
    config = TrainConfig(epochs=1, batch_size=batch_size, seed=seed, augment=augment)
    trainer = Trainer(build_model(spec), spec, dataset, dataset, info, config, device="cpu")
    x, y = dataset.get_batch(torch.arange(batch_size))
    trainer._step(x, y)  # warm-up, as for the minimal loop
    t0 = time.perf_counter()
    trainer._train_epoch()
    return len(dataset) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", default="bench_train.json", help="where to write the results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = get_spec(args.arch)
    n = args.steps * args.batch_size
    dataset, info = load_dataset("synthetic", "train", input_size=spec.input_size, limit=n)
    images, labels = dataset.images, dataset.labels
    variants = {
        "minimal": lambda: minimal_loop(spec, images, labels, args.batch_size, 0),
        "trainer": lambda: trainer_epoch(spec, dataset, info, args.batch_size, 0, augment=False),
        "trainer+aug": lambda: trainer_epoch(spec, dataset, info, args.batch_size, 0, augment=True),
    }
    runs: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(args.repeats):
        for name, fn in variants.items():
            runs[name].append(fn())
            print(f"repeat {r + 1}/{args.repeats} {name:<12} {runs[name][-1]:8.1f} images/s", file=sys.stderr)
    medians = {k: statistics.median(v) for k, v in runs.items()}
    base = medians["minimal"]
    print(f"\n{args.arch} training throughput on the CPU ({torch.get_num_threads()} threads; batch {args.batch_size}, "
          f"{args.steps} steps x {args.repeats} repeats; median)")
    print(f"{'variant':<14}{'images/s':>12}{'vs minimal':>12}   runs (images/s)")
    for name, med in medians.items():
        print(f"{name:<14}{med:>12.1f}{med / base:>11.2f}x   " + ", ".join(f"{v:.1f}" for v in runs[name]))
    result = {
        "arch": args.arch, "batch_size": args.batch_size, "steps": args.steps, "repeats": args.repeats,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
        "unit": "images/s", "median": medians, "ratio_to_minimal": {k: v / base for k, v in medians.items()},
        "runs": runs,
    }
    atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
