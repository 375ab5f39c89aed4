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

from ..limits import LimitError, check_image_pixels
from . import DatasetError, DatasetInfo, normalise, resolve_data_dir

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


def class_names(root: Path) -> list[str]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"no class folders in {root} (imagefolder wants one sub-folder of images per class)")
    return classes


def scan(root: Path, classes: list[str] | None = None, size: int | None = None,
         ) -> tuple[list[str], list[tuple[Path, int]], dict[str, str]]:
    """The classes (``classes``, else the sorted folder names of ``root``), every image with its label, and the
    images whose header Pillow cannot read (path -> why: said before any work by whatever reads the folder, or left
    out with ``--skip-bad-images``).

    Each image's header is read (not its pixels): one past ``MAX_IMAGE_PIXELS`` (also once resized for ``size``)
    is refused now, before any training or evaluation."""
    classes = classes or class_names(root)
    items = []
    for label, name in enumerate(classes):
        for f in sorted((root / name).rglob("*")):
            if f.suffix.lower() in EXTENSIONS and f.is_file():
                items.append((f, label))
    if not items:
        raise DatasetError(f"no images ({', '.join(sorted(EXTENSIONS))}) under {root}")
    unreadable = {}
    for path, _label in items:
        try:
            check_image(path, size)
        except DatasetError as exc:
            unreadable[str(path)] = str(exc)
    return classes, items, unreadable


def check_image(path: Path, size: int | None = None) -> None:
    """Refuse an image whose pixels (or, with ``size``, whose resize for ``size``) would pass MAX_IMAGE_PIXELS,
    from its header alone."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():  # Pillow warns past 89M pixels; the limit below says it in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
    except Image.DecompressionBombError as exc:  # past any limit: refused, never left out as merely unreadable
        raise LimitError(f"image {path}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from None
    check_image_pixels(w, h, f"image {path}")
    if size is not None:
        check_image_pixels(*_resized(w, h, size), f"image {path} ({w} x {h}) resized for --input-size {size}")


def _resized(w: int, h: int, size: int) -> tuple[int, int]:
    """The size an image is resized to before its centre crop: the shorter side ``size * 256/224``."""
    scale = round(size * 256 / 224) / min(w, h)
    return max(size, round(w * scale)), max(size, round(h * scale))


class ImageFolderDataset(Dataset):
    """Reads, resizes, crops and normalises one image per item (lazily)."""

    def __init__(self, items: list[tuple[Path, int]], classes: list[str], info: DatasetInfo,
                 unreadable: dict[str, str] | None = None) -> None:
        self.items, self.classes, self.info = items, classes, info
        self.unreadable = unreadable or {}  # images whose header cannot be read: path -> why

    def __len__(self) -> int:
        return len(self.items)

    def with_info(self, info: DatasetInfo) -> ImageFolderDataset:
        return type(self)(self.items, self.classes, info, self.unreadable)  # normalised per item: the info is all

    def head(self, n: int) -> ImageFolderDataset:
        """The first ``n`` images (in the interleaved order: spread over the classes)."""
        kept = self.items[:n]
        names = {str(p) for p, _ in kept}
        return type(self)(kept, self.classes, self.info, {p: w for p, w in self.unreadable.items() if p in names})

    def describe_item(self, i: int) -> str:
        return str(self.items[i][0])

    def fingerprint(self) -> str:
        """The files' names (relative to the folder) and classes, and how they are preprocessed: what a resumed
        study must find again. Not the files' bytes: a study of 50,000 images would read them all first, and
        each rank reads only its share; an image fixed in place (a damaged file replaced) keeps the study's
        fingerprint, so the study resumes past it."""
        import hashlib
        import json

        root = Path(self.info.source) if self.info.source else None
        h = hashlib.sha256(json.dumps([self.classes, self.info.input_size, self.info.in_channels,
                                       list(self.info.mean), list(self.info.std)]).encode())
        for path, label in self.items:
            rel = path.relative_to(root) if root is not None and path.is_relative_to(root) else path
            h.update(f"{label}\t{rel.as_posix()}\n".encode())
        return h.hexdigest()[:16]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        import numpy as np
        from PIL import Image

        path, label = self.items[i]
        size = self.info.input_size
        check_image(path, size)  # the file may have changed since the scan; its resize is checked here
        try:
            with Image.open(path) as img:
                img = img.convert("L" if self.info.in_channels == 1 else "RGB")
                img = img.resize(_resized(*img.size, size), Image.BILINEAR)
                w, h = img.size
                left, top = (w - size) // 2, (h - size) // 2
                img = img.crop((left, top, left + size, top + size))
                arr = np.asarray(img, dtype=np.float32) / 255.0
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from None
        x = torch.from_numpy(arr.copy())
        x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
        return normalise(x.unsqueeze(0), self.info.mean, self.info.std)[0], label


def _split_classes(base: Path, root: Path) -> list[str] | None:
    """With train/ and test/ (or val/) folders, the classes are train/'s, in both splits: label k is the k-th
    class the network was trained on. A test class that train/ lacks is refused (it has no output to score)."""
    train = find_root(base, "train")
    if train == base:
        return None
    classes = class_names(train)
    extra = sorted(set(class_names(root)) - set(classes))
    if extra:
        raise DatasetError(f"{root} has classes that {train} lacks ({', '.join(extra[:5])}): the network has no "
                           f"output for them")
    return classes


def load(*, split: str, input_size: int | None, data_dir=None, download: bool = False, seed: int = 0,
         in_channels: int | None = None) -> tuple[ImageFolderDataset, DatasetInfo]:
    if data_dir is None:
        raise DatasetError("imagefolder needs --data-dir DIR (one sub-folder of images per class)")
    base = resolve_data_dir(data_dir)
    if not base.is_dir():
        raise DatasetError(f"--data-dir {base} is not a folder")
    root = find_root(base, split)
    size = input_size or DEFAULT_SIZE
    classes, items, unreadable = scan(root, _split_classes(base, root), size)
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
    return ImageFolderDataset(interleaved, classes, info, unreadable), info
