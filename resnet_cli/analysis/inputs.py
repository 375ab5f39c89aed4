"""What a study of a trained network reads: the checkpoint, its network and its data as tensors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass
class StudyInputs:
    checkpoint: Any  # resnet_cli.checkpoint.Checkpoint
    model: Any  # on the CPU, in eval mode
    images: Any  # N x C x H x W, float32, normalised as in training
    labels: Any  # N, int64
    dataset: str  # the data's name


def load_study_inputs(path: str | os.PathLike[str], arch: str | None = None, dataset: str | None = None,
                      data_dir: str | os.PathLike[str] | None = None, limit: int | None = None,
                      split: str = "test", normalize: str | None = None) -> StudyInputs:
    """The checkpoint at ``path`` (a bare state dict with ``arch``, or inferred), its network, and the first
    ``limit`` images of its data's ``split`` (or of ``dataset``), normalised as ``Checkpoint.load_data`` says
    (``normalize`` overrides): what ``lesion`` and ``gradients`` measure."""
    from ..checkpoint import load_checkpoint
    from ..data import dataset_tensors

    ckpt = load_checkpoint(path, arch=arch)
    model = ckpt.build_model()
    data, info = ckpt.load_data(split, dataset=dataset, data_dir=data_dir, limit=limit, normalize=normalize)
    images, labels = dataset_tensors(data)
    return StudyInputs(ckpt, model, images, labels, info.name)
