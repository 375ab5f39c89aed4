"""Image folders made by the tests (JPEGs of smooth random colour fields in 3 class folders) and a tiny untrained
network with a checkpoint that reads them: the streaming tests' data, in one process or under torchrun."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from resnet_cli.checkpoint import save_checkpoint
from resnet_cli.data import load_dataset
from resnet_cli.models import build_model
from resnet_cli.registry import get_spec

CLASSES = ("ant", "bee", "cat")


def write_folder(root: Path, per_class: int, size: tuple[int, int] = (40, 30), seed: int = 0) -> Path:
    """``per_class`` JPEGs of ``size`` in each of 3 class folders: smooth random colour fields (a network's
    predictions on them vary, unlike on flat images)."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            coarse[..., c] = 255 - coarse[..., c] // 4  # a class's own colour leaning
            img = Image.fromarray(coarse).resize(size, Image.BILINEAR)
            img.save(root / name / f"{i:04d}.jpg", quality=90)
    return root


def tiny_net(size: int = 32, seed: int = 0):
    """An untrained CIFAR ResNet-14 with random batch-norm statistics: deterministic, varied predictions."""
    torch.manual_seed(seed)
    spec = get_spec("cifar_resnet14", widths=(4, 8, 16), stem_width=4, input_size=size, num_classes=len(CLASSES))
    model = build_model(spec)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return spec, model.eval()


def folder_checkpoint(path: Path, folder: Path, size: int = 32) -> Path:
    spec, model = tiny_net(size)
    _, info = load_dataset("imagefolder", "test", input_size=size, data_dir=folder)
    save_checkpoint(path, spec=spec, state_dict=model.state_dict(), dataset=info, record=[])
    return path


