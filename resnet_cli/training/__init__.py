"""Training: the ResNet paper's recipe, reproducible and resumable (``train``, the CLI's ``train``)."""

from __future__ import annotations

from .trainer import (
    TrainConfig,
    Trainer,
    TrainingInterrupted,
    TrainResult,
    check_resumable,
    check_resumable_tensors,
    evaluate,
    flush_denormals,
    saved_epochs,
    train,
)

__all__ = ["TrainConfig", "TrainResult", "Trainer", "TrainingInterrupted", "check_resumable",
           "check_resumable_tensors", "evaluate", "flush_denormals", "saved_epochs", "train"]
