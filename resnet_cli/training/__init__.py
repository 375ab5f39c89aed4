"""Training: the ResNet paper's recipe, reproducible and resumable; ``train`` is the CLI's ``train``.

- config.py: ``TrainConfig``, the hyper-parameters (torch-free);
- trainer.py: the ``Trainer`` and its loop (steps, epochs, checkpoints, Ctrl-C), ``TrainingInterrupted``;
- resume.py: the checks on a saved training state before a run continues it (``check_resumable``,
  ``check_resumable_tensors``, ``saved_epochs``);
- run.py: ``train``, one call from a spec and a dataset (or a checkpoint) to a ``TrainResult``.

The evaluation loop is analysis/evaluation.py's, the record's fields checkpoint/format.py's (``EpochRecord``).
``evaluate`` and ``flush_denormals`` are imported here from analysis/evaluation.py for code that imported them
from this module before it was a package.
"""

from __future__ import annotations

from ..analysis.evaluation import evaluate, flush_denormals
from .config import TrainConfig
from .resume import check_resumable, check_resumable_tensors, saved_epochs
from .run import TrainResult, train
from .trainer import Trainer, TrainingInterrupted

__all__ = ["TrainConfig", "TrainResult", "Trainer", "TrainingInterrupted", "check_resumable",
           "check_resumable_tensors", "evaluate", "flush_denormals", "saved_epochs", "train"]
