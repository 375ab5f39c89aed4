"""``TrainConfig``: a run's hyper-parameters, with the ResNet paper's CIFAR recipe as defaults (He et al. 2015
§4.2: SGD with momentum 0.9, weight decay 1e-4, batch 128, learning rate 0.1 divided by 10 at 50% and 75% of
training). Torch-free: the CLI checks its options against it before torch is imported.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import ResnetCliError


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
