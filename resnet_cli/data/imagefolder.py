"""``imagefolder``: one folder per class, images read with Pillow (torchvision's ImageFolder convention).

``--data-dir DIR`` either holds ``train/`` and ``test/`` (or ``val/``) folders, each with one sub-folder per class,
or holds the class folders directly (then the same images serve both splits: e.g. an ImageNet validation set laid
out as ``val/n01440764/*.JPEG``, for evaluation). Classes are the sorted folder names, so ImageNet's sorted WordNet
IDs give the usual class indices.

Images are resized so the shorter side is ``input_size * 256/224`` and centre-cropped to ``input_size`` (the
ImageNet evaluation protocol), converted to RGB (or L for one channel) and normalised with ImageNet's mean and
std. Training augmentation: random crop after padding by 1/8 of the size, and horizontal flips.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from . import DatasetError, DatasetInfo, normalise

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224
SPLIT_FOLDERS = {"train": ("train",), "test": ("test", "val")}


def find_root(data_dir: Path, split: str) -> Path:
    for name in SPLIT_FOLDERS[split]:
        if (data_dir / name).is_dir():
            return data_dir / name
    return data_dir


def scan(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"no class folders in {root} (imagefolder wants one sub-folder of images per class)")
    items = []
    for label, name in enumerate(classes):
        for f in sorted((root / name).rglob("*")):
            if f.suffix.lower() in EXTENSIONS and f.is_file():
                items.append((f, label))
    if not items:
        raise DatasetError(f"no images ({', '.join(sorted(EXTENSIONS))}) under {root}")
    return classes, items


class ImageFolderDataset(Dataset):
    """Reads, resizes, crops and normalises one image per item (lazily)."""

    def __init__(self, items: list[tuple[Path, int]], classes: list[str], info: DatasetInfo) -> None:
        self.items, self.classes, self.info = items, classes, info

    def __len__(self) -> int:
        return len(self.items)

    def with_info(self, info: DatasetInfo) -> ImageFolderDataset:
        return type(self)(self.items, self.classes, info)  # normalised per item: the info is all there is

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        import numpy as np
        from PIL import Image

        path, label = self.items[i]
        size = self.info.input_size
        try:
            with Image.open(path) as img:
                img = img.convert("L" if self.info.in_channels == 1 else "RGB")
                w, h = img.size
                short = round(size * 256 / 224)
                scale = short / min(w, h)
                img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
                w, h = img.size
                left, top = (w - size) // 2, (h - size) // 2
                img = img.crop((left, top, left + size, top + size))
                arr = np.asarray(img, dtype=np.float32) / 255.0
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from None
        x = torch.from_numpy(arr.copy())
        x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
        return normalise(x.unsqueeze(0), self.info.mean, self.info.std)[0], label


def load(*, split: str, input_size: int | None, data_dir=None, download: bool = False, seed: int = 0,
         in_channels: int | None = None) -> tuple[ImageFolderDataset, DatasetInfo]:
    if data_dir is None:
        raise DatasetError("imagefolder needs --data-dir DIR (one sub-folder of images per class)")
    base = Path(data_dir).expanduser().resolve()
    if not base.is_dir():
        raise DatasetError(f"--data-dir {base} is not a folder")
    root = find_root(base, split)
    classes, items = scan(root)
    size = input_size or DEFAULT_SIZE
    channels = in_channels or 3
    if channels not in (1, 3):
        raise DatasetError(f"imagefolder reads RGB or grey images; the network takes {channels} channels")
    mean = IMAGENET_MEAN if channels == 3 else (sum(IMAGENET_MEAN) / 3,)
    std = IMAGENET_STD if channels == 3 else (sum(IMAGENET_STD) / 3,)
    # Spread --limit over classes: a fixed interleaving (class 0 item 0, class 1 item 0, ...).
    by_class: dict[int, list[tuple[Path, int]]] = {}
    for item in items:
        by_class.setdefault(item[1], []).append(item)
    interleaved = [lst[k] for k in range(max(map(len, by_class.values()))) for lst in by_class.values() if k < len(lst)]
    info = DatasetInfo(name="imagefolder", num_classes=len(classes), input_size=size, in_channels=channels,
                       mean=mean, std=std, crop_padding=max(1, size // 8), flip=True, source=str(base))
    return ImageFolderDataset(interleaved, classes, info), info
