"""Veit et al. (2016) on a laptop: a ResNet shrugs off a deleted block, its plain twin collapses.

Trains a CIFAR-style ResNet-20 and its plain twin (the same 18 convolutions without shortcuts) on scikit-learn's
handwritten digits at 16x16 pixels, saves both as checkpoints, then runs the lesion study on each (every block
deleted in turn, k random blocks deleted, k pairs swapped) and the gradient-by-path-length measurement on the
ResNet. Figures: OUT/lesion-resnet20/, OUT/lesion-plain20/, both nets in one figure each (Veit et al. Fig. 3) in
OUT/lesion-both/, and OUT/gradients.png. About a minute on 2 cores (many minutes on a busy machine; a status
line on stderr says where it is). Seeded: a rerun on the same torch build and thread count prints the same
numbers. The same studies from the shell, on the checkpoints written here:

    resnet-cli lesion OUT/resnet20.pt --out OUT/lesion-resnet20
    resnet-cli lesion OUT/plain20.pt --experiments single --out OUT/lesion-plain20
    resnet-cli plot-lesion OUT/lesion-resnet20 OUT/lesion-plain20 --out OUT/lesion-both --figure-type png,pdf
    resnet-cli gradients OUT/resnet20.pt --out OUT/gradients

    python examples/lesion_digits.py [--epochs 15] [--out lesion-digits]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F

from resnet_cli.analysis.gradients import gradient_flow
from resnet_cli.analysis.lesion import lesion_study
from resnet_cli.checkpoint import load_checkpoint, save_checkpoint
from resnet_cli.data import load_dataset
from resnet_cli.fileio import atomic_write_text
from resnet_cli.models import build_model
from resnet_cli.registry import get_spec
from resnet_cli.render import to_json
from resnet_cli.render.lesion import gradients_plots, lesion_plots
from resnet_cli.render.progress import progress
from resnet_cli.training import flush_denormals

SIZE = 16


def status(message: str) -> None:
    """A short status line on stderr, so that a run in a log file is never silent for minutes."""
    print(message, file=sys.stderr, flush=True)


def train(arch: str, epochs: int, x: torch.Tensor, y: torch.Tensor):
    torch.manual_seed(0)
    spec = get_spec(arch, input_size=SIZE, in_channels=1, num_classes=10)
    model = build_model(spec)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps_per_epoch = (len(x) + 63) // 64
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(0)
    model.train()
    with flush_denormals():  # as the trainer does: deep plain nets make denormals, which are slow on CPUs
        _epochs(model, opt, sched, epochs, x, y, g, arch)
    return spec, model.eval()


def _epochs(model, opt, sched, epochs: int, x: torch.Tensor, y: torch.Tensor, g: torch.Generator, arch: str) -> None:
    start = time.time()
    for epoch in range(epochs):
        status(f"{arch}: training, epoch {epoch + 1}/{epochs} ({time.time() - start:.0f} s)")
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            # the paper's augmentation, scaled down: shift by up to 2 pixels (no flips: a mirrored 2 is no 2)
            shift = torch.randint(-2, 3, (2,), generator=g).tolist()
            batch = torch.roll(x[idx], shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(model(batch), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--out", default="lesion-digits")
    args = ap.parse_args()
    out = Path(args.out)
    train_set, info = load_dataset("digits", "train", input_size=SIZE, in_channels=1)
    test_set, _ = load_dataset("digits", "test", input_size=SIZE, in_channels=1)
    x, y = train_set.images, train_set.labels

    results = {}
    for arch in ("cifar_resnet20", "cifar_plain20"):
        start = time.time()
        spec, model = train(arch, args.epochs, x, y)
        short = arch.replace("cifar_", "")
        save_checkpoint(out / f"{short}.pt", spec=spec, state_dict=model.state_dict(), dataset=info, record=[])
        status(f"{arch}: lesion study (single, multi, reorder) on {len(test_set)} test images")
        with progress() as show:  # a bar on a terminal, a status line every 30 s in a log
            result = lesion_study(model, test_set, max_k=6, samples=10, seed=0, progress=show)
        results[short] = result
        atomic_write_text(out / f"lesion-{short}.json", to_json(result.to_dict()) + "\n")
        for folder in (f"lesion-{short}", "lesion-both"):
            (out / folder).mkdir(parents=True, exist_ok=True)
        lesion_plots(result, out / f"lesion-{short}")
        print(f"{arch}: trained {args.epochs} epochs and studied in {time.time() - start:.0f} s; "
              f"test error {100 * result.baseline_error:.1f}%")

    print("\nerror after deleting one block (residual branch gone, shortcut kept) / one plain layer:")
    plain_by_name = {r.block: r for r in results["plain20"].single}
    print(f"{'block':<10}{'ResNet-20':>11}{'plain-20':>10}")
    for r in results["resnet20"].single:
        p = plain_by_name.get(r.block)
        mark = "  (downsampling)" if r.downsample else ""
        print(f"{r.block:<10}{100 * r.error:>10.1f}%{(f'{100 * p.error:.1f}%' if p else 'kept'):>10}{mark}")
    print("\nerror with k random blocks deleted (ResNet-20), mean over min(10, C(9, k)) distinct sets:")
    print("  " + "  ".join(f"k={r.k}: {100 * r.mean:.1f}%" for r in results["resnet20"].multi))
    single = results["resnet20"].single
    print(f"  (k=1 runs all 9 one-block sets: its mean is the single deletions' mean, "
          f"{100 * sum(r.error for r in single) / len(single):.1f}%)")
    print("error with k pairs of blocks swapped (ResNet-20):")
    print("  " + "  ".join(f"k={r.k}: {100 * r.mean:.1f}%" for r in results["resnet20"].reorder))

    # Veit et al. Fig. 3: the ResNet and its plain twin in one figure each (single, multi, reorder)
    lesion_plots([results["resnet20"], results["plain20"]], out / "lesion-both")
    status("gradient by path length (ResNet-20)")
    model = load_checkpoint(out / "resnet20.pt").build_model()
    with progress() as show:
        flow = gradient_flow(model, x[:64], y[:64], samples=4, arch="cifar_resnet20", dataset="digits",
                             progress=show)
    atomic_write_text(out / "gradients.json", to_json(flow.to_dict()) + "\n")
    gradients_plots(flow, out)
    lo, hi = flow.effective_range
    print(f"\ngradient by path length (9 blocks, 2^9 = 512 paths): {100 * flow.mass:.0f}% of it comes from paths "
          f"{lo}-{hi} blocks long ({100 * flow.effective_paths_fraction:.0f}% of the paths)")
    print(f"wrote checkpoints, JSON and plots to {out}/")


if __name__ == "__main__":
    main()
