"""``eval``: a checkpoint's loss and error on its data (or another dataset), as one report."""

from __future__ import annotations

import os
from dataclasses import dataclass
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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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
    from ..checkpoint import load_checkpoint
    from ..devices import resolve_device
    from ..training import evaluate

    ckpt = load_checkpoint(path, arch=arch)
    data, info = ckpt.load_data(split, dataset=dataset, data_dir=data_dir, input_size=input_size, limit=limit,
                                download=download, normalize=normalize)
    device = resolve_device(str(device))
    world, device = dist.start(device) if distributed else (dist.SINGLE, device)
    model = ckpt.build_model(device)
    result = evaluate(model, data, batch_size=batch_size, device=device, workers=workers, progress=progress,
                      world=world)
    loading = ckpt.loading_report()
    return EvalReport(checkpoint=str(path), arch=ckpt.spec.name, dataset=info.name, split=split,
                      error=result.error, accuracy=result.accuracy, loss=result.loss, correct=result.correct,
                      images=result.images, device=str(device), inferred_arch=ckpt.inferred_arch,
                      key_mappings=loading["key_mappings"], normalization=loading["normalization"])
