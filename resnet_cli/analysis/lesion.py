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
configuration). The stacked engine walks the same tree position by position, running the branches that run the
same op there as one stacked batch (fewer, larger kernels: small nets on a GPU). On CUDA the study runs under
inference mode, bf16 (or fp16) autocast and channels_last on a copy of the model. CUDA out-of-memory halves
the batch and retries it. The naive engine (a full forward pass per configuration) is kept as the correctness
oracle and the benchmark's baseline: on the CPU the cached and naive engines give the same counts bit for bit,
since they run the same kernels on the same tensors; the stacked one gives them too wherever an image's result
does not depend on its batch-mates (the tests check it on the CPU).

Reliability. Measurements are grouped in chunks (single; multi at one k; reorder at one k); each chunk is one
pass over the data. With a ``state_path`` every finished chunk, and the running counts of the current one (at
batch boundaries, every ``save_every`` seconds and on Ctrl-C), are written atomically; ``resume=True``
continues from them. The model is never changed: no hooks, no in-place edits; training flags are restored.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..devices import autocast_dtype, channels_last_for, to_device
from ..distributed import SINGLE, World
from ..errors import ResnetCliError
from ..plan.layers import shape_change
from ..progress import Counter, Progress
from .lesion_state import StudyState, model_fingerprint

EXPERIMENTS = ("single", "multi", "reorder")
ENGINES = ("cached", "stacked", "naive")
#: The stacked engine's largest batch in one call, in images (the branches' batches stacked together).
STACK_LIMIT = 8192
ERROR_UNIT = "fraction of images misclassified (top-1), 0..1"


class LesionInterrupted(ResnetCliError):
    """Ctrl-C during a study: what was finished is on disk, and resuming the study continues it."""

    exit_code = 130

    def __init__(self, kept: str, how_to_continue: str = "resume the study to continue") -> None:
        super().__init__(f"interrupted: {kept}; {how_to_continue}")
        self.kept = kept  # what is on disk, where


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
    shape_change: str | None = None  # "downsampling", "projection" (plan/layers.py shape_change) or None

    @property
    def swappable(self) -> bool:
        return not self.downsample and self.in_shape == self.out_shape


def _shape_changes(model: Any) -> dict[str, str | None]:
    """Each block's shape change, as its plan says it (the one source of architecture facts); none for a network
    built without a spec (the probe's shapes say it then)."""
    spec = getattr(model, "spec", None)
    if spec is None:
        return {}
    from ..plan import plan_model

    return {unit.name: unit.shape_change for unit in plan_model(spec).blocks}


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

        changes = _shape_changes(self.model)
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
                    shapes = tuple(h.shape[1:]), tuple(out.shape[1:])
                    change = changes[ref.name] if ref.name in changes else shape_change(*shapes, ref.downsample)
                    self.blocks.append(BlockInfo(ref.index, ref.name, ref.stage, p, bool(ref.downsample), *shapes,
                                                 removable, reason, change))
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


def executed_ops(op_lists: Sequence[tuple[tuple[str, int], ...]], engine: str) -> list[tuple[str, int]]:
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
        if engine in ("cached", "stacked"):
            self.root = build_tree(self.op_lists)
            stack = [self.root]
            while stack:
                node = stack.pop()
                if node.leaf_ids:
                    node.leaf_index = torch.tensor(node.leaf_ids, dtype=torch.long, device=device)
                stack.extend(node.children)
        elif engine != "naive":
            raise ValueError(f"unknown engine {engine!r}: {', '.join(ENGINES)}")

    def __call__(self, x: Any, y: Any, counts: Any) -> None:
        model = self.layout.model
        if self.engine == "naive":
            for i, ops in enumerate(self.op_lists):
                h = model.forward_stem(x)
                for op in ops:
                    h = self.layout.apply(op, h)
                counts[i] += (model.forward_head(h).argmax(1) == y).sum()
            return
        if self.engine == "stacked":
            self._stacked(x, y, counts)
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

    def _stacked(self, x: Any, y: Any, counts: Any) -> None:
        """The tree walked position by position: at each position of the sequence, the pending branches that run
        the same op there run it once, their activations stacked into one larger batch (many small kernels
        become few large ones: what a GPU wants for a small network), then split again. Every branch is
        pending at once, so memory grows with the tree's width (at most ``STACK_LIMIT`` images per call)."""
        import torch

        apply, b = self.layout.apply, len(x)
        frontier = self._expand([(self.root, 0, self.layout.model.forward_stem(x))])
        while frontier and frontier[0][1] < len(frontier[0][0].segment):
            groups: dict[tuple[str, int], list[int]] = {}
            for i, (node, at, _) in enumerate(frontier):
                groups.setdefault(node.segment[at], []).append(i)
            out: list[Any] = [None] * len(frontier)
            for op, members in groups.items():
                step = max(1, STACK_LIMIT // b)
                for lo in range(0, len(members), step):
                    part = members[lo:lo + step]
                    hs = apply(op, torch.cat([frontier[i][2] for i in part])).split(b)
                    for i, h in zip(part, hs):
                        out[i] = h
            frontier = self._expand([(node, at + 1, h) for (node, at, _), h in zip(frontier, out)])
        step = max(1, STACK_LIMIT // b)
        for lo in range(0, len(frontier), step):
            part = frontier[lo:lo + step]
            logits = self.layout.model.forward_head(torch.cat([h for _, _, h in part]))
            hits = (logits.argmax(1) == y.repeat(len(part))).view(len(part), b).sum(1)
            for (node, _, _), n_hits in zip(part, hits):
                counts.index_add_(0, node.leaf_index, n_hits.expand(len(node.leaf_ids)))

    @staticmethod
    def _expand(items: list[tuple[Node, int, Any]]) -> list[tuple[Node, int, Any]]:
        """Items at the end of their node's segment replaced by the node's children (sharing the activation)."""
        out = []
        stack = list(reversed(items))
        while stack:
            node, at, h = stack.pop()
            if at == len(node.segment) and node.children:
                stack.extend((child, 0, h) for child in reversed(node.children))
            else:
                out.append((node, at, h))
        return out


# --------------------------------------------------------------------------- running a study
@dataclass
class SingleRow:
    block: str
    index: int
    stage: int
    shape_change: str | None  # "downsampling", "projection" (plan/layers.py SHAPE_CHANGES) or None
    error: float
    correct: int

    @property
    def downsample(self) -> bool:
        """The block shrinks the map (a projection block, which keeps it, does not)."""
        return self.shape_change == "downsampling"


@dataclass
class KRow:
    k: int
    errors: list[float]
    configs: list[dict[str, Any]]
    correct: list[int] = field(default_factory=list)

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
    # What was built: the spec fields that differ from the registered arch, and the classes (for chance level).
    overrides: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    baseline_correct: int | None = None

    def to_dict(self) -> dict[str, Any]:
        def krows(rows: list[KRow]) -> list[dict[str, Any]]:
            return [{"k": r.k, "errors": r.errors, "correct": r.correct, "mean": r.mean, "std": r.std,
                     "configs": r.configs} for r in rows]

        return {
            "arch": self.arch,
            "overrides": self.overrides,
            "residual": self.residual,
            "dataset": self.dataset,
            "num_classes": self.num_classes,
            "images": self.images,
            "units": {"error": ERROR_UNIT, "k": "blocks deleted (multi) or pairs swapped (reorder)"},
            "baseline_error": self.baseline_error,
            "baseline_correct": self.baseline_correct,
            "single": [{"block": r.block, "index": r.index, "stage": r.stage, "downsample": r.downsample,
                        "shape_change": r.shape_change, "error": r.error, "correct": r.correct}
                       for r in self.single],
            "multi": krows(self.multi),
            "reorder": krows(self.reorder),
            "skipped": self.skipped,
            "settings": self.settings,
            "notes": self.notes,
        }


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


# --------------------------------------------------------------------------- chunk planning
@dataclass(frozen=True)
class Chunk:
    """Measurements run in one pass over the data: the baseline with the single deletions, or multi or reorder
    at one k. The unit of resuming (with the running counts of an unfinished one)."""

    name: str  # "single" (or "baseline" alone), "multi/k=2", "reorder/k=1"
    measurements: list[Measurement]

    @property
    def keys(self) -> list[str]:
        return [m.key for m in self.measurements]


def plan_chunks(blocks: Sequence[BlockInfo], experiments: Sequence[str], max_k: int, samples: int,
                seed: int) -> tuple[list[Chunk], list[str]]:
    """The study's chunks in order, and notes on what the blocks did not allow."""
    from ..limits import MAX_LESION_MEASUREMENTS, check_samples

    check_samples(samples)
    sampled = sum(1 for e in experiments if e in ("multi", "reorder")) * min(max_k, len(blocks)) * samples
    if sampled > MAX_LESION_MEASUREMENTS:  # refused before any is drawn
        raise ResnetCliError(f"this study would make up to {sampled:,} measurements ({samples:,} samples for each "
                             f"of up to {min(max_k, len(blocks))} k); the limit is {MAX_LESION_MEASUREMENTS:,}: lower "
                             f"--samples or --max-k")
    baseline = [Measurement("baseline", "baseline", 0, Config())]
    if "single" in experiments:
        chunks = [Chunk("single", baseline + single_measurements(blocks))]
    else:
        chunks = [Chunk("baseline", baseline)]
    notes = []
    for experiment, measure in (("multi", multi_measurements), ("reorder", reorder_measurements)):
        if experiment not in experiments:
            continue
        ms = measure(blocks, max_k, samples, seed)
        ks = sorted({m.k for m in ms})
        chunks += [Chunk(f"{experiment}/k={k}", [m for m in ms if m.k == k]) for k in ks]
        if experiment == "reorder" and not ks:  # a net of one block per stage: nothing to swap at all
            notes.append("reorder: no two blocks of equal shape to swap (a downsampling block is never swapped)")
        elif experiment == "reorder" and ks[-1] < max_k:
            notes.append(f"reorder stops at k={ks[-1]}: no more disjoint pairs of equal-shaped blocks")
    return chunks, notes


def _unremovable(blocks: Sequence[BlockInfo]) -> tuple[list[dict[str, Any]], list[str]]:
    """The blocks no identity can stand in for, and the note saying so."""
    skipped = [{"block": b.name, "index": b.index, "reason": b.reason} for b in blocks if not b.removable]
    if not skipped:
        return [], []
    return skipped, [f"{len(skipped)} of {len(blocks)} layers cannot be replaced by an identity (they change the "
                     f"shape) and are left in place: " + ", ".join(s["block"] for s in skipped)]


# --------------------------------------------------------------------------- running a chunk
@dataclass(frozen=True)
class Runtime:
    """How batches run on the device: autocast dtype (CUDA: bf16 where supported, else fp16) and memory format
    (channels_last, NHWC, is what cuDNN's fastest convolutions want; only for image batches)."""

    device: Any
    amp_dtype: Any
    channels_last: bool

    @classmethod
    def choose(cls, device: Any, amp: bool | None, channels_last: bool | None, images: Any) -> Runtime:
        """None for ``amp`` or ``channels_last``: what ``devices`` chooses for the device (both on CUDA)."""
        import torch

        device = torch.device(device) if device is not None else torch.device("cpu")
        wanted = channels_last_for(device, images) if channels_last is None else channels_last
        return cls(device, autocast_dtype(device, amp is not False), wanted and images.dim() == 4)

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> Any:
        import torch

        return torch.autocast(device_type="cuda", dtype=self.amp_dtype) if self.amp_dtype is not None else nullcontext()

    def prepare(self, x: Any) -> Any:
        """A batch on the device in the memory format the model copy has."""
        return to_device(x, self.device, self.channels_last)

    def settings(self) -> dict[str, Any]:
        return {"device": str(self.device),
                "autocast": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else None,
                "channels_last": self.channels_last}


class ChunkRunner:
    """Runs chunks over the data batch by batch and records them in the study's state.

    The images are streamed (``data.stream.ImageStream``): one pass over this rank's share per chunk, each batch
    read, measured with every configuration of the chunk, and dropped. A chunk already done is skipped; an
    interrupted one continues from its kept counts. CUDA out of memory halves the batch and retries it; the running
    counts are kept every ``save_every`` seconds, on Ctrl-C (which then raises ``LesionInterrupted``) and when an
    image cannot be read. Only whole batches count, so an interrupted batch is redone.
    """

    def __init__(self, layout: Layout, stream: Any, runtime: Runtime, state: StudyState, *,
                 engine: str, batch_size: int, save_every: float, tick: Counter, notes: list[str],
                 world: World = SINGLE) -> None:
        self.stream = stream.held_on(runtime.device)
        self.n_images = len(stream)
        self.layout, self.runtime, self.state = layout, runtime, state
        self.engine, self.batch_size, self.save_every = engine, batch_size, save_every
        self.piece = batch_size  # what runs at once: the batch, or a part of it after running out of memory
        self.tick, self.notes, self.world = tick, notes, world
        self.oom_types = _oom_error_types()
        self.position = 0  # images of the running chunk counted so far (by this rank)
        self.ticked = 0  # images of the running chunk reported to ``tick``

    def run(self, chunk: Chunk) -> bool:
        """Measure ``chunk`` unless it is done already; True when it ran."""
        import torch

        from ..data import DatasetError

        if self.state.is_done(chunk.keys):
            self.tick(self.n_images, phase=chunk.name)
            return False
        executor = Executor(self.layout, [self.layout.ops(m.config) for m in chunk.measurements], self.engine,
                            self.runtime.device)
        # one count per measurement, and last the images measured (all but any left out as unreadable)
        counts = torch.zeros(len(chunk.measurements) + 1, dtype=torch.long, device=self.runtime.device)
        start, kept, scored = self.state.resume_point(chunk.name, chunk.keys)
        if kept is not None and self.world.main:  # counted once, by rank 0
            counts += torch.tensor(kept + [scored], dtype=torch.long, device=self.runtime.device)
        self.ticked = start
        if start:
            self.tick(start, phase=chunk.name)
        lo, hi = self.world.part(start, self.n_images, self.batch_size)
        try:
            self._pass(chunk, executor, counts, lo, hi)
        except KeyboardInterrupt:
            if self.state.path is None:
                raise
            raise LesionInterrupted(self._keep(chunk, counts)) from None
        except DatasetError as exc:  # an image that cannot be read: what was counted before it is kept
            if self.state.path is None:
                raise
            raise DatasetError(f"{exc}; {self._keep(chunk, counts)}") from None
        self.world.sum(counts)  # one all-reduce per chunk
        if self.ticked < self.n_images:
            self.tick(self.n_images - self.ticked, phase=chunk.name)
        final = counts.tolist()
        self.state.finish(chunk.measurements, final[:-1], final[-1])
        return True

    def _keep(self, chunk: Chunk, counts: Any) -> str:
        """Keep the running chunk's counts (one process: under torchrun only finished chunks are kept, the
        ranks' running counts are not summed) and say what is kept where."""
        if self.world.distributed:
            return f"{len(self.state.done)} measurements kept in {self.state.path}"
        running = counts.tolist()
        self.state.keep_partial(chunk.name, chunk.keys, self.position, running[:-1], running[-1])
        return (f"{len(self.state.done)} measurements and {self.position} of {self.n_images} images of "
                f"'{chunk.name}' kept in {self.state.path}")

    def _pass(self, chunk: Chunk, executor: Executor, counts: Any, start: int, stop: int) -> None:
        """Count images start..stop (this rank's part of the chunk) into ``counts``."""
        last_save = time.monotonic()
        keeps_partial = self.state.path is not None and not self.world.distributed
        self.position = start
        for xb, yb in self.stream.batches(start, stop, self.batch_size):
            at = 0
            while at < len(yb):
                batch_counts = self._count_batch(executor, xb[at:at + self.piece], yb[at:at + self.piece], counts)
                if batch_counts is None:
                    self.piece = self._halve(self.piece)
                    continue
                counts += batch_counts
                at += self.piece
            size = min(self.batch_size, stop - self.position)
            self.position += size
            if keeps_partial and time.monotonic() - last_save > self.save_every and self.position < stop:
                running = counts.tolist()
                self.state.keep_partial(chunk.name, chunk.keys, self.position, running[:-1], running[-1])
                last_save = time.monotonic()
            # rank 0 reports for every rank (they run equal parts); the rest is reported when the chunk ends
            seen = min(size * self.world.size, self.n_images - self.ticked)
            self.ticked += seen
            self.tick(seen, phase=chunk.name)

    def _count_batch(self, executor: Executor, x: Any, y: Any, like: Any) -> Any:
        """Correct counts per configuration on the images ``x`` (and their number, last), or None when the
        device ran out of memory."""
        import torch

        xb = self.runtime.prepare(x)
        yb = to_device(y, self.runtime.device)
        batch_counts = torch.zeros_like(like)
        try:
            with torch.inference_mode(), self.runtime.autocast():
                executor(xb, yb, batch_counts[:-1])
        except self.oom_types:
            del xb, yb, batch_counts
            if self.runtime.on_cuda:
                torch.cuda.empty_cache()
            return None
        batch_counts[-1] += len(y)
        return batch_counts

    def _halve(self, bs: int) -> int:
        if bs == 1:
            raise ResnetCliError("out of memory even with a batch of one image")
        bs = max(1, bs // 2)
        msg = f"out of memory: batch size halved to {bs}"
        if msg not in self.notes:
            self.notes.append(msg)
        return bs


# --------------------------------------------------------------------------- the study
@dataclass(frozen=True)
class LesionConfig:
    """What a lesion study measures and how (the CLI's options): the experiments, their sampling, the batching and
    the engine. ``amp`` and ``channels_last`` None: what ``devices`` chooses for the device (both on CUDA)."""

    experiments: tuple[str, ...] = EXPERIMENTS
    max_k: int = 10  # multi/reorder: up to max_k blocks deleted or pairs swapped
    samples: int = 10  # multi/reorder: random sets per k
    seed: int = 0
    batch_size: int = 256
    engine: str = "cached"
    amp: bool | None = None
    channels_last: bool | None = None
    save_every: float = 10.0  # seconds between keeping the running counts of a chunk

    def settings(self) -> dict[str, Any]:
        return {"experiments": list(self.experiments), "max_k": self.max_k, "samples": self.samples,
                "seed": self.seed, "batch_size": self.batch_size, "engine": self.engine}


def lesion_study(
    model: Any,
    images: Any,
    labels: Any = None,
    config: LesionConfig | None = None,
    *,
    device: Any = None,
    state_path: str | Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    on_chunk: Callable[[dict[str, Any]], None] | None = None,
    world: World = SINGLE,
    **options: Any,
) -> LesionResult:
    """Run the lesion study ``config`` (a ``LesionConfig``; ``options`` replace its fields: ``max_k=3``) of
    ``model`` on ``images`` and ``labels`` (tensors: N x C x H x W normalised, and N), or on ``images`` alone as a
    dataset or an ``ImageStream`` (``labels`` None): streamed, a batch at a time. The network's name and whether
    it is residual come from its spec; the data's name from the dataset's description.

    ``progress`` gets a "lesion" event after every batch (images over the whole study, the chunk as its phase;
    it may raise KeyboardInterrupt: the study then keeps its counts and raises ``LesionInterrupted``);
    ``on_chunk(state)`` gets the study's state (``StudyState.to_dict()``) after every chunk it ran.

    Under torchrun (``world``, from ``resnet_cli.distributed.start``) every rank runs every chunk on its part of
    the images (``World.part``: it reads only that part), the counts are summed once per chunk, and rank 0 alone
    keeps ``state_path`` (give the others no ``progress`` or ``on_chunk``). A study kept by any number of
    processes resumes with any other.
    """
    from ..data.stream import as_stream

    config = dataclasses.replace(config or LesionConfig(), **options)
    unknown = [e for e in config.experiments if e not in EXPERIMENTS]
    if unknown:
        raise ResnetCliError(f"unknown experiment {unknown[0]!r}: choose from {', '.join(EXPERIMENTS)}")
    # one order, whatever order they were given in
    config = dataclasses.replace(config, experiments=tuple(e for e in EXPERIMENTS if e in config.experiments))
    stream = as_stream(images, labels)
    if len(stream) == 0:
        raise ResnetCliError("the lesion study needs at least one labelled image")
    first = stream.first_image()
    runtime = Runtime.choose(device, config.amp, config.channels_last, first)
    spec = getattr(model, "spec", None)
    arch, residual = (spec.name, spec.residual) if spec is not None else ("", True)
    dataset = getattr(getattr(stream.dataset, "info", None), "name", "")

    with prepared_model(model, runtime.device, channels_last=runtime.channels_last) as work:
        layout = Layout(work)
        layout.probe(runtime.prepare(first))
        skipped, notes = _unremovable(layout.blocks)
        chunks, plan_notes = plan_chunks(layout.blocks, config.experiments, config.max_k, config.samples,
                                         config.seed)
        notes += plan_notes
        study = {"arch": arch, "dataset": dataset, "images": len(stream), "experiments": list(config.experiments),
                 "max_k": config.max_k, "samples": config.samples, "seed": config.seed,
                 "model": model_fingerprint(model), "data": stream.fingerprint()}
        state = _open_state(state_path, study, resume, world)
        runner = ChunkRunner(layout, stream, runtime, state, engine=config.engine, batch_size=config.batch_size,
                             save_every=config.save_every, notes=notes, world=world,
                             tick=Counter(progress, "lesion", len(stream) * len(chunks), "images"))
        for chunk in chunks:
            if runner.run(chunk) and on_chunk:
                on_chunk(state.to_dict())
    notes += unreadable_note(stream, world)

    result = _result(state.done, layout.blocks, skipped, state.done["baseline"]["images"], arch, dataset,
                     bool(residual), notes, settings={**config.settings(), **runtime.settings()})
    if spec is not None:
        from ..registry import spec_overrides

        result.overrides, result.num_classes = spec_overrides(spec), spec.num_classes
    return result


def unreadable_note(stream: Any, world: World) -> list[str]:
    """The note on images left out as unreadable (``--skip-bad-images``) by any rank, or none."""
    from .evaluation import unreadable_note as note

    skipped: dict[str, str] = {}
    for part in world.gather(stream.skipped):
        skipped.update(part)
    return note(skipped)


def _open_state(path: str | Path | None, study: dict[str, Any], resume: bool, world: World) -> StudyState:
    """The study's state; under torchrun rank 0 reads it and sends it to the others (who keep no file)."""
    if not world.distributed:
        return StudyState.open(path, study, resume)
    outcome: Any = None
    if world.main:
        try:
            state = StudyState.open(path, study, resume)
            outcome = (state.done, state.partial)
        except ResnetCliError as exc:
            outcome = exc
    outcome = world.share(outcome)
    if isinstance(outcome, ResnetCliError):
        if world.main:
            raise outcome
        raise SystemExit(outcome.exit_code)  # rank 0 says why
    return state if world.main else StudyState(study, None, *outcome)


def _result(done: dict[str, Any], blocks: list[BlockInfo], skipped: list[dict[str, Any]], n_images: int,
            arch: str, dataset: str, residual: bool, notes: list[str], settings: dict[str, Any]) -> LesionResult:
    def err(key: str) -> float:
        # one division of exact counts: the float nearest the true fraction (1 - c/n adds rounding noise)
        return (done[key]["images"] - done[key]["correct"]) / done[key]["images"]

    single = [SingleRow(b.name, b.index, b.stage, b.shape_change, err(f"single/{b.index}"),
                        done[f"single/{b.index}"]["correct"]) for b in blocks if f"single/{b.index}" in done]

    def krows(experiment: str) -> list[KRow]:
        by_k: dict[int, KRow] = {}
        for key, d in done.items():  # insertion order = sample order
            if d["experiment"] == experiment:
                row = by_k.setdefault(d["k"], KRow(d["k"], [], []))
                row.errors.append(err(key))
                row.correct.append(d["correct"])
                row.configs.append(d["config"]["deleted"] if experiment == "multi" else d["config"]["swaps"])
        return [by_k[k] for k in sorted(by_k)]

    return LesionResult(arch, residual, dataset, n_images, err("baseline"), single, krows("multi"),
                        krows("reorder"), skipped, settings, notes, baseline_correct=done["baseline"]["correct"])
