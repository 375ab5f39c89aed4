"""``eval``: a checkpoint's loss and error on its data (or another dataset), as one report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..progress import Progress


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
    inferred_arch: str | None
    #: ``Checkpoint.loading_report()``'s: what the loader mapped, and the normalisation used.
    key_mappings: list[dict[str, str]]
    normalization: dict[str, Any] | None
    overrides: dict[str, Any] = field(default_factory=dict)  # spec fields that differ from the registered arch
    top5_error: float | None = None  # where there are more than 5 classes
    top5_correct: int | None = None
    per_class: list[dict[str, Any]] | None = None  # per label: class, images, correct, error

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def of(cls, result: Any, **fields: Any) -> EvalReport:
        """The report of an ``evaluate(..., detailed=True)`` result: each error beside the counts it comes from
        (one division of counts: no rounding noise)."""
        n, top5 = result.images, result.top5_correct
        per_class = None
        if result.class_images is not None:
            per_class = [{"class": c, "images": m, "correct": k, "error": (m - k) / m if m else None}
                         for c, (m, k) in enumerate(zip(result.class_images, result.class_correct))]
        return cls(error=result.error, accuracy=result.accuracy, loss=result.loss, correct=result.correct,
                   images=n, top5_error=(n - top5) / n if top5 is not None and n else None, top5_correct=top5,
                   per_class=per_class, **fields)


def evaluate_checkpoint(path: str | os.PathLike[str], *, arch: str | None = None, dataset: str | None = None,
                        split: str = "test", data_dir: str | os.PathLike[str] | None = None,
                        download: bool = False, limit: int | None = None, input_size: int | None = None,
                        batch_size: int = 256, workers: int = 0, device: Any = "auto",
                        progress: Progress | None = None, normalize: str | None = None,
                        distributed: bool = False) -> EvalReport:
    """Load the checkpoint at ``path`` and measure it on ``split`` of its data (or ``dataset``) on ``device``
    (a name for ``resolve_device``, or a torch device), normalised by ``normalize`` (a name or
    ``MEAN,..:STD,..``; default: as ``Checkpoint.load_data`` decides). With ``distributed``, join the run
    torchrun launched (if it did) and score a part of the images on each rank (``resnet_cli.distributed``)."""
    from .. import distributed as dist
    from ..checkpoint import check_checkpoint_path, load_checkpoint

    check_checkpoint_path(Path(path))  # at once, before torch is imported
    from ..devices import resolve_device
    from ..limits import check_run_memory
    from ..registry import spec_overrides
    from ..training import evaluate

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
                      world=world, detailed=True)
    loading = ckpt.loading_report()
    return EvalReport.of(result, checkpoint=str(path), arch=ckpt.spec.name, dataset=info.name, split=split,
                         device=str(device), inferred_arch=ckpt.inferred_arch,
                         key_mappings=loading["key_mappings"], normalization=loading["normalization"],
                         overrides=spec_overrides(ckpt.spec))
