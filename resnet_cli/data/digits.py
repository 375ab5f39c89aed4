"""``digits``: scikit-learn's bundled handwritten digits (UCI optdigits test set: 1,797 images of 8x8 pixels,
values 0-16, 10 classes) — real data, no download — resized to the network's input size.

The split is fixed (not the training seed): a stratified shuffle with seed 0 keeps 1,347 images for training and
450 for testing (the 75/25 of scikit-learn's ``train_test_split``), so a checkpoint's test set can be rebuilt.
Images are scaled to [0, 1], resized bilinearly (torch ``interpolate``), repeated to the network's channels and
normalised with the training split's mean and std (computed once from the 8x8 pixels).

Augmentation: random crops (translation by up to 1/8 of the image), but no flips: a mirrored 2 or 5 is another
glyph, not the same digit.
"""

from __future__ import annotations

import torch

from ..limits import check_memory, images_bytes
from . import DatasetError, DatasetInfo, TensorImageDataset, match_channels, normalise, resize_images

DEFAULT_SIZE = 32
TEST_FRACTION = 0.25


def _raw() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetError("the digits dataset needs scikit-learn: pip install scikit-learn (in a checkout: "
                           "pip install -e '.[data]')") from None
    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # N x 1 x 8 x 8
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    return images, labels


def split_indices(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Stratified, fixed: per class, a seed-0 permutation; the first quarter (rounded) goes to test."""
    g = torch.Generator().manual_seed(0)
    train, test = [], []
    for c in range(int(labels.max()) + 1):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = round(len(idx) * TEST_FRACTION)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    out = {"train": torch.cat(train), "test": torch.cat(test)}
    # Interleave classes (a fixed shuffle) so that --limit keeps every class.
    for k in out:
        out[k] = out[k][torch.randperm(len(out[k]), generator=g)]
    return out


def load(*, split: str, input_size: int | None, data_dir=None, download: bool = False, seed: int = 0,
         in_channels: int | None = None) -> tuple[TensorImageDataset, DatasetInfo]:
    size = input_size or DEFAULT_SIZE
    channels = in_channels or 3
    images, labels = _raw()
    parts = split_indices(labels)
    train = images[parts["train"]]
    mean, std = float(train.mean()), float(train.std())
    chosen = parts[split]
    check_memory(images_bytes(len(chosen), max(1, channels), size, copies=3),
                 f"{len(chosen):,} digits of {size}x{size}")
    x = resize_images(images[chosen], size)
    x = match_channels(x, channels, "digits")
    info = DatasetInfo(name="digits", num_classes=10, input_size=size, in_channels=channels,
                       mean=(mean,) * channels, std=(std,) * channels, crop_padding=max(1, size // 8), flip=False)
    data = TensorImageDataset(normalise(x, info.mean, info.std), labels[chosen], info)
    data.classes = [str(d) for d in range(10)]
    return data, info
