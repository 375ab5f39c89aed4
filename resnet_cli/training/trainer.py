"""The ``Trainer``: the ResNet paper's recipe (``TrainConfig``, training/config.py), reproducible and resumable;
evaluated on the test set after every epoch by ``analysis.evaluation.evaluate``, the one evaluation loop.

Crop-and-flip augmentation where the data allows it (``DatasetInfo.crop_padding`` / ``flip``: no flips for
digits). Stochastic depth is a spec field (``spec.stochastic_depth``), honoured by the blocks.

Reproducibility: the data order of epoch ``e`` comes from a generator seeded with ``(seed, e)``, the crops and
flips of step ``s`` from ``(seed, e, s)``, and the global torch RNG (weight init, stochastic depth) is seeded
once and saved in every checkpoint — so on the CPU the same seed gives the same weights, and a run resumed from
any step boundary ends exactly where the uninterrupted run ends. The learning rate is a pure function of the
epoch, so the "scheduler state" is the epoch counter.

Ctrl-C (SIGINT) is caught between steps: the trainer finishes the step, writes a resumable checkpoint and
raises ``TrainingInterrupted``. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..analysis.evaluation import autocast, evaluate, flush_denormals
from ..checkpoint import EpochRecord, save_checkpoint
from ..data import DatasetInfo, TensorImageDataset, augment_batch, mix_seed
from ..data.stream import ImageStream
from ..devices import autocast_dtype, channels_last_for, keeps_on_device, to_device
from ..distributed import SINGLE, World
from ..errors import ResnetCliError
from ..progress import Counter, Progress
from ..spec import ArchSpec
from .config import TrainConfig


class TrainingInterrupted(ResnetCliError):
    """Ctrl-C during training: a resumable checkpoint was written (or could not be: the message says)."""

    exit_code = 130


@contextlib.contextmanager
def _cudnn_autotuned(device: torch.device) -> Iterator[None]:
    """cuDNN times its algorithms for each batch shape it meets (a training run has three: the full batch, an
    epoch's last one, the evaluation's) and keeps the fastest; only during ``fit``, so that a lesion study or
    ``evaluate`` later in the same process keeps torch's default, deterministic choice."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _held_on(dataset: Any, device: torch.device) -> Any:
    """An in-memory dataset moved whole to the GPU where it fits (``keeps_on_device``): its batches are then
    indexed, augmented and normalised there, with no host-to-device copy per step. Others stay as they are."""
    if isinstance(dataset, TensorImageDataset) and keeps_on_device(device, dataset.images, dataset.labels):
        return dataset.to(device)
    return dataset


def _grad_scaler() -> Any:
    """CUDA loss scaling for float16 autocast (torch.amp.GradScaler from torch 2.3; torch.cuda.amp before)."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()  # pragma: no cover - torch < 2.3


# --------------------------------------------------------------------------- the trainer
class Trainer:
    """Trains ``model`` on ``train_set`` and evaluates on ``test_set`` after every epoch.

    ``checkpoint`` (path): written atomically after every epoch and on Ctrl-C; ``best_checkpoint``: written when
    the test error is the lowest so far. ``progress`` gets a "train" event per step (steps over all epochs, the
    epoch as its phase); ``log`` takes one line per epoch. ``on_step(trainer, epoch, step)`` runs after every
    optimisation step (tests use it to interrupt).

    On CUDA (each a small branch; the CPU path is the tested, bit-reproducible one): the model and image batches
    are channels_last, autocast uses ``autocast_dtype`` (bf16 without loss scaling where the GPU has it, else
    fp16 with a GradScaler), in-memory datasets that fit are held on the GPU (``_held_on``), other batches come
    pinned and are copied without waiting, and the next batch is made while the GPU runs the current step.
    """

    def __init__(self, model: nn.Module, spec: ArchSpec, train_set: Any, test_set: Any, info: DatasetInfo,
                 config: TrainConfig = TrainConfig(), *, device: Any = "cpu", checkpoint: str | Path | None = None,
                 best_checkpoint: str | Path | None = None, progress: Progress | None = None,
                 log: Callable[[str], None] | None = None,
                 on_step: Callable[[Trainer, int, int], None] | None = None, world: World = SINGLE) -> None:
        self.config = config.validate()
        self.spec, self.info = spec, info
        self.device = torch.device(device)
        self.world = world
        on_cuda = self.device.type == "cuda"
        self.model = model.to(self.device)
        if on_cuda:
            self.model = self.model.to(memory_format=torch.channels_last)  # batches follow (channels_last_for)
        if world.distributed and config.sync_bn:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        #: what the steps run: under torchrun the DistributedDataParallel wrapper (gradients averaged over the
        #: ranks); ``model`` stays the bare network (evaluation, checkpoints without "module." keys)
        self.net = self.model
        if world.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        self.train_set, self.test_set = _held_on(train_set, self.device), _held_on(test_set, self.device)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.best_checkpoint = Path(best_checkpoint) if best_checkpoint else None
        self.progress, self.log, self.on_step = progress, log or (lambda line: None), on_step
        self.amp_dtype = autocast_dtype(self.device, config.amp)
        self.use_amp = self.amp_dtype is not None
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.lr_at(0), momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        # loss scaling keeps float16's small gradients from underflowing; bfloat16 has float32's range
        self.scaler = _grad_scaler() if self.amp_dtype == torch.float16 else None
        self.record: list[dict[str, Any]] = []
        self.epoch, self.step = 0, 0  # where the next step starts
        self.partial: dict[str, float] = {"loss": 0.0, "correct": 0, "seen": 0, "time": 0.0}
        self.best_error: float | None = None
        self.best_epoch: int | None = None
        self._stop_requested = False
        #: How the data was chosen (limits), saved so that --resume trains on the same images.
        self.data_options: dict[str, Any] = {}

    # ------------------------------------------------------------------ state for checkpoints
    def extra_state(self, interrupted: bool = False) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "config": self.config.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch, "step": self.step, "partial": dict(self.partial),
            "best_error": self.best_error, "best_epoch": self.best_epoch,
            "rng_cpu": torch.get_rng_state(), "interrupted": interrupted,
            "device": str(self.device), "data": dict(self.data_options), "world_size": self.world.size,
            "writes_best": self.best_checkpoint is not None,
        }
        if self.scaler is not None:
            extra["scaler"] = self.scaler.state_dict()
        if self.device.type == "cuda":
            extra["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return extra

    def load_extra_state(self, extra: dict[str, Any], record: list[dict[str, Any]]) -> None:
        """Continue from a checkpoint written by ``save``: optimizer, position, partial epoch, RNG."""
        try:
            self.optimizer.load_state_dict(extra["optimizer"])
            self.epoch, self.step = int(extra["epoch"]), int(extra["step"])
            saved_world = int(extra.get("world_size", 1))
            self.partial = dict(extra.get("partial") or self.partial)
            self.best_error, self.best_epoch = extra.get("best_error"), extra.get("best_epoch")
            if "rng_cpu" in extra:
                torch.set_rng_state(extra["rng_cpu"])
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise ResnetCliError(f"the checkpoint cannot be resumed: its training state is incomplete ({exc})"
                                 ) from None
        if self.step and saved_world != self.world.size:
            raise ResnetCliError(f"this checkpoint stopped inside an epoch of {saved_world} process(es), whose "
                                 f"steps {self.world.size} would cut differently: continue it with "
                                 f"{saved_world} (a checkpoint from the end of an epoch continues with any number)")
        if self.scaler is not None and "scaler" in extra:
            self.scaler.load_state_dict(extra["scaler"])
        if self.device.type == "cuda" and "rng_cuda" in extra:
            torch.cuda.set_rng_state(extra["rng_cuda"], self.device)
        self.record = [dict(r) for r in record]

    def save(self, path: Path, interrupted: bool = False) -> None:
        if not self.world.main:  # under torchrun rank 0 alone writes (every rank holds the same weights)
            return
        save_checkpoint(path, spec=self.spec, state_dict=self.model.state_dict(), dataset=self.info,
                        record=self.record, extra=self.extra_state(interrupted))

    def request_stop(self) -> None:
        """Stop after the current step, leaving a resumable checkpoint (what Ctrl-C does)."""
        self._stop_requested = True

    # ------------------------------------------------------------------ the loop
    def epoch_order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(mix_seed(self.config.seed, epoch))
        return torch.randperm(len(self.train_set), generator=g)

    def fit(self) -> list[dict[str, Any]]:
        with self._sigint_requests_stop(), flush_denormals(), _cudnn_autotuned(self.device):
            while self.epoch < self.config.epochs:
                if self._stop_requested:  # Ctrl-C during the last evaluation: stop at the epoch boundary
                    self._interrupt()
                self._train_epoch()
                if self._stop_requested:
                    self._interrupt()
                self._end_epoch()
        return self.record

    def _train_epoch(self) -> None:
        cfg, epoch = self.config, self.epoch
        lr = cfg.lr_at(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # a step is one global batch of batch_size images per rank, dealt out in equal parts
        w = self.world.size
        batches = list(torch.split(self.epoch_order(epoch), cfg.batch_size * w))
        if len(batches) > 1 and len(batches[-1]) < 2 * w:
            batches.pop()  # batch norm cannot train on a single image (per rank)
        n_steps = len(batches)
        phase = f"epoch {epoch + 1}/{cfg.epochs}"
        # every epoch has the same number of steps: the run's total is known from the first
        tick = Counter(self.progress, "train", n_steps * cfg.epochs, "steps", done=n_steps * epoch + self.step)
        tick(0, phase=phase)
        self.model.train()
        mine = [torch.tensor_split(b, w)[self.world.rank] for b in batches[self.step:]]
        t_start = time.perf_counter()
        p = self.partial
        batches_left = self._device_batches(mine, epoch, self.step)
        pending = next(batches_left, None)
        while pending is not None:
            x, y = pending
            launched = self._launch_step(x, y)
            # made while the GPU runs this step (CUDA calls return at once; the step's numbers are read below)
            pending = next(batches_left, None)
            loss, correct = self._read_step(*launched, y)
            p["loss"] += loss * len(y)
            p["correct"] += correct
            p["seen"] += len(y)
            self.step += 1
            acc = p["correct"] / p["seen"]
            tick(1, phase=phase, status=f"loss {p['loss'] / p['seen']:.3f}  acc {100 * acc:.1f}%  lr {lr:g}")
            if self.on_step is not None:
                self.on_step(self, epoch, self.step)
            if self._stop_requested and self.step < n_steps:
                break
        p["time"] += time.perf_counter() - t_start

    def _device_batches(self, chunks: list[torch.Tensor], epoch: int, first_step: int,
                        ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's batches of the epoch from step ``first_step`` on, augmented (step ``s``'s crops and flips
        from the seed ``(seed, epoch, s[, rank])``) and on the device, ready for ``_launch_step``."""
        cfg = self.config
        augment = cfg.augment and (self.info.crop_padding or self.info.flip)
        pin = self.device.type == "cuda"
        batches = ImageStream(self.train_set, workers=cfg.workers, pin_memory=pin).chunks(chunks)
        for step, (x, y) in enumerate(batches, start=first_step):
            if augment:
                parts = (cfg.seed, epoch, step) + ((self.world.rank,) if self.world.distributed else ())
                x = augment_batch(x, self.info, torch.Generator().manual_seed(mix_seed(*parts)))
            yield to_device(x, self.device, channels_last_for(self.device, x)), to_device(y, self.device)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        """One optimisation step on a batch already on the device; its loss and correct count."""
        return self._read_step(*self._launch_step(x, y), y)

    def _launch_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, backward and update, without reading anything back (on CUDA the host does not wait for the
        GPU here, except in GradScaler's overflow check); the loss and logits, still on the device."""
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.amp_dtype):
            logits = self.net(x)
            loss = nn.functional.cross_entropy(logits, y)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss, logits

    def _read_step(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        correct = (logits.detach().argmax(1) == y).sum()
        # one device-to-host copy per step, for both numbers (each .item() on CUDA waits for the GPU)
        value, n_correct = torch.stack([loss.detach().float(), correct.float()]).tolist()
        if not math.isfinite(value):
            raise ResnetCliError(f"the loss became {value} at epoch {self.epoch + 1}, step {self.step + 1}; "
                                 f"try a lower --lr")
        return value, int(n_correct)

    def _summed_partial(self) -> dict[str, float]:
        """The epoch's training loss, correct count and images over every rank (time: this rank's)."""
        p = self.partial
        if not self.world.distributed:
            return p
        sums = self.world.sum(torch.tensor([p["loss"], p["correct"], p["seen"]], dtype=torch.float64,
                                           device=self.device)).tolist()
        return {"loss": sums[0], "correct": sums[1], "seen": sums[2], "time": p["time"]}

    def _end_epoch(self) -> None:
        cfg, p = self.config, self._summed_partial()
        t0 = time.perf_counter()
        test = evaluate(self.model, self.test_set, batch_size=cfg.eval_batch_size, device=self.device,
                        amp=cfg.amp, workers=cfg.workers, world=self.world)
        eval_time = time.perf_counter() - t0
        seen = max(1, int(p["seen"]))
        prev_wall = self.record[-1]["wall_time_s"] if self.record else 0.0
        row = EpochRecord(
            epoch=self.epoch + 1, lr=cfg.lr_at(self.epoch),
            train_loss=p["loss"] / seen, train_error=(seen - int(p["correct"])) / seen,
            test_loss=test.loss, test_error=test.error,
            train_correct=int(p["correct"]), train_images=int(p["seen"]),
            test_correct=test.correct, test_images=test.images,
            train_time_s=p["time"], images_per_s=p["seen"] / p["time"] if p["time"] > 0 else None,
            epoch_time_s=p["time"] + eval_time, wall_time_s=prev_wall + p["time"] + eval_time,
        )
        self.record.append(row.to_dict())
        self.epoch, self.step = self.epoch + 1, 0
        self.partial = {"loss": 0.0, "correct": 0, "seen": 0, "time": 0.0}
        improved = self.best_error is None or test.error < self.best_error
        if improved:
            self.best_error, self.best_epoch = test.error, row.epoch
        if self.checkpoint is not None:
            self.save(self.checkpoint)
        if improved and self.best_checkpoint is not None:
            self.save(self.best_checkpoint)
        self.log(f"epoch {row.epoch}/{cfg.epochs}: train loss {row.train_loss:.4f}, "
                 f"train error {100 * row.train_error:.2f}%, test error {100 * row.test_error:.2f}%, "
                 f"lr {row.lr:g}, {row.epoch_time_s:.1f} s")

    def _interrupt(self) -> None:
        where = f"epoch {self.epoch + 1}, step {self.step}"
        if self.checkpoint is None:
            raise TrainingInterrupted(f"interrupted at {where}; no checkpoint path was given, nothing was saved")
        if self.world.distributed:  # the ranks' running statistics of the epoch are not summed
            raise TrainingInterrupted(f"interrupted at {where}; the checkpoint of the last finished epoch is in "
                                      f"{self.checkpoint}")
        self.save(self.checkpoint, interrupted=True)
        raise TrainingInterrupted(f"interrupted at {where}; resumable checkpoint written to {self.checkpoint} "
                                  f"(continue with: resnet-cli train --resume {self.checkpoint})")

    @contextlib.contextmanager
    def _sigint_requests_stop(self) -> Iterator[None]:
        """First Ctrl-C: finish the step, save, stop. Second: stop now (default handler)."""
        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
            self.log("Ctrl-C: stopping after this step and writing a resumable checkpoint (again to abort)")

        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave signals alone
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
