"""``train``: one call from a spec and a dataset (or a checkpoint to continue) to a trained network, its
checkpoints and a ``TrainResult``; what the CLI's ``train`` runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import Checkpoint, load_checkpoint
from ..data import DatasetInfo
from ..errors import ResnetCliError
from ..progress import Progress
from ..spec import ArchSpec
from .config import TrainConfig
from .resume import _kept_limits, check_resumable, check_resumable_tensors
from .trainer import Trainer


@dataclass
class TrainResult:
    spec: ArchSpec
    dataset: DatasetInfo
    config: TrainConfig
    device: str
    record: list[dict[str, Any]]
    checkpoint: str | None
    best_checkpoint: str | None
    best_epoch: int | None
    resumed_from_epoch: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        return self.record[-1] if self.record else {}

    def to_dict(self) -> dict[str, Any]:
        best = min(self.record, key=lambda r: r["test_error"]) if self.record else None
        return {
            "arch": self.spec.name, "spec": self.spec.to_dict(), "dataset": self.dataset.to_dict(),
            "config": self.config.to_dict(), "device": self.device,
            "epochs": len(self.record), "resumed_from_epoch": self.resumed_from_epoch,
            "final_train_error": self.final.get("train_error"), "final_test_error": self.final.get("test_error"),
            "best_test_error": best["test_error"] if best else None, "best_epoch": self.best_epoch,
            "checkpoint": self.checkpoint, "best_checkpoint": self.best_checkpoint,
            "record": self.record, "notes": self.notes,
        }


def _network(spec: ArchSpec, state: Checkpoint | None, info: DatasetInfo, seed: int,
             notes: list[str]) -> tuple[ArchSpec, nn.Module]:
    """The network to train: a new one (its classes fitted to the data, seeded weights) or the checkpoint's."""
    from ..models import build_model

    if state is None:
        if spec.num_classes != info.num_classes:
            spec = spec.replace(num_classes=info.num_classes)
            notes.append(f"num_classes set to {info.num_classes} to fit {info.name}")
        torch.manual_seed(seed)
        return spec, build_model(spec)
    if info.num_classes != spec.num_classes:
        raise ResnetCliError(f"the data has {info.num_classes} classes; the checkpoint's network has "
                             f"{spec.num_classes}")
    model = state.build_model()
    model.train()
    return spec, model


@dataclass
class _RunInputs:
    """What a run trains on: the caller's arguments, or for a resumed run the checkpoint's."""

    state: Checkpoint | None
    spec: ArchSpec
    config: TrainConfig
    dataset: str
    data_dir: str | None
    input_size: int
    in_channels: int
    train_limit: int | None
    test_limit: int | None


def _run_inputs(spec: ArchSpec, dataset: str, config: TrainConfig, data_dir: str | None, train_limit: int | None,
                test_limit: int | None, resume: str | Path | Checkpoint | None,
                note: Callable[[str], None]) -> _RunInputs:
    """The spec, configuration and data of a new run, or those a resumed run keeps (only the epochs may change)."""
    if resume is None:
        if spec.input_width is not None and spec.input_width != spec.input_size:
            raise ResnetCliError(f"{spec.name}: training uses square images of input_size pixels; input_width "
                                 f"(a {spec.input_size}x{spec.input_width} input) is for counting (params, compare)")
        return _RunInputs(None, spec, config, dataset, data_dir, spec.input_size, spec.in_channels, train_limit,
                          test_limit)
    state = resume if isinstance(resume, Checkpoint) else load_checkpoint(resume)
    resume = state.path or resume
    saved = check_resumable(state)
    check_resumable_tensors(state)
    if config.epochs != saved.epochs:
        note(f"epochs changed from {saved.epochs} to {config.epochs}: the lr schedule follows the new total")
    config = dataclasses.replace(saved, epochs=config.epochs, workers=config.workers)
    info_saved = state.dataset
    train_limit, test_limit = _kept_limits(state.extra.get("data") or {}, train_limit, test_limit)
    if state.extra.get("interrupted") is False and state.epochs_done >= config.epochs:
        note(f"{resume} already finished {state.epochs_done} epochs; pass a larger --epochs to go on")
    return _RunInputs(state, state.spec, config, info_saved.name, data_dir or (info_saved.source or None),
                      info_saved.input_size, info_saved.in_channels, train_limit, test_limit)



def train(spec: ArchSpec, dataset: str, config: TrainConfig = TrainConfig(), *, device: str = "auto",
          data_dir: str | None = None, download: bool = False, train_limit: int | None = None,
          test_limit: int | None = None, checkpoint: str | Path | None = None,
          best_checkpoint: str | Path | None = None, resume: str | Path | Checkpoint | None = None,
          progress: Progress | None = None,
          log: Callable[[str], None] | None = None,
          on_step: Callable[[Trainer, int, int], None] | None = None, distributed: bool = False,
          ) -> TrainResult:
    """Train ``spec`` on ``dataset`` (or continue ``resume``), with checkpoints; the CLI's ``train``.

    The network's classes, input size and channels follow the data (``num_classes`` from the dataset; the
    input size from the spec unless the dataset fixes it). With ``resume``, the spec, data and configuration come
    from the checkpoint; ``config.epochs`` may extend the run. With ``distributed``, join the run torchrun
    launched (if it did): DistributedDataParallel, ``config.batch_size`` images per rank and step, each rank a
    disjoint part of every epoch's seeded order, ``config.sync_bn`` for SyncBatchNorm; rank 0 writes the checkpoints.
    """
    from .. import distributed as dist
    from ..data import load_dataset
    from ..devices import resolve_device

    notes: list[str] = []

    def note(text: str) -> None:  # said when it becomes true (before training), and kept for the result
        notes.append(text)
        if log is not None:
            log(f"note: {text}")

    dev = resolve_device(device)
    # before joining the run: an error every rank has is said once, by rank 0
    run = _run_inputs(spec, dataset, config, data_dir, train_limit, test_limit, resume, note)
    launched = distributed and dist.from_environment().distributed
    if run.config.sync_bn and resume is None and not launched:  # else recorded, never applied, kept by --resume
        raise ResnetCliError("--sync-bn shares batch norm statistics between torchrun's processes, and this run is "
                             "one process: launch it with torchrun, or leave --sync-bn out")
    if run.config.sync_bn and launched and dev.type != "cuda":
        whose = "the checkpoint's run uses --sync-bn, but " if resume is not None else ""
        raise ResnetCliError(f"{whose}SyncBatchNorm works on CUDA only (torch's gloo backend on the CPU has none)")
    world, dev = dist.start(dev) if distributed else (dist.SINGLE, dev)
    state, spec, config, dataset, data_dir = run.state, run.spec, run.config, run.dataset, run.data_dir
    input_size, in_channels, train_limit, test_limit = run.input_size, run.in_channels, run.train_limit, run.test_limit
    config.validate()
    if dev.type == "cpu":  # refused before the data is made; on a GPU the activations are the GPU's to hold
        from ..analysis.memory import check_run_memory

        check_run_memory(spec, config.batch_size, training=True, input_size=input_size)
    train_set, info = load_dataset(dataset, "train", input_size=input_size, data_dir=data_dir, download=download,
                                   limit=train_limit, seed=config.seed, in_channels=in_channels)
    test_set, _ = load_dataset(dataset, "test", input_size=input_size, data_dir=data_dir, limit=test_limit,
                               in_channels=in_channels)
    spec, model = _network(spec, state, info, config.seed, notes)
    trainer = Trainer(model, spec, train_set, test_set, info, config, device=dev, checkpoint=checkpoint,
                      best_checkpoint=best_checkpoint, progress=progress, log=log, on_step=on_step, world=world)
    if world.distributed:
        note(f"{world.size} processes: a step is a global batch of {config.batch_size * world.size} "
             f"images ({config.batch_size} per process)" + (", SyncBatchNorm" if config.sync_bn else ""))
    trainer.data_options = {"train_limit": train_limit, "test_limit": test_limit}
    resumed_from = 0
    if state is not None:
        trainer.load_extra_state(state.extra, state.record)
        resumed_from = trainer.epoch
    trainer.fit()
    return TrainResult(spec=spec, dataset=info, config=config, device=str(dev), record=trainer.record,
                       checkpoint=str(checkpoint) if checkpoint else None,
                       best_checkpoint=str(best_checkpoint) if best_checkpoint else None,
                       best_epoch=trainer.best_epoch, resumed_from_epoch=resumed_from, notes=notes)
