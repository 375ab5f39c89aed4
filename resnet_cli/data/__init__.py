"""Datasets that train and test the zoo: what a lesion study needs besides a trained network.

``load_dataset(name, split)`` returns a torch ``Dataset`` of ``(image, label)`` pairs — the image a normalised
float tensor C x H x W, the label an int — and a ``DatasetInfo`` that says what the network must accept (classes,
input size, channels) and how the images were normalised. A checkpoint stores the ``DatasetInfo``, so ``eval``
and the lesion study can rebuild the same test set from the checkpoint alone.

Sources (one module each): ``synthetic`` (generated, no files), ``digits`` (scikit-learn's bundled 8x8
handwritten digits), ``cifar10`` / ``cifar100`` (the official python batches), ``imagefolder`` (one folder per
class, read with Pillow).

Augmentation (crop and flip, the ResNet paper's CIFAR recipe, He et al. 2015 §4.2) is a property of the data:
``DatasetInfo.crop_padding`` and ``DatasetInfo.flip`` say what fits. ``augment_batch`` applies it to a batch
with an explicit generator, so that training is reproducible and resumable.

Datasets are torch-dependent; import this package lazily (the CLI's fast commands never do).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..devices import to_device
from ..errors import ResnetCliError, did_you_mean
from ..limits import check_input_size

SPLITS = ("train", "test")


class DatasetError(ResnetCliError):
    """A dataset that cannot be loaded: unknown name, missing or malformed files, failed download."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset gives the network, as plain data (stored in every checkpoint)."""

    name: str
    num_classes: int
    input_size: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # Training augmentation that fits this data: random crop after zero-padding by this many pixels, and
    # horizontal flips (not for digits: a mirrored digit is another glyph).
    crop_padding: int = 0
    flip: bool = False
    # Where the files came from (data_dir), for messages and for ``eval`` to find them again; "" if none.
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        if not isinstance(data, dict):
            raise DatasetError("dataset description must be a mapping")
        names = {f.name for f in dataclasses.fields(cls)}
        # Tolerate fields written by newer versions; require the ones a network needs.
        kwargs = {k: v for k, v in data.items() if k in names}
        missing = [k for k in ("name", "num_classes", "input_size", "in_channels", "mean", "std") if k not in kwargs]
        if missing:
            raise DatasetError(f"dataset description lacks {', '.join(missing)}")
        try:
            kwargs["mean"] = tuple(float(v) for v in kwargs["mean"])
            kwargs["std"] = tuple(float(v) for v in kwargs["std"])
            kwargs["num_classes"] = int(kwargs["num_classes"])
            kwargs["input_size"] = int(kwargs["input_size"])
            kwargs["in_channels"] = int(kwargs["in_channels"])
            if "crop_padding" in kwargs:
                kwargs["crop_padding"] = int(kwargs["crop_padding"])
            if "flip" in kwargs:
                kwargs["flip"] = bool(kwargs["flip"])
        except (TypeError, ValueError):
            raise DatasetError("dataset description has a field of the wrong type") from None
        return cls(**kwargs)

    @property
    def augmentation(self) -> str:
        """Human-readable: 'crop (pad 4) + flip', 'crop (pad 4)', 'none'."""
        parts = []
        if self.crop_padding:
            parts.append(f"crop (pad {self.crop_padding})")
        if self.flip:
            parts.append("flip")
        return " + ".join(parts) or "none"


class TensorImageDataset(Dataset):
    """Images held in memory as one float tensor N x C x H x W (already normalised) and int64 labels.

    ``get_batch(indices)`` indexes the tensors directly: the trainer's fast path (no per-item collate).
    ``classes``: the class names in label order, where the source names them.
    """

    classes: list[str] | None = None

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, info: DatasetInfo) -> None:
        if images.shape[0] != labels.shape[0]:
            raise ValueError("images and labels differ in length")
        self.images = images
        self.labels = labels.to(torch.int64)
        self.info = info

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        indices = to_device(indices, self.images.device)  # on a GPU: a copy the host does not wait for
        return self.images[indices], self.labels[indices]

    def to(self, device: Any) -> TensorImageDataset:
        """The same dataset with its tensors on ``device``: batches are then taken (and augmented, and for
        uint8 images converted) there, with no copy per batch."""
        moved = copy.copy(self)
        moved.images, moved.labels = self.images.to(device), self.labels.to(device)
        return moved

    def fingerprint(self) -> str:
        """The images as held (uint8 for CIFAR) and labels, with the normalisation applied to them: what a resumed
        study must find again."""
        from .stream import tensor_fingerprint

        return tensor_fingerprint(self.images, self.labels, torch.tensor(self.info.mean + self.info.std))

    def with_info(self, info: DatasetInfo) -> TensorImageDataset:
        """The same images normalised by ``info``'s mean and std instead (``--normalize``): these are stored
        normalised, so undo this info's normalisation and apply the new one."""
        mean, std = torch.tensor(self.info.mean), torch.tensor(self.info.std)
        raw = self.images * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1)
        out = type(self)(normalise(raw, info.mean, info.std), self.labels, info)
        out.classes = self.classes
        return out


class Uint8ImageDataset(TensorImageDataset):
    """Images kept as uint8 N x C x h x w (CIFAR-10's 50,000 training images: 150 MB, not 600 MB as floats),
    scaled to [0, 1], resized, matched to the info's channels and normalised when a batch is taken."""

    def _prepare(self, raw: torch.Tensor) -> torch.Tensor:
        x = resize_images(raw.to(torch.float32) / 255.0, self.info.input_size)
        x = match_channels(x, self.info.in_channels, self.info.name)
        return normalise(x, self.info.mean, self.info.std)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self._prepare(self.images[i:i + 1])[0], int(self.labels[i])

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        indices = to_device(indices, self.images.device)  # on a GPU: a copy the host does not wait for
        return self._prepare(self.images[indices]), self.labels[indices]

    def with_info(self, info: DatasetInfo) -> Uint8ImageDataset:
        out = type(self)(self.images, self.labels, info)  # normalised per batch: the info is all there is
        out.classes = self.classes
        return out


def mix_seed(*parts: int) -> int:
    """One 63-bit seed from several integers (a fixed mixing, unlike ``hash``, which is salted for strings)."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = ((x ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF


def augment_batch(x: torch.Tensor, info: DatasetInfo, generator: torch.Generator) -> torch.Tensor:
    """Random crop after zero-padding and random horizontal flip, per image, as ``info`` says fits.

    Padding is zero in the *normalised* space (the channel mean), as in the usual CIFAR implementations that pad
    after normalising. Draws come from ``generator`` (on the CPU) so that the same generator state gives the same
    batch on any device.
    """
    n, _, h, w = x.shape
    pad = info.crop_padding
    if pad:
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
        x = torch.stack([padded[k, :, dy[k]:dy[k] + h, dx[k]:dx[k] + w] for k in range(n)])
    if info.flip:
        flip = torch.rand(n, generator=generator) < 0.5
        flip = to_device(flip, x.device).view(n, 1, 1, 1)
        x = torch.where(flip, x.flip(-1), x)
    return x


def normalise(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = _per_channel(tuple(mean), images.dtype, images.device)
    s = _per_channel(tuple(std), images.dtype, images.device)
    return (images - m) / s


@functools.lru_cache(maxsize=64)
def _per_channel(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``values`` as a 1 x C x 1 x 1 tensor, made once per device: a tensor made from Python numbers on a GPU is a
    copy the host waits for, which in every batch would undo the trainer's overlap of data and steps."""
    with torch.inference_mode(False):  # a plain tensor, whichever mode its first caller runs in
        return torch.tensor(values, dtype=dtype, device=device).view(1, -1, 1, 1)


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """N x C x h x w -> N x C x size x size (bilinear, antialiased when shrinking)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    shrink = size < images.shape[-1]
    return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                                           antialias=shrink)


def match_channels(images: torch.Tensor, in_channels: int, source: str) -> torch.Tensor:
    """Grey images repeated to ``in_channels``; colour images averaged to one channel; else an error."""
    c = images.shape[1]
    if c == in_channels:
        return images
    if c == 1:
        return images.expand(-1, in_channels, -1, -1).contiguous()
    if in_channels == 1:
        return images.mean(dim=1, keepdim=True)
    raise DatasetError(f"{source} images have {c} channels; the network takes {in_channels}")


def default_data_dir() -> Path:
    """$RESNET_CLI_DATA, else ~/.cache/resnet-cli/data."""
    env = os.environ.get("RESNET_CLI_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "resnet-cli" / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` (else ``default_data_dir()``) as an absolute path with its symlinks resolved, refused in one line
    where it cannot be: a name past the file system's limits, a symlink loop."""
    from ..limits import check_path_length

    path = Path(data_dir).expanduser() if data_dir else default_data_dir()
    what = "--data-dir" if data_dir else "the data folder ($RESNET_CLI_DATA)"
    check_path_length(path, what, DatasetError)
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, before Python 3.13
        raise DatasetError(f"{what} {path} cannot be resolved ({exc})") from None


Loader = Callable[..., tuple[Dataset, DatasetInfo]]


def _loaders() -> dict[str, Loader]:
    from . import cifar, digits, imagefolder, synthetic

    return {
        "synthetic": synthetic.load,
        "digits": digits.load,
        "cifar10": cifar.load_cifar10,
        "cifar100": cifar.load_cifar100,
        "imagefolder": imagefolder.load,
    }


DATASET_NAMES = ("synthetic", "digits", "cifar10", "cifar100", "imagefolder")


def load_dataset(name: str, split: str, *, input_size: int | None = None, data_dir: str | os.PathLike | None = None,
                 download: bool = False, limit: int | None = None, seed: int = 0,
                 in_channels: int | None = None) -> tuple[Dataset, DatasetInfo]:
    """The ``split`` ("train" or "test") of dataset ``name`` and its description.

    ``input_size`` resizes (digits, imagefolder) or generates at that size (synthetic); CIFAR stays 32 unless
    asked otherwise. ``in_channels`` repeats grey channels (digits) for a network that takes colour.
    ``limit`` keeps the first N items (a fixed subset: the same for every seed). Augmentation is not applied here:
    the trainer augments whole batches itself (``augment_batch``).
    """
    key = (name or "").strip().lower()
    loaders = _loaders()
    if key not in loaders:
        raise DatasetError(f"unknown dataset {name!r}{did_you_mean(key, loaders)}; choose from "
                           f"{', '.join(DATASET_NAMES)}")
    if split not in SPLITS:
        raise DatasetError(f"split must be 'train' or 'test', not {split!r}")
    if input_size is not None:
        check_input_size(input_size, "input size", DatasetError)
    if limit is not None and limit < 1:
        raise DatasetError(f"an image limit must be at least 1 (got {limit})")
    dataset, info = loaders[key](split=split, input_size=input_size, data_dir=data_dir, download=download,
                                 seed=seed, in_channels=in_channels)
    if limit is not None and limit < len(dataset):  # type: ignore[arg-type]
        dataset = limit_dataset(dataset, limit)
    return dataset, info


def limit_dataset(dataset: Dataset, limit: int) -> Dataset:
    if isinstance(dataset, TensorImageDataset):
        kept = type(dataset)(dataset.images[:limit], dataset.labels[:limit], dataset.info)
        kept.classes = dataset.classes
        return kept
    if hasattr(dataset, "head"):  # an image folder: still its own kind (read lazily, fingerprinted by its files)
        return dataset.head(limit)
    return torch.utils.data.Subset(dataset, range(limit))


def dataset_tensors(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole dataset as two tensors: images N x C x H x W (float32, contiguous) and labels N (int64): what
    the lesion study and the gradient measurement take."""
    if hasattr(dataset, "get_batch"):
        images, labels = dataset.get_batch(torch.arange(len(dataset)))
    else:
        pairs = [dataset[i] for i in range(len(dataset))]  # type: ignore[arg-type]
        images = torch.stack([p[0] for p in pairs])
        labels = torch.tensor([int(p[1]) for p in pairs], dtype=torch.long)
    return images.float().contiguous(), labels.long()


__all__ = ["DATASET_NAMES", "DatasetError", "DatasetInfo", "TensorImageDataset", "Uint8ImageDataset",
           "augment_batch", "dataset_tensors", "default_data_dir", "load_dataset", "mix_seed", "normalise",
           "resolve_data_dir"]
