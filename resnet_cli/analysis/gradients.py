"""Gradient flow by path length (Veit, Wilber & Belongie 2016, §6 and Fig. 6).

Unravelled, ``n`` residual blocks give ``2^n`` paths; a path of length ``k`` goes through the residual branches
of ``k`` blocks and the shortcuts of the others. Veit et al. measure how much gradient each length carries: feed
a batch forward through the whole network, then, in the backward pass, sample ``k`` blocks and let the gradient
through only their residual branches and only the shortcuts elsewhere, and record the gradient magnitude at the
input. Repeated over samples and batches this gives the mean magnitude ``m(k)`` of one path of length ``k``;
``m(k) * C(n, k)`` is the total gradient that paths of that length carry (Fig. 6b). For ResNet-110 on CIFAR-10
(n = 54) almost all of it comes from paths 5-17 blocks long ("effective paths"), under 1% of all paths.

Gating without touching the model: every block of the zoo offers ``routed(x, through_branch)``
(models/base.py), its forward value with the gradient let through one way only: a block on the path runs
``merge(shortcut(x).detach(), branch(x))``, one off it ``merge(shortcut(x), branch(x).detach())``. Forward
values are unchanged and the gradient takes the chosen way (through the merge's own non-linearity, e.g. the
ReLU after the addition, which every path shares). Gated, scaled and pre-activated blocks detach their own
pieces the same way; a DenseNet layer concatenates instead of adding.

Magnitudes are per image: the L2 norm of d(loss)/d(input image) for one image's cross-entropy (the network is
in eval mode, so images do not interact), averaged over images, samples and batches.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..distributed import SINGLE, World
from ..errors import ResnetCliError
from ..progress import Counter, Progress


# --------------------------------------------------------------------------- path counts (exact, log space)
def log_comb(n: int, k: int) -> float:
    """ln C(n, k) without forming the integer (n may be in the thousands)."""
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def length_shares(log_magnitudes: Sequence[float], n: int) -> list[float]:
    """Share of the total gradient per length k = 0..n: m(k) C(n,k) / sum_j m(j) C(n,j), computed in log space."""
    logs = [lm + log_comb(n, k) if lm > -math.inf else -math.inf for k, lm in enumerate(log_magnitudes)]
    top = max(logs)
    if top == -math.inf:
        return [0.0] * len(logs)
    weights = [math.exp(v - top) if v > -math.inf else 0.0 for v in logs]
    total = sum(weights)
    return [w / total for w in weights]


def shortest_range(shares: Sequence[float], mass: float) -> tuple[int, int]:
    """The shortest contiguous range of lengths [lo, hi] holding at least ``mass`` of the total (the most mass
    among equally short ones). Unlike analysis.paths.shortest_range, it does not assume the shares unimodal:
    measured gradient magnitudes are noisy."""
    best: tuple[int, int, float] | None = None
    for lo in range(len(shares)):
        acc = 0.0
        for hi in range(lo, len(shares)):
            acc += shares[hi]
            if acc >= mass - 1e-12:
                if best is None or hi - lo < best[1] - best[0] or (hi - lo == best[1] - best[0] and acc > best[2]):
                    best = (lo, hi, acc)
                break
    if best is None:
        return 0, len(shares) - 1
    return best[0], best[1]


# --------------------------------------------------------------------------- the gated pass
def gate_block(block: Any, h: Any, through_branch: bool) -> Any:
    """The block's output, with the gradient routed through its residual branch only or its shortcut only."""
    if not getattr(block, "has_shortcut", True):
        raise ResnetCliError("a plain network has no shortcuts: all its gradient takes the one full-length path")
    return block.routed(h, through_branch)


def gated_forward(model: Any, x: Any, on_path: set[int]) -> Any:
    """Logits of ``model`` on ``x`` (unchanged values) whose gradient flows only along the path through the
    residual branches of the blocks whose ``BlockRef.index`` is in ``on_path``."""
    h = model.forward_stem(x)
    for module, ref in model.sequence():
        h = module(h) if ref is None else gate_block(module, h, ref.index in on_path)
    return model.forward_head(h)


def path_gradient_norms(model: Any, x: Any, y: Any, on_path: set[int],
                        loss_fn: Callable[[Any, Any], Any] | None = None) -> Any:
    """Per-image L2 norms of d(loss)/d(x) along one path."""
    import torch
    import torch.nn.functional as F

    x = x.detach().clone().requires_grad_(True)
    logits = gated_forward(model, x, on_path)
    loss = (loss_fn or (lambda z, t: F.cross_entropy(z, t, reduction="sum")))(logits, y)
    (grad,) = torch.autograd.grad(loss, x)
    return grad.flatten(1).norm(dim=1)


# --------------------------------------------------------------------------- the study
@dataclass
class LengthRow:
    k: int
    paths: int  # C(n, k), exact
    measured: bool
    magnitude: float  # mean per-image gradient norm of one path of length k
    magnitude_std: float  # across samples (each the mean over a batch)
    share: float  # of the total gradient: m(k) C(n,k) / sum


@dataclass
class GradientResult:
    arch: str
    dataset: str
    blocks: int
    images: int
    samples: int
    mass: float
    effective_range: tuple[int, int]
    rows: list[LengthRow]
    settings: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)  # what was built besides the arch, as a lesion study has
    notes: list[str] = field(default_factory=list)

    @property
    def effective_paths_fraction(self) -> float:
        lo, hi = self.effective_range
        n = self.blocks
        return sum(math.exp(log_comb(n, k) - n * math.log(2)) for k in range(lo, hi + 1))

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.effective_range
        return {
            "arch": self.arch,
            "overrides": self.overrides,
            "dataset": self.dataset,
            "blocks": self.blocks,
            "images": self.images,
            "samples": self.samples,
            "units": {"magnitude": "L2 norm of d(cross-entropy of one image)/d(input image), mean over images",
                      "share": "fraction of the total gradient, m(k) * C(n,k) / sum", "k": "path length in blocks"},
            "effective_range": {"low": lo, "high": hi, "mass": self.mass,
                                "share": sum(r.share for r in self.rows[lo:hi + 1]),
                                "fraction_of_paths": self.effective_paths_fraction},
            "lengths": [{"k": r.k, "paths": r.paths, "measured": r.measured, "magnitude": r.magnitude,
                         "magnitude_std": r.magnitude_std, "share": r.share} for r in self.rows],
            "settings": self.settings,
            "notes": self.notes,
            "reference": "Veit et al. 2016, Fig. 6: ResNet-110 on CIFAR-10, effective paths 5-17 blocks long",
        }


def gradient_flow(
    model: Any,
    images: Any,
    labels: Any = None,
    *,
    lengths: Sequence[int] | None = None,
    samples: int = 4,
    batch_size: int = 32,
    seed: int = 0,
    mass: float = 0.9,
    device: Any = None,
    loss_fn: Callable[[Any, Any], Any] | None = None,
    progress: Progress | None = None,
    arch: str = "",
    dataset: str = "",
    world: World = SINGLE,
) -> GradientResult:
    """Veit et al.'s measurement over ``images``/``labels`` (tensors), or over ``images`` alone as a dataset or an
    ``ImageStream`` (streamed, a batch at a time): ``samples`` random paths per length and batch.

    Lengths not in ``lengths`` (default: every length 0..n) get a magnitude interpolated log-linearly between
    the measured ones (constant beyond the ends) for the shares, and are marked ``measured: False``.
    ``progress`` gets a "gradients" event per sampled path (batches x lengths x samples in all). Under torchrun
    (``world``) each rank measures its batches (with the paths one process would sample for them) and the sums
    are combined on every rank: the same result up to the order of floating-point additions.
    """
    import torch

    from ..data.stream import as_stream
    from ..devices import to_device
    from .lesion import prepared_model, unreadable_note

    refs = model.residual_blocks()
    n = len(refs)
    lengths = _check_lengths(refs, lengths, mass)
    device = torch.device(device) if device is not None else torch.device("cpu")
    stream = as_stream(images, labels).held_on(device)
    rng = random.Random(f"{seed}:gradients")
    indices = [r.index for r in refs]
    sums = dict.fromkeys(lengths, 0.0)  # sum over (batch, sample) of the batch's summed norms
    per_sample: dict[int, list[float]] = {k: [] for k in lengths}
    seen = 0
    batches = -(-len(stream) // batch_size)
    total = batches * len(lengths) * samples
    tick = Counter(progress, "gradients", total, "paths")
    lo, hi = world.part(0, len(stream), batch_size)
    with prepared_model(model, device, channels_last=False) as work:
        def draw() -> list[tuple[int, set[int]]]:
            return [(k, set(rng.sample(indices, k))) for k in lengths for _ in range(samples)]

        # every rank draws every batch's paths, so a batch gets the same paths whichever rank measures it
        for _ in range(lo // batch_size):  # the batches of the ranks before this one
            draw()
        for x, y in stream.batches(lo, hi, batch_size):
            paths = draw()
            if len(y) == 0:  # every image of the batch left out as unreadable
                tick(min(world.size * len(paths), total - tick.done))
                continue
            x, y = to_device(x, device), to_device(y, device)
            for k, on_path in paths:
                norms = path_gradient_norms(work, x, y, on_path, loss_fn)
                sums[k] += float(norms.sum())
                per_sample[k].append(float(norms.mean()))
                tick(min(world.size, total - tick.done), phase=f"length {k}")  # rank 0 reports for all
            seen += len(x)
    sums, per_sample, seen = _combine(world, sums, per_sample, seen)
    notes = unreadable_note(stream, world)
    if seen == 0:
        raise ResnetCliError("no image could be read: nothing to measure")
    measured = {k: sums[k] / (seen * samples) for k in lengths}
    rows, shares = _rows(measured, per_sample, n)
    result = GradientResult(arch, dataset, n, seen, samples, mass, shortest_range(shares, mass), rows,
                            settings={"lengths": lengths, "batch_size": batch_size, "seed": seed,
                                      "device": str(device), "mode": "eval (batch norm uses running statistics)"},
                            notes=notes)
    spec = getattr(model, "spec", None)
    if spec is not None:
        from ..registry import spec_overrides

        result.overrides = spec_overrides(spec)
    return result


def _combine(world: World, sums: dict[int, float], per_sample: dict[int, list[float]],
             seen: int) -> tuple[dict[int, float], dict[int, list[float]], int]:
    """Every rank's sums, per-sample means (in batch order: ranks hold consecutive batches) and image count."""
    if not world.distributed:
        return sums, per_sample, seen
    parts = world.gather((sums, per_sample, seen))
    return ({k: sum(p[0][k] for p in parts) for k in sums},
            {k: [v for p in parts for v in p[1][k]] for k in per_sample}, sum(p[2] for p in parts))


def _check_lengths(refs: Sequence[Any], lengths: Sequence[int] | None, mass: float) -> list[int]:
    """The lengths to measure, sorted, after refusing a network or request the measurement cannot serve."""
    n = len(refs)
    if n == 0:
        raise ResnetCliError("this network has no residual blocks")
    if not all(getattr(r.module, "has_shortcut", True) for r in refs):
        raise ResnetCliError("a plain network has no shortcuts: all its gradient takes the one full-length path")
    lengths = sorted(set(range(n + 1) if lengths is None else lengths))
    if not lengths or lengths[0] < 0 or lengths[-1] > n:
        raise ResnetCliError(f"path lengths must lie in 0..{n} (the network has {n} residual blocks)")
    if not 0 < mass <= 1:
        raise ResnetCliError(f"the gradient mass to cover is a fraction in (0, 1], not {mass}")
    return lengths


def _rows(measured: dict[int, float], per_sample: dict[int, list[float]], n: int) -> tuple[list[LengthRow],
                                                                                          list[float]]:
    """One row per length 0..n (unmeasured ones interpolated), and each length's share of the gradient."""
    log_m = _interpolate_logs({k: (math.log(v) if v > 0 else -math.inf) for k, v in measured.items()}, n)
    shares = length_shares(log_m, n)
    rows = []
    for k in range(n + 1):
        mag = measured.get(k, math.exp(log_m[k]) if log_m[k] > -math.inf else 0.0)
        vals = per_sample.get(k, [])
        mean = sum(vals) / len(vals) if vals else mag
        std = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5 if vals else 0.0
        rows.append(LengthRow(k, math.comb(n, k), k in measured, mag, std, shares[k]))
    return rows, shares


def _interpolate_logs(known: dict[int, float], n: int) -> list[float]:
    ks = sorted(known)
    out = []
    for k in range(n + 1):
        if k in known:
            out.append(known[k])
        elif k < ks[0]:
            out.append(known[ks[0]])
        elif k > ks[-1]:
            out.append(known[ks[-1]])
        else:
            lo = max(j for j in ks if j < k)
            hi = min(j for j in ks if j > k)
            a, b = known[lo], known[hi]
            if a == -math.inf or b == -math.inf:
                out.append(-math.inf)
            else:
                out.append(a + (b - a) * (k - lo) / (hi - lo))
    return out
