"""Lesion studies (Veit, Wilber & Belongie 2016, "Residual Networks Behave Like Ensembles of Relatively Shallow
Networks", §4-5): delete or reorder the residual blocks of a trained network and measure its test error.

* **single**: each block deleted alone. "Deleted" means its residual branch goes and its shortcut stays
  (``block.skip``: the projection or zero-padding on a downsampling block). On a plain net an identity stands in
  for a layer where the shapes allow; the others cannot be removed and are listed as skipped.
* **multi**: ``k`` random blocks deleted at once, ``k = 1..K``, ``R`` samples each.
* **reorder**: ``k`` random disjoint pairs of blocks with the same input and output shape trade places.

Engine. A configuration is one op per position of ``model.sequence()`` (run the module that sits there, run
another same-shaped module there, or run ``skip``). Configurations are put in a prefix tree over these op
sequences, so what several configurations share is computed once per batch: the stem and the unaltered prefix
up to the first deleted block (and any longer shared prefix), for every configuration of a chunk at once. The
tree is walked depth first with the largest subtree last, so only the activations at pending branch points are
held. Correct counts accumulate on the device (one tensor per chunk, no host synchronisation per
configuration); on CUDA the study runs under inference mode, bf16 (or fp16) autocast and channels_last on a copy
of the model. CUDA out-of-memory halves the batch and retries it. The naive engine (a full forward pass per
configuration) is kept as the correctness oracle and the benchmark's baseline: on the CPU both give the same
counts bit for bit, since they run the same kernels on the same tensors.

Reliability. Measurements are grouped in chunks (single; multi at one k; reorder at one k); each chunk is one
pass over the data. With a ``state_path`` every finished chunk, and the running counts of the current one (at
batch boundaries, every ``save_every`` seconds and on Ctrl-C), are written atomically; ``resume=True``
continues from them. The model is never changed: no hooks, no in-place edits; training flags are restored.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ResnetCliError

EXPERIMENTS = ("single", "multi", "reorder")
ERROR_UNIT = "fraction of images misclassified (top-1), 0..1"


class LesionInterrupted(ResnetCliError):
    """Ctrl-C during a study: what was finished is on disk and ``--resume`` continues."""

    exit_code = 130


# --------------------------------------------------------------------------- configurations
@dataclass(frozen=True)
class Config:
    """One lesioned network: blocks (by ``BlockRef.index``) whose residual branch is deleted, and disjoint
    pairs of blocks that trade places."""

    deleted: tuple[int, ...] = ()
    swaps: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"deleted": list(self.deleted), "swaps": [list(p) for p in self.swaps]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return cls(tuple(d.get("deleted", ())), tuple(tuple(p) for p in d.get("swaps", ())))


@dataclass(frozen=True)
class Measurement:
    key: str  # "baseline", "single/3", "multi/k=2/s=0", "reorder/k=1/s=4"
    experiment: str  # baseline | single | multi | reorder
    k: int
    config: Config


@dataclass
class BlockInfo:
    """What the shape probe learnt about one block."""

    index: int
    name: str
    stage: int
    position: int  # in model.sequence()
    downsample: bool
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    removable: bool
    reason: str = ""  # why it cannot be removed

    @property
    def swappable(self) -> bool:
        return not self.downsample and self.in_shape == self.out_shape


class Layout:
    """The model seen through its interface: stem, the modules between stem and head, the head."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.sequence = list(model.sequence())
        self.modules = [m for m, _ in self.sequence]
        self.refs = [r for _, r in self.sequence]
        self.position = {r.index: p for p, r in enumerate(self.refs) if r is not None}
        self.blocks: list[BlockInfo] = []

    def probe(self, x: Any) -> None:
        """Run one image through the model to learn each block's shapes and whether ``skip`` can stand in."""
        import torch

        with torch.inference_mode():
            h = self.model.forward_stem(x[:1])
            for p, (module, ref) in enumerate(self.sequence):
                out = module(h)
                if ref is not None:
                    removable, reason = True, ""
                    try:
                        skipped = module.skip(h)
                        if tuple(skipped.shape) != tuple(out.shape):
                            removable, reason = False, "its skip gives another shape than the block"
                    except ValueError as exc:
                        removable, reason = False, str(exc)
                    self.blocks.append(BlockInfo(ref.index, ref.name, ref.stage, p, bool(ref.downsample),
                                                 tuple(h.shape[1:]), tuple(out.shape[1:]), removable, reason))
                h = out

    def ops(self, config: Config) -> tuple[tuple[str, int], ...]:
        """One op per sequence position: ("run", p) runs the module at position p there, ("skip", p) its skip."""
        placed = list(range(len(self.sequence)))
        for a, b in config.swaps:
            pa, pb = self.position[a], self.position[b]
            placed[pa], placed[pb] = placed[pb], placed[pa]
        deleted = {self.position[i] for i in config.deleted}
        return tuple(("skip" if src in deleted else "run", src) for src in placed)

    def apply(self, op: tuple[str, int], h: Any) -> Any:
        kind, p = op
        return self.modules[p].skip(h) if kind == "skip" else self.modules[p](h)


def single_measurements(blocks: Sequence[BlockInfo]) -> list[Measurement]:
    return [Measurement(f"single/{b.index}", "single", 1, Config((b.index,))) for b in blocks if b.removable]


def multi_measurements(blocks: Sequence[BlockInfo], max_k: int, samples: int, seed: int) -> list[Measurement]:
    """``samples`` random sets of ``k`` removable blocks for k = 1..max_k (Veit et al. Fig. 5a)."""
    rng = random.Random(f"{seed}:multi")  # own stream: choosing other experiments does not change these
    pool = [b.index for b in blocks if b.removable]
    out = []
    for k in range(1, min(max_k, len(pool)) + 1):
        for s, chosen in enumerate(distinct_subsets(rng, pool, k, samples)):
            out.append(Measurement(f"multi/k={k}/s={s}", "multi", k, Config(chosen)))
    return out


def distinct_subsets(rng: random.Random, pool: Sequence[int], k: int, samples: int) -> list[tuple[int, ...]]:
    """``samples`` different k-subsets of ``pool`` (sorted tuples), or all C(n, k) of them when there are no more:
    deleting the same set twice would repeat a measurement and understate the spread."""
    total = math.comb(len(pool), k)
    if total <= max(samples, 10_000):
        every = list(itertools.combinations(sorted(pool), k))
        return every if total <= samples else rng.sample(every, samples)
    seen: dict[tuple[int, ...], None] = {}
    while len(seen) < samples:  # more than 10,000 subsets and more than samples: repeats are rare
        seen.setdefault(tuple(sorted(rng.sample(list(pool), k))), None)
    return list(seen)


def reorder_measurements(blocks: Sequence[BlockInfo], max_k: int, samples: int, seed: int) -> list[Measurement]:
    """``samples`` random sets of ``k`` disjoint swaps among blocks of equal input and output shape that do not
    downsample (Veit et al. Fig. 5b), for every k that enough such blocks allow, up to max_k."""
    rng = random.Random(f"{seed}:reorder")
    classes: dict[tuple[int, ...], list[int]] = {}
    for b in blocks:
        if b.swappable:
            classes.setdefault(b.in_shape, []).append(b.index)
    most = sum(len(c) // 2 for c in classes.values())
    out = []
    for k in range(1, min(max_k, most) + 1):
        seen: set[tuple[tuple[int, int], ...]] = set()
        # distinct sets of swaps; where there are fewer than ``samples``, as many as 50 tries per sample find
        for _attempt in range(50 * samples):
            if len(seen) == samples:
                break
            free = {shape: list(c) for shape, c in classes.items()}
            pairs = []
            for _ in range(k):
                # uniform over the pairs still available, so large stages get proportionally more swaps
                options = [(shape, len(c) * (len(c) - 1) // 2) for shape, c in free.items() if len(c) >= 2]
                shape = rng.choices([o[0] for o in options], weights=[o[1] for o in options])[0]
                a, b = rng.sample(free[shape], 2)
                free[shape].remove(a)
                free[shape].remove(b)
                pairs.append((min(a, b), max(a, b)))
            swaps = tuple(sorted(pairs))
            if swaps in seen:
                continue
            out.append(Measurement(f"reorder/k={k}/s={len(seen)}", "reorder", k, Config(swaps=swaps)))
            seen.add(swaps)
    return out


# --------------------------------------------------------------------------- the prefix tree
@dataclass
class Node:
    start: int  # sequence position of the first op in ``segment``
    segment: tuple[tuple[str, int], ...]  # ops shared by every configuration below
    children: list[Node] = field(default_factory=list)
    leaf_ids: list[int] = field(default_factory=list)  # configurations that end here (identical op lists)
    size: int = 0  # configurations below
    leaf_index: Any = None  # the ids as a device tensor, made once per chunk


def build_tree(op_lists: Sequence[tuple[tuple[str, int], ...]]) -> Node:
    """The prefix tree of the configurations' op lists (built with a stack: a ResNet-1202 is 600 levels deep)."""
    n = len(op_lists[0]) if op_lists else 0
    root = Node(0, (), size=len(op_lists))
    stack: list[tuple[Node, list[int]]] = [(root, list(range(len(op_lists))))]
    while stack:
        node, ids = stack.pop()
        q = node.start
        first = op_lists[ids[0]]
        while q < n and all(op_lists[i][q] == first[q] for i in ids):
            q += 1
        node.segment = first[node.start:q]
        if q == n:
            node.leaf_ids = list(ids)
            continue
        groups: dict[tuple[str, int], list[int]] = {}
        for i in ids:
            groups.setdefault(op_lists[i][q], []).append(i)
        # largest subtree last: the walk drops the branch point's activation when it follows that one
        children = sorted(((Node(q, (), size=len(g)), g) for g in groups.values()), key=lambda c: c[0].size)
        node.children = [c for c, _ in children]
        stack.extend(children)
    return root


def tree_op_counts(root: Node) -> dict[str, int]:
    """Module runs, skips and head runs one batch costs: for the MACs a benchmark reports."""
    counts = {"run": 0, "skip": 0, "head": 0}
    stack = [root]
    while stack:
        node = stack.pop()
        for kind, _ in node.segment:
            counts[kind] += 1
        counts["head"] += 1 if node.leaf_ids else 0
        stack.extend(node.children)
    return counts


def executed_ops(layout: Layout, op_lists: Sequence[tuple[tuple[str, int], ...]], engine: str) -> list[tuple[str, int]]:
    """Every op one batch runs, for costing: the tree's nodes (cached) or every configuration in full (naive)."""
    if engine == "naive":
        return [op for ops in op_lists for op in ops]
    out: list[tuple[str, int]] = []
    stack = [build_tree(op_lists)]
    while stack:
        node = stack.pop()
        out.extend(node.segment)
        stack.extend(node.children)
    return out


class Executor:
    """Counts, for one batch, the correctly classified images of every configuration."""

    def __init__(self, layout: Layout, op_lists: Sequence[tuple[tuple[str, int], ...]], engine: str,
                 device: Any) -> None:
        import torch

        self.layout, self.op_lists, self.engine = layout, list(op_lists), engine
        self.n = len(op_lists)
        if engine == "cached":
            self.root = build_tree(self.op_lists)
            stack = [self.root]
            while stack:
                node = stack.pop()
                if node.leaf_ids:
                    node.leaf_index = torch.tensor(node.leaf_ids, dtype=torch.long, device=device)
                stack.extend(node.children)
        elif engine != "naive":
            raise ValueError(f"unknown engine {engine!r}: cached or naive")

    def __call__(self, x: Any, y: Any, counts: Any) -> None:
        model = self.layout.model
        if self.engine == "naive":
            for i, ops in enumerate(self.op_lists):
                h = model.forward_stem(x)
                for op in ops:
                    h = self.layout.apply(op, h)
                counts[i] += (model.forward_head(h).argmax(1) == y).sum()
            return
        self._walk(self.root, model.forward_stem(x), y, counts)

    def _walk(self, node: Node, h: Any, y: Any, counts: Any) -> None:
        apply = self.layout.apply
        while True:
            for op in node.segment:
                h = apply(op, h)
            if not node.children:
                hits = (self.layout.model.forward_head(h).argmax(1) == y).sum()
                counts.index_add_(0, node.leaf_index, hits.expand(len(node.leaf_ids)))
                return
            for child in node.children[:-1]:
                self._walk(child, h, y, counts)
            node = node.children[-1]


# --------------------------------------------------------------------------- running a study
@dataclass
class SingleRow:
    block: str
    index: int
    stage: int
    downsample: bool
    error: float
    correct: int


@dataclass
class KRow:
    k: int
    errors: list[float]
    configs: list[dict[str, Any]]

    @property
    def mean(self) -> float:
        return sum(self.errors) / len(self.errors)

    @property
    def std(self) -> float:
        m = self.mean
        return (sum((e - m) ** 2 for e in self.errors) / len(self.errors)) ** 0.5


@dataclass
class LesionResult:
    arch: str
    residual: bool
    dataset: str
    images: int
    baseline_error: float
    single: list[SingleRow]
    multi: list[KRow]
    reorder: list[KRow]
    skipped: list[dict[str, Any]]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def krows(rows: list[KRow]) -> list[dict[str, Any]]:
            return [{"k": r.k, "errors": r.errors, "mean": r.mean, "std": r.std, "configs": r.configs}
                    for r in rows]

        return {
            "arch": self.arch,
            "residual": self.residual,
            "dataset": self.dataset,
            "images": self.images,
            "units": {"error": ERROR_UNIT, "k": "blocks deleted (multi) or pairs swapped (reorder)"},
            "baseline_error": self.baseline_error,
            "single": [{"block": r.block, "index": r.index, "stage": r.stage, "downsample": r.downsample,
                        "error": r.error} for r in self.single],
            "multi": krows(self.multi),
            "reorder": krows(self.reorder),
            "skipped": self.skipped,
            "settings": self.settings,
            "notes": self.notes,
        }


def model_fingerprint(model: Any) -> str:
    """sha256 over the state dict's tensors in order (shapes and bytes; not the key names, so that a wrapper
    around the same network matches): a resumed study must measure the same weights."""
    import torch

    h = hashlib.sha256()
    for t in model.state_dict().values():
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _data_fingerprint(images: Any, labels: Any) -> str:
    import torch

    h = hashlib.sha256()
    for t in (images, labels):
        h.update(t.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


@contextmanager
def prepared_model(model: Any, device: Any, channels_last: bool):
    """The model ready for inference on ``device``, leaving the caller's model as it was: a copy when it must
    move or change memory format, else the model itself in eval mode with its training flags restored after."""
    import torch

    params = list(model.parameters()) + list(model.buffers())
    current = params[0].device if params else torch.device("cpu")
    if current != device or channels_last:
        work = copy.deepcopy(model).to(device)
        if channels_last:
            work = work.to(memory_format=torch.channels_last)
        yield work.eval()
        return
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training


def _oom_error_types() -> tuple[type[BaseException], ...]:
    import torch

    types: list[type[BaseException]] = []
    for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)):
        if t is not None and t not in types:
            types.append(t)
    return tuple(types)


def lesion_study(
    model: Any,
    images: Any,
    labels: Any,
    *,
    experiments: Sequence[str] = EXPERIMENTS,
    max_k: int = 10,
    samples: int = 10,
    seed: int = 0,
    batch_size: int = 256,
    device: Any = None,
    engine: str = "cached",
    amp: bool | None = None,
    channels_last: bool | None = None,
    state_path: str | Path | None = None,
    resume: bool = False,
    save_every: float = 10.0,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int, str], None] | None = None,
    on_chunk: Callable[[dict[str, Any]], None] | None = None,
    arch: str = "",
    dataset: str = "",
    residual: bool | None = None,
) -> LesionResult:
    """Run the lesion study of ``model`` on ``images`` (N x C x H x W, normalised) and ``labels`` (N).

    ``on_start(total)`` gets the images the whole study will run (images x chunks); ``on_progress(images, label)``
    is called after every batch (it may raise KeyboardInterrupt: the study then
    saves and raises ``LesionInterrupted``); ``on_chunk(state)`` after every finished chunk.
    """
    import torch

    unknown = [e for e in experiments if e not in EXPERIMENTS]
    if unknown:
        raise ResnetCliError(f"unknown experiment {unknown[0]!r}: choose from {', '.join(EXPERIMENTS)}")
    experiments = [e for e in EXPERIMENTS if e in experiments]  # one order, whatever order they were given in
    if len(images) != len(labels) or len(images) == 0:
        raise ResnetCliError("the lesion study needs at least one labelled image")
    device = torch.device(device) if device is not None else torch.device("cpu")
    on_cuda = device.type == "cuda"
    amp = on_cuda if amp is None else amp
    # channels_last (NHWC) is what cuDNN's fastest convolutions want; only for image batches (N x C x H x W)
    channels_last = (on_cuda if channels_last is None else channels_last) and images.dim() == 4
    amp_dtype = None
    if amp and on_cuda:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    residual = getattr(getattr(model, "spec", None), "residual", True) if residual is None else residual
    notes: list[str] = []

    with prepared_model(model, device, channels_last=channels_last) as work:
        layout = Layout(work)
        probe_x = images[:1].to(device)
        layout.probe(probe_x.to(memory_format=torch.channels_last) if channels_last else probe_x)
        blocks = layout.blocks
        skipped = [{"block": b.name, "index": b.index, "reason": b.reason} for b in blocks if not b.removable]
        if skipped:
            notes.append(f"{len(skipped)} of {len(blocks)} layers cannot be replaced by an identity "
                         f"(they change the shape) and are left in place: "
                         + ", ".join(s["block"] for s in skipped))

        chunks: list[tuple[str, list[Measurement]]] = [("baseline", [Measurement("baseline", "baseline", 0,
                                                                                 Config())])]
        if "single" in experiments:
            chunks[0] = ("single", chunks[0][1] + single_measurements(blocks))
        if "multi" in experiments:
            ms = multi_measurements(blocks, max_k, samples, seed)
            chunks += [(f"multi/k={k}", [m for m in ms if m.k == k]) for k in sorted({m.k for m in ms})]
        if "reorder" in experiments:
            rs = reorder_measurements(blocks, max_k, samples, seed)
            chunks += [(f"reorder/k={k}", [m for m in rs if m.k == k]) for k in sorted({m.k for m in rs})]
            most = max((m.k for m in rs), default=0)
            if most < max_k:
                notes.append(f"reorder stops at k={most}: no more disjoint pairs of equal-shaped blocks")

        study = {"arch": arch, "dataset": dataset, "images": len(images), "experiments": list(experiments),
                 "max_k": max_k, "samples": samples, "seed": seed, "model": model_fingerprint(model),
                 "data": _data_fingerprint(images, labels)}
        state = _load_state(state_path, study, resume)

        n_images = len(images)
        keep_on_device = on_cuda and images.numel() * images.element_size() < 2 * 1024**3
        data_x = images.to(device) if keep_on_device else images
        data_y = labels.to(device) if keep_on_device else labels
        oom_types = _oom_error_types()
        autocast = (torch.autocast(device_type="cuda", dtype=amp_dtype) if amp_dtype is not None else nullcontext())

        if on_start:
            on_start(n_images * len(chunks))
        for chunk_name, measurements in chunks:
            if all(m.key in state["done"] for m in measurements):
                if on_progress:
                    on_progress(n_images, chunk_name)
                continue
            op_lists = [layout.ops(m.config) for m in measurements]
            run = Executor(layout, op_lists, engine, device)
            counts = torch.zeros(len(measurements), dtype=torch.long, device=device)
            start = 0
            partial = state.get("partial")
            if partial and partial["chunk"] == chunk_name and partial["keys"] == [m.key for m in measurements]:
                start = int(partial["images_done"])
                counts += torch.tensor(partial["correct"], dtype=torch.long, device=device)
                if on_progress and start:
                    on_progress(start, chunk_name)
            bs, i, last_save = batch_size, start, time.monotonic()

            def save_partial() -> None:
                state["partial"] = {"chunk": chunk_name, "keys": [m.key for m in measurements], "images_done": i,  # noqa: B023 (called in this iteration only)
                                    "correct": counts.tolist()}  # noqa: B023
                _save_state(state_path, state)

            try:
                while i < n_images:
                    xb = data_x[i:i + bs].to(device, non_blocking=True)
                    yb = data_y[i:i + bs].to(device, non_blocking=True)
                    if channels_last:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                    batch_counts = torch.zeros_like(counts)
                    try:
                        with torch.inference_mode(), autocast:
                            run(xb, yb, batch_counts)
                    except oom_types:
                        del xb, yb, batch_counts
                        if on_cuda:
                            torch.cuda.empty_cache()
                        if bs == 1:
                            raise ResnetCliError("out of memory even with a batch of one image") from None
                        bs = max(1, bs // 2)
                        msg = f"out of memory: batch size halved to {bs}"
                        if msg not in notes:
                            notes.append(msg)
                        continue
                    counts += batch_counts  # only whole batches count, so an interrupted batch is redone
                    i += len(xb)
                    if state_path is not None and time.monotonic() - last_save > save_every and i < n_images:
                        save_partial()
                        last_save = time.monotonic()
                    if on_progress:
                        on_progress(len(xb), chunk_name)
            except KeyboardInterrupt:
                if state_path is not None:
                    save_partial()
                    raise LesionInterrupted(
                        f"interrupted: {len(state['done'])} measurements and {i} of {n_images} images of "
                        f"'{chunk_name}' kept in {state_path}; run again with --resume to continue") from None
                raise
            for m, c in zip(measurements, counts.tolist()):
                state["done"][m.key] = {"experiment": m.experiment, "k": m.k, "config": m.config.to_dict(),
                                        "correct": int(c), "images": n_images}
            state["partial"] = None
            if state_path is not None:
                _save_state(state_path, state)
            if on_chunk:
                on_chunk(state)

    return _result(state, blocks, skipped, n_images, arch, dataset, bool(residual), notes,
                   settings={"experiments": list(experiments), "max_k": max_k, "samples": samples, "seed": seed,
                             "batch_size": batch_size, "engine": engine, "device": str(device),
                             "autocast": str(amp_dtype).replace("torch.", "") if amp_dtype else None,
                             "channels_last": channels_last})


def _result(state: dict[str, Any], blocks: list[BlockInfo], skipped: list[dict[str, Any]], n_images: int,
            arch: str, dataset: str, residual: bool, notes: list[str], settings: dict[str, Any]) -> LesionResult:
    done = state["done"]

    def err(key: str) -> float:
        return 1.0 - done[key]["correct"] / done[key]["images"]

    single = [SingleRow(b.name, b.index, b.stage, b.downsample, err(f"single/{b.index}"), done[f"single/{b.index}"]
                        ["correct"]) for b in blocks if f"single/{b.index}" in done]

    def krows(experiment: str) -> list[KRow]:
        by_k: dict[int, KRow] = {}
        for key, d in done.items():  # insertion order = sample order
            if d["experiment"] == experiment:
                row = by_k.setdefault(d["k"], KRow(d["k"], [], []))
                row.errors.append(err(key))
                row.configs.append(d["config"]["deleted"] if experiment == "multi" else d["config"]["swaps"])
        return [by_k[k] for k in sorted(by_k)]

    return LesionResult(arch, residual, dataset, n_images, err("baseline"), single, krows("multi"),
                        krows("reorder"), skipped, settings, notes)


def _load_state(path: str | Path | None, study: dict[str, Any], resume: bool) -> dict[str, Any]:
    fresh = {"study": study, "done": {}, "partial": None}
    if path is None:
        return fresh
    path = Path(path)
    if not path.exists():
        return fresh
    if not resume:
        raise ResnetCliError(f"{path} already holds a lesion study: pass --resume to continue it, or choose "
                             f"another --out")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResnetCliError(f"cannot read {path} to resume: {exc}") from None
    old = state.get("study", {})
    diff = [k for k in study if old.get(k) != study[k]]
    if diff:
        raise ResnetCliError(f"{path} holds a different study ({', '.join(diff)} differ): resume with the same "
                             f"checkpoint and options, or choose another --out")
    state.setdefault("partial", None)
    return state


def _save_state(path: str | Path | None, state: dict[str, Any]) -> None:
    if path is None:
        return
    from ..fileio import atomic_write_text

    atomic_write_text(path, json.dumps(state, indent=1))


def measurements_csv(state: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["key", "experiment", "k", "deleted", "swaps", "correct", "images", "error"]
    rows = []
    for key, d in state["done"].items():
        cfg = d["config"]
        rows.append([key, d["experiment"], d["k"], " ".join(map(str, cfg["deleted"])),
                     " ".join(f"{a}-{b}" for a, b in cfg["swaps"]), d["correct"], d["images"],
                     f"{1 - d['correct'] / d['images']:.6f}"])
    return header, rows
