"""Training and evaluation: the ResNet paper's recipe, reproducible and resumable.

Defaults follow He et al. 2015 (§3.4 for ImageNet, §4.2 for CIFAR): SGD with momentum 0.9, weight decay 1e-4,
batch 128, learning rate 0.1 divided by 10 at 50% and 75% of training (the paper's 32k and 48k of 64k
iterations), crop-and-flip augmentation where the data allows it (``DatasetInfo.crop_padding`` / ``flip``:
no flips for digits). Stochastic depth is a spec field (``spec.stochastic_depth``), honoured by the blocks.

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
import dataclasses
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..analysis.evaluation import autocast, evaluate, flush_denormals
from ..checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ..data import DatasetInfo, TensorImageDataset, augment_batch, mix_seed
from ..data.stream import ImageStream
from ..devices import autocast_dtype, channels_last_for, keeps_on_device, to_device
from ..distributed import SINGLE, World
from ..errors import ResnetCliError
from ..progress import Counter, Progress
from ..spec import ArchSpec


class TrainingInterrupted(ResnetCliError):
    """Ctrl-C during training: a resumable checkpoint was written (or could not be: the message says)."""

    exit_code = 130


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; the defaults are the ResNet paper's CIFAR recipe."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of the epochs where the lr drops
    gamma: float = 0.1
    augment: bool = True
    seed: int = 0
    amp: bool = True  # mixed precision, used only on CUDA (devices.autocast_dtype: bf16 where supported)
    eval_batch_size: int = 256
    workers: int = 0  # DataLoader workers for datasets read from files (imagefolder)
    sync_bn: bool = False  # under torchrun: SyncBatchNorm (kept by --resume like the rest)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-based ``epoch``: ``lr * gamma^k`` after ``k`` milestones."""
        drops = sum(1 for m in self.milestone_epochs() if epoch >= m)
        return round(self.lr * self.gamma ** drops, 12)  # 0.001, not 0.0010000000000000002

    def milestone_epochs(self) -> list[int]:
        return [max(1, round(f * self.epochs)) for f in self.milestones]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if "milestones" in kwargs:
            kwargs["milestones"] = tuple(kwargs["milestones"])
        return cls(**kwargs)

    def validate(self) -> TrainConfig:
        from ..limits import MAX_EPOCHS

        if not 1 <= self.epochs <= MAX_EPOCHS:
            got = f"{self.epochs:,}" if abs(self.epochs) < 10**15 else f"a number of {len(str(self.epochs))} digits"
            raise ResnetCliError(f"a run's epochs (--epochs, or the checkpoint's when resuming) must be 1 to "
                                 f"{MAX_EPOCHS:,}, the limit of one run (got {got})")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ResnetCliError("batch sizes must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ResnetCliError(f"--lr must be a positive number (got {self.lr})")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):  # also refuses nan
            raise ResnetCliError(f"--weight-decay must be a number >= 0 (got {self.weight_decay})")
        if not 0 <= self.momentum < 1:
            raise ResnetCliError(f"--momentum must be in [0, 1) (got {self.momentum})")
        if any(not 0 < m <= 1 for m in self.milestones):
            raise ResnetCliError("lr milestones are fractions of the epochs, in (0, 1]")
        return self


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
        row = {
            "epoch": self.epoch + 1,
            "lr": cfg.lr_at(self.epoch),
            "train_loss": p["loss"] / seen,
            "train_error": (seen - int(p["correct"])) / seen,
            "test_loss": test.loss,
            "test_error": test.error,
            "train_correct": int(p["correct"]),
            "train_images": int(p["seen"]),
            "test_correct": test.correct,
            "test_images": test.images,
            "train_time_s": p["time"],
            "images_per_s": p["seen"] / p["time"] if p["time"] > 0 else None,
            "epoch_time_s": p["time"] + eval_time,
            "wall_time_s": prev_wall + p["time"] + eval_time,
        }
        self.record.append(row)
        self.epoch, self.step = self.epoch + 1, 0
        self.partial = {"loss": 0.0, "correct": 0, "seen": 0, "time": 0.0}
        improved = self.best_error is None or test.error < self.best_error
        if improved:
            self.best_error, self.best_epoch = test.error, row["epoch"]
        if self.checkpoint is not None:
            self.save(self.checkpoint)
        if improved and self.best_checkpoint is not None:
            self.save(self.best_checkpoint)
        self.log(f"epoch {row['epoch']}/{cfg.epochs}: train loss {row['train_loss']:.4f}, "
                 f"train error {100 * row['train_error']:.2f}%, test error {100 * row['test_error']:.2f}%, "
                 f"lr {row['lr']:g}, {row['epoch_time_s']:.1f} s")

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


# --------------------------------------------------------------------------- one call
def _kept_limits(saved: dict[str, Any], train_limit: int | None, test_limit: int | None) -> tuple[Any, Any]:
    """A resumed run trains and tests on the images it started with: refuse a --limit that would change them."""
    for option, given, key in (("--limit", train_limit, "train_limit"), ("--test-limit", test_limit, "test_limit")):
        if given is not None and given != saved.get(key):
            raise ResnetCliError(f"{option} {given}: the checkpoint's run uses {option} {saved.get(key) or 'none'}, "
                                 f"and a resumed run keeps its data (drop {option})")
    return saved.get("train_limit"), saved.get("test_limit")


def check_resumable(state: Checkpoint) -> TrainConfig:
    """The configuration to continue ``state`` with, after checking every part of its training state that
    resuming reads (types, ranges, the record's fields), so that a damaged state fails now, not after an epoch."""
    where = state.path or "the checkpoint"
    damaged = _damaged(state)
    extra = state.extra
    if not isinstance(extra, dict):
        raise damaged(f"its extra state is a {type(extra).__name__}, not a mapping")
    optimizer = extra.get("optimizer")
    if state.dataset is None or not isinstance(optimizer, dict):
        raise ResnetCliError(f"{where} holds no training state to resume (was it written by 'train'?)")

    if not isinstance(optimizer.get("state"), dict) or not isinstance(optimizer.get("param_groups"), list):
        raise damaged("the optimizer state is not SGD's")
    config = extra.get("config", {})
    if not isinstance(config, dict):
        raise damaged("config is not a mapping")
    for f in dataclasses.fields(TrainConfig):
        if f.name in config and not _same_kind(config[f.name], f.default):
            raise damaged(f"config {f.name} = {str(config[f.name])[:40]!r}")
    _check_position(state, damaged)
    from ..checkpoint import RECORD_NUMBERS, RECORD_REQUIRED, CheckpointError, check_record

    try:
        check_record(state.record, where, RECORD_REQUIRED + tuple(k for k in RECORD_NUMBERS if k != "images_per_s"))
    except CheckpointError as exc:
        raise damaged(str(exc).removeprefix(f"{where}: ")) from None
    try:
        return TrainConfig.from_dict(config).validate()
    except (TypeError, ValueError) as exc:
        raise damaged(str(exc)) from None


def _check_position(state: Checkpoint, damaged: Callable[[str], ResnetCliError]) -> None:
    """Where the run stopped (epoch, step, the epoch's running totals, the best epoch) is whole and consistent."""
    extra = state.extra
    counters = [extra.get("epoch"), extra.get("step")]
    partial = extra.get("partial") or {}
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counters) or \
            extra["epoch"] != len(state.record):
        raise damaged(f"epoch {extra.get('epoch')!r} and step {extra.get('step')!r} with {len(state.record)} "
                      f"epochs in the record")
    if not isinstance(partial, dict) or not all(_same_kind(partial.get(k, 0), 0.0) for k in
                                                ("loss", "correct", "seen", "time")):
        raise damaged("the running totals of the epoch")
    if not all(v is None or _same_kind(v, 0.0) for v in (extra.get("best_error"), extra.get("best_epoch"))):
        raise damaged("the best epoch")


def _damaged(state: Checkpoint) -> Callable[[str], ResnetCliError]:
    """The error for one damaged part of ``state``'s training state."""
    where = state.path or "the checkpoint"
    return lambda what: ResnetCliError(f"{where} cannot be resumed: its training state is damaged ({what})")


def check_resumable_tensors(state: Checkpoint) -> None:
    """The tensors resuming hands to torch fit the checkpoint's network (built on the meta device: shapes, no
    memory), after ``check_resumable`` has checked the containers: one SGD group over
    all its parameters, each momentum buffer of its parameter's shape, a CPU RNG state of torch's kind. torch
    would take a wrong buffer and fail at the first step (or broadcast it silently); this fails before the data
    is read. Kept apart from ``check_resumable``, which reads no tensors, so both move with the resume code."""
    from ..models import build_model

    damaged = _damaged(state)
    with torch.device("meta"):
        model = build_model(state.spec)
    extra = state.extra
    params = list(model.parameters())
    groups = extra["optimizer"]["param_groups"]
    indices = [g.get("params") if isinstance(g, dict) else None for g in groups]
    if len(groups) != 1 or not isinstance(indices[0], list) or indices[0] != list(range(len(params))):
        raise damaged(f"the optimizer's parameter groups do not name the network's {len(params)} parameters")
    names = [name for name, _ in model.named_parameters()]
    for index, entry in extra["optimizer"]["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(entry, dict):
            raise damaged(f"optimizer state for parameter {str(index)[:20]!r}, which the network does not have")
        buffer, weight = entry.get("momentum_buffer"), params[index]
        if buffer is None:
            continue
        if not isinstance(buffer, torch.Tensor) or not buffer.is_floating_point() or buffer.shape != weight.shape:
            got = tuple(buffer.shape) if isinstance(buffer, torch.Tensor) else type(buffer).__name__
            raise damaged(f"the momentum buffer of {names[index]} is {got}; its weight is {tuple(weight.shape)}")
    rng = extra.get("rng_cpu")
    if rng is not None and not (isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8 and rng.dim() == 1):
        raise damaged("the CPU random number generator's state")
    if extra.get("scaler") is not None and not isinstance(extra["scaler"], dict):
        raise damaged("the gradient scaler's state")


def _same_kind(value: Any, default: Any) -> bool:
    """``value`` has the kind of ``default``: a bool for a bool, a whole number for an int, any number for a
    float, a list of numbers for a tuple."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, tuple):
        return isinstance(value, (list, tuple)) and all(_same_kind(v, 0.0) for v in value)
    return True


def saved_epochs(checkpoint: Checkpoint) -> int:
    """The total of epochs a checkpoint written by ``train`` was training for (30 where it does not say)."""
    return check_resumable(checkpoint).epochs


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
