"""What a study of a trained network reads: the checkpoint, its network, and its data as a stream of batches."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass
class StudyInputs:
    checkpoint: Any  # resnet_cli.checkpoint.Checkpoint
    model: Any  # on the CPU, in eval mode
    data: Any  # resnet_cli.data.stream.ImageStream: batches normalised as in training, read as they are used
    dataset: str  # the data's name


def load_study_inputs(ckpt: Any, dataset: str | None = None, data_dir: str | os.PathLike[str] | None = None,
                      limit: int | None = None, split: str = "test", normalize: str | None = None, *,
                      workers: int = 0, skip_bad: bool = False, pin_memory: bool = False) -> StudyInputs:
    """A loaded checkpoint (``checkpoint.load_checkpoint``), its network, and the first ``limit`` images of its
    data's ``split`` (or of ``dataset``; an image folder's spread over its classes), normalised as
    ``Checkpoint.load_data`` says (``normalize`` overrides): what ``lesion`` and ``gradients`` measure. The images
    are not read here: the stream reads each batch when it is measured, ``workers`` processes decoding an image
    folder's files (``pin_memory`` for a GPU)."""
    from ..data.stream import ImageStream

    model = ckpt.build_model()
    data, info = ckpt.load_data(split, dataset=dataset, data_dir=data_dir, limit=limit, normalize=normalize)
    stream = ImageStream(data, workers=workers, pin_memory=pin_memory, skip_bad=skip_bad)
    return StudyInputs(ckpt, model, stream, info.name)
