"""A network's loss and error on a dataset (``evaluate``: what training measures after every epoch), and
``eval``'s report of a checkpoint on its data (or another dataset).

The images are streamed (``data.stream.ImageStream``: a batch at a time, ``--workers`` decoding an image folder in
parallel); under torchrun each rank reads and scores its part (``World.part``) and the counts are summed. Every
rank takes part in every sum, also one whose part is empty, so that every rank ends the run together.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..distributed import SINGLE, World
from ..progress import Counter, Progress


@dataclass
class EvalResult:
    """Loss and error of a model on a dataset."""

    loss: float  # mean cross-entropy, nats per image
    correct: int
    images: int  # those scored: all, less any left out as unreadable (``skip_bad``)
    # With ``evaluate(..., detailed=True)``: images whose label is among the 5 highest logits (where there are
    # more than 5 classes), and per class (index = label) the images and the correct ones.
    top5_correct: int | None = None
    class_images: list[int] | None = None
    class_correct: list[int] | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # image -> why it could not be read (``skip_bad``)

    @property
    def accuracy(self) -> float:
        return self.correct / self.images if self.images else float("nan")

    @property
    def error(self) -> float:
        # one division of exact counts: the float nearest the true fraction (1 - accuracy adds rounding noise)
        return (self.images - self.correct) / self.images if self.images else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.error, "accuracy": self.accuracy, "loss": self.loss, "correct": self.correct,
                "images": self.images}


def evaluate(model: Any, dataset: Any, *, batch_size: int = 256, device: Any = "cpu", amp: bool = True,
             workers: int = 0, progress: Progress | None = None, world: World = SINGLE,
             detailed: bool = False, skip_bad: bool = False) -> EvalResult:
    """Mean loss and top-1 error of ``model`` (put in eval mode, restored after) on ``dataset`` (a dataset or an
    ``ImageStream``), streamed in batches of ``batch_size``; ``progress`` gets an "eval" event per batch. Under
    torchrun (``world``) each rank scores its batches and the sums are combined: every rank gets the whole
    dataset's result. ``detailed`` adds the top-5 count (more than 5 classes) and per-class counts; ``skip_bad``
    leaves out images that cannot be read (listed in ``skipped``) instead of stopping."""
    import torch
    from torch import nn

    from ..data.stream import ImageStream
    from ..devices import autocast_dtype, channels_last_for, to_device

    device = torch.device(device)
    stream = dataset if isinstance(dataset, ImageStream) else ImageStream(
        dataset, workers=workers, pin_memory=device.type == "cuda", skip_bad=skip_bad)
    stream = stream.held_on(device)
    was_training = model.training
    model.eval()
    n = len(stream)
    # accumulated on the device, read once at the end: no wait for the GPU per batch
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    counts = torch.zeros(3, dtype=torch.int64, device=device)  # correct, top-5 correct, images scored
    tick = Counter(progress, "eval", n, "images")
    class_images = class_correct = None
    amp_dtype = autocast_dtype(device, amp)
    lo, hi = world.part(0, n, batch_size)
    try:
        with torch.no_grad(), flush_denormals():
            for x, y in stream.batches(lo, hi, batch_size):
                if len(y):
                    x, y = to_device(x, device, channels_last_for(device, x)), to_device(y, device)
                    with autocast(amp_dtype):
                        logits = model(x)
                    total_loss += nn.functional.cross_entropy(logits.float(), y, reduction="sum").double()
                    hit = logits.argmax(1) == y
                    counts[0] += hit.sum()
                    counts[2] += len(y)
                    if detailed:
                        class_images, class_correct = _detail(logits, y, hit, counts, class_images, class_correct)
                tick(min(batch_size * world.size, n - tick.done))  # rank 0 reports for every rank
    finally:
        model.train(was_training)
    # every rank joins every sum, also one that scored nothing (its part may be empty: fewer batches than ranks)
    world.sum(total_loss), world.sum(counts)
    correct, top5, scored = counts.tolist()
    result = EvalResult(loss=total_loss.item() / scored if scored else float("nan"), correct=correct, images=scored)
    if detailed:
        classes = max(world.gather(0 if class_images is None else len(class_images)))
        if classes:
            if class_images is None:
                class_images = torch.zeros(classes, dtype=torch.int64, device=device)
                class_correct = torch.zeros(classes, dtype=torch.int64, device=device)
            world.sum(class_images), world.sum(class_correct)
            result.class_images, result.class_correct = class_images.tolist(), class_correct.tolist()
            result.top5_correct = top5 if classes > 5 else None
    for part in world.gather(stream.skipped):
        result.skipped.update(part)
    return result


def unreadable_note(skipped: dict[str, str]) -> list[str]:
    """The note on images left out as unreadable (``--skip-bad-images``), or none."""
    if not skipped:
        return []
    shown = "; ".join(list(skipped.values())[:3]) + ("; ..." if len(skipped) > 3 else "")
    return [f"{len(skipped)} image(s) could not be read and were left out: {shown}"]


def _detail(logits: Any, y: Any, hit: Any, counts: Any, class_images: Any, class_correct: Any) -> tuple[Any, Any]:
    """Top-5 (into ``counts[1]``) and per-class counts of one batch added on the device (no host sync)."""
    import torch

    classes = logits.shape[1]
    if class_images is None:
        class_images = torch.zeros(classes, dtype=torch.int64, device=logits.device)
        class_correct = torch.zeros(classes, dtype=torch.int64, device=logits.device)
    if classes > 5:
        counts[1] += (logits.topk(5, dim=1).indices == y[:, None]).any(1).sum()
    class_images = class_images + torch.bincount(y, minlength=classes)[:classes]
    class_correct = class_correct + torch.bincount(y[hit], minlength=classes)[:classes]
    return class_images, class_correct


_flush_depth = 0


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal floats as zero on the CPU while training or evaluating.

    Deep nets (plain ones especially) produce tiny gradients and activations; x86 CPUs compute on denormals up to
    100x slower. Measured here: a 26-layer CIFAR ResNet on digits ran 12x faster per epoch with flushing, with the
    same losses to 4 decimals. Re-entrant; restores torch's default (off) when the outermost use ends.
    """
    import torch

    global _flush_depth
    _flush_depth += 1
    if _flush_depth == 1:
        torch.set_flush_denormal(True)
    try:
        yield
    finally:
        _flush_depth -= 1
        if _flush_depth == 0:
            torch.set_flush_denormal(False)


def autocast(dtype: Any) -> Any:
    """CUDA autocast to ``dtype`` (from ``devices.autocast_dtype``), or nothing for None."""
    import torch

    return torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()


@dataclass
class EvalReport:
    checkpoint: str
    arch: str
    dataset: str
    split: str
    error: float
    accuracy: float
    loss: float
    correct: int
    images: int
    device: str
    inferred_arch: dict[str, Any] | None  # checkpoint.inference.ArchChoice's fields
    #: ``Checkpoint.loading_report()``'s: what the loader mapped, and the normalisation used.
    key_mappings: list[dict[str, str]]
    normalization: dict[str, Any] | None
    overrides: dict[str, Any] = field(default_factory=dict)  # spec fields that differ from the registered arch
    top5_error: float | None = None  # where there are more than 5 classes
    top5_correct: int | None = None
    per_class: list[dict[str, Any]] | None = None  # per label: class, images, correct, error
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def of(cls, result: Any, classes: list[str] | None = None, **fields: Any) -> EvalReport:
        """The report of an ``evaluate(..., detailed=True)`` result: each error beside the counts it comes from
        (one division of counts: no rounding noise); ``classes`` names the labels where the data does."""
        n, top5 = result.images, result.top5_correct
        per_class = None
        if result.class_images is not None:
            names = classes if classes is not None and len(classes) == len(result.class_images) else None
            per_class = [{"class": c, "name": names[c] if names else None, "images": m, "correct": k,
                          "error": (m - k) / m if m else None}
                         for c, (m, k) in enumerate(zip(result.class_images, result.class_correct))]
        return cls(error=result.error, accuracy=result.accuracy, loss=result.loss, correct=result.correct,
                   images=n, top5_error=(n - top5) / n if top5 is not None and n else None, top5_correct=top5,
                   per_class=per_class, **fields)


def evaluate_checkpoint(path: str | os.PathLike[str], *, arch: str | None = None, dataset: str | None = None,
                        split: str = "test", data_dir: str | os.PathLike[str] | None = None,
                        download: bool = False, limit: int | None = None, input_size: int | None = None,
                        batch_size: int = 256, workers: int = 0, device: Any = "auto",
                        progress: Progress | None = None, normalize: str | None = None,
                        distributed: bool = False, skip_bad: bool = False) -> EvalReport:
    """Load the checkpoint at ``path`` and measure it on ``split`` of its data (or ``dataset``) on ``device``
    (a name for ``resolve_device``, or a torch device), normalised by ``normalize`` (a name or
    ``MEAN,..:STD,..``; default: as ``Checkpoint.load_data`` decides). With ``distributed``, join the run
    torchrun launched (if it did) and score a part of the images on each rank (``resnet_cli.distributed``)."""
    from .. import distributed as dist
    from ..checkpoint import check_checkpoint_path, load_checkpoint

    check_checkpoint_path(Path(path))  # at once, before torch is imported
    from ..devices import resolve_device
    from ..registry import spec_overrides
    from .memory import check_run_memory

    ckpt = load_checkpoint(path, arch=arch)
    device = resolve_device(str(device))
    if device.type == "cpu":  # on a GPU the activations are the GPU's to hold
        size = input_size or (ckpt.dataset.input_size if ckpt.dataset is not None else ckpt.spec.input_size)
        check_run_memory(ckpt.spec, batch_size, training=False, input_size=size)  # before any image is made
    data, info = ckpt.load_data(split, dataset=dataset, data_dir=data_dir, input_size=input_size, limit=limit,
                                download=download, normalize=normalize)
    world, device = dist.start(device) if distributed else (dist.SINGLE, device)
    model = ckpt.build_model(device)
    result = evaluate(model, data, batch_size=batch_size, device=device, workers=workers, progress=progress,
                      world=world, detailed=True, skip_bad=skip_bad)
    loading = ckpt.loading_report()
    return EvalReport.of(result, classes=getattr(data, "classes", None), checkpoint=str(path), arch=ckpt.spec.name,
                         dataset=info.name, split=split,
                         device=str(device), inferred_arch=ckpt.loading_report()["inferred_arch"],
                         key_mappings=loading["key_mappings"], normalization=loading["normalization"],
                         overrides=spec_overrides(ckpt.spec), notes=unreadable_note(result.skipped))
