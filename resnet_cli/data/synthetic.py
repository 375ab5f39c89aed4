"""``synthetic``: a learnable image classification task generated on the fly — no files, no download.

Each class has a smooth colour pattern (a random 4x4 grid per channel, upsampled); an image is its class's
pattern, shifted by up to an eighth of the image, scaled by a random contrast, plus a random brightness and
pixel noise. A small CNN separates the classes well above chance within an epoch or two, yet not instantly
(noise std 0.7 per pixel against a pattern of std 1 times a contrast of 0.6-1.4), so tests see learning happen.

Deterministic: the patterns and every image come from fixed seeds (the train and test splits from different
streams), independent of the training seed, so a checkpoint's test set can always be rebuilt exactly.
"""

from __future__ import annotations

import torch

from ..limits import check_memory, images_bytes
from . import DatasetInfo, TensorImageDataset, match_channels

NUM_CLASSES = 10
DEFAULT_SIZE = 32
SPLIT_SIZES = {"train": 4096, "test": 1024}
_PATTERN_SEED = 20151210  # the ResNet paper's arXiv date
_SPLIT_SEEDS = {"train": 1, "test": 2}
NOISE_STD = 0.7


def class_patterns(size: int, channels: int = 3, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """num_classes x channels x size x size, each pattern with zero mean and unit std."""
    g = torch.Generator().manual_seed(_PATTERN_SEED)
    grid = torch.randn(num_classes, channels, 4, 4, generator=g)
    patterns = torch.nn.functional.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)
    patterns = patterns - patterns.mean(dim=(1, 2, 3), keepdim=True)
    return patterns / patterns.std(dim=(1, 2, 3), keepdim=True)


def generate(split: str, n: int, size: int, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images and labels of ``split`` (labels cycle through the classes, then are shuffled)."""
    g = torch.Generator().manual_seed(_PATTERN_SEED + _SPLIT_SEEDS[split])
    patterns = class_patterns(size, channels)
    labels = torch.arange(n) % NUM_CLASSES
    labels = labels[torch.randperm(n, generator=g)]
    shift_max = max(1, size // 8)
    shifts = torch.randint(-shift_max, shift_max + 1, (n, 2), generator=g).tolist()
    contrast = 0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=g)
    brightness = 0.3 * torch.randn(n, channels, 1, 1, generator=g)
    noise = NOISE_STD * torch.randn(n, channels, size, size, generator=g)
    base = patterns[labels]
    shifted = torch.stack([torch.roll(base[k], shifts=(sy, sx), dims=(1, 2)) for k, (sy, sx) in enumerate(shifts)])
    return shifted * contrast + brightness + noise, labels


def load(*, split: str, input_size: int | None, data_dir=None, download: bool = False, seed: int = 0,
         in_channels: int | None = None) -> tuple[TensorImageDataset, DatasetInfo]:
    size = input_size or DEFAULT_SIZE
    channels = in_channels or 3
    # the noise, the patterns and the images are alive at once while generating
    check_memory(images_bytes(SPLIT_SIZES[split], max(3, channels), size, copies=3),
                 f"{SPLIT_SIZES[split]:,} synthetic images of {size}x{size}")
    images, labels = generate(split, SPLIT_SIZES[split], size, 3)
    images = match_channels(images, channels, "synthetic")
    # Already centred and of roughly unit variance: normalisation is the identity.
    info = DatasetInfo(name="synthetic", num_classes=NUM_CLASSES, input_size=size, in_channels=channels,
                       mean=(0.0,) * channels, std=(1.0,) * channels, crop_padding=max(1, size // 8), flip=False)
    return TensorImageDataset(images, labels, info), info
