"""``cifar10`` / ``cifar100``: the official "python version" batches (Krizhevsky 2009).

Layout in ``--data-dir``: ``cifar-10-batches-py/{data_batch_1..5, test_batch}`` with keys ``data`` (N x 3072
uint8, channel-major 32x32) and ``labels``; ``cifar-100-python/{train, test}`` with ``data`` and ``fine_labels``.
``--download`` fetches the official tar.gz, checks its MD5, and unpacks it (tar's safe "data" filter) into the
data directory; the URL and checksum can be overridden with ``RESNET_CLI_CIFAR10_URL`` /
``RESNET_CLI_CIFAR10_MD5`` (and ``..._CIFAR100_...``), e.g. for a mirror or a local copy (``file://``).

The batches are pickles. They are read with a restricted unpickler that builds only plain containers and numpy
arrays, so a tampered batch file cannot run code.

Normalisation uses the training set's per-channel mean and std (the usual published values); augmentation is the
ResNet paper's (He et al. 2015 §4.2): 4-pixel padding, random 32x32 crop, random horizontal flip.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..limits import MAX_CIFAR_BATCH_BYTES, MAX_CIFAR_BATCH_IMAGES, check_file_size
from . import DatasetError, DatasetInfo, TensorImageDataset, Uint8ImageDataset, resolve_data_dir


@dataclass(frozen=True)
class CifarSource:
    name: str
    folder: str
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    num_classes: int
    meta_file: str  # the class names, in label order, under ``meta_key``
    meta_key: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def env(self, what: str) -> str:
        return f"RESNET_CLI_{self.name.upper()}_{what}"


CIFAR10 = CifarSource(
    "cifar10", "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
    "labels", 10, "batches.meta", "label_names", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
)
CIFAR100 = CifarSource(
    "cifar100", "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "eb9058c3a382ffc7106e4002c42a8d85", ("train",), ("test",), "fine_labels", 100, "meta", "fine_label_names",
    (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
)


class _SafeUnpickler(pickle.Unpickler):
    """Builds only what CIFAR batches contain: dicts, lists, bytes/str, ints and numpy arrays."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_batch(path: Path) -> dict:
    """One pickled batch as a dict with str keys (a file past ``MAX_CIFAR_BATCH_BYTES`` is not read)."""
    try:
        check_file_size(path, MAX_CIFAR_BATCH_BYTES, "a CIFAR batch", DatasetError)
        with open(path, "rb") as fh:
            data = _SafeUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
    except FileNotFoundError:
        raise DatasetError(f"missing CIFAR batch {path}") from None
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"{path} is not a CIFAR python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path} is not a CIFAR python batch (holds a {type(data).__name__})")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in data.items()}


def read_split(folder: Path, source: CifarSource, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images N x 3 x 32 x 32 and int64 labels."""

    images, labels = [], []
    for name in source.train_files if split == "train" else source.test_files:
        data, y = check_batch(read_batch(folder / name), folder / name, source.label_key)
        images.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))
        labels.append(torch.from_numpy(y))
    y = torch.cat(labels)
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= source.num_classes):
        raise DatasetError(f"{folder}: labels outside 0..{source.num_classes - 1}")
    return torch.cat(images), y


def check_batch(batch: dict, path: Path, label_key: str) -> tuple[Any, Any]:
    """(uint8 N x 3072 pixels, int64 N labels) of a batch, after checking what it holds is what CIFAR batches
    hold: a uint8 array of N x 3072 (not a list of references to one row, not a str, not objects) and a list of N
    whole-number labels. Nothing is converted before the types and sizes are known."""
    import numpy as np

    if "data" not in batch or label_key not in batch:
        raise DatasetError(f"{path} lacks the 'data' or '{label_key}' entry of a CIFAR batch")
    data, labels = batch["data"], batch[label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        what = f"a {data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else \
            f"a {type(data).__name__}"
        raise DatasetError(f"{path}: 'data' must be a uint8 array of N x 3072 pixels, not {what}")
    if data.shape[0] > MAX_CIFAR_BATCH_IMAGES:
        raise DatasetError(f"{path} holds {data.shape[0]:,} images, past the limit of {MAX_CIFAR_BATCH_IMAGES:,} "
                           f"for a CIFAR batch")
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != data.shape[0]:
        count = len(labels) if isinstance(labels, (list, np.ndarray)) else type(labels).__name__
        raise DatasetError(f"{path}: expected {data.shape[0]:,} labels (one per image), got {count}")
    if (isinstance(labels, np.ndarray) and labels.dtype.kind not in "iu") or \
            (isinstance(labels, list) and not all(type(v) is int for v in labels)):
        raise DatasetError(f"{path}: the labels must be whole numbers")
    return data, np.asarray(labels, dtype=np.int64)


def split_files(source: CifarSource, split: str | None) -> tuple[str, ...]:
    """The batch files a split reads; ``None``: every file (what a complete download holds)."""
    if split is None:
        return source.train_files + source.test_files
    return source.train_files if split == "train" else source.test_files


def find_folder(data_dir: Path, source: CifarSource, split: str | None = None) -> Path | None:
    """The folder holding ``split``'s batches (all of them for ``None``). Only the split asked for must be
    there: a user who only evaluates may keep just ``test_batch``, one who only trains just the train batches."""
    for candidate in (data_dir / source.folder, data_dir):
        if all((candidate / f).is_file() for f in split_files(source, split)):
            return candidate
    return None


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_archive(source: CifarSource, data_dir: Path) -> Path:
    """Fetch, check and unpack the archive into ``data_dir``; returns the batch folder."""
    url = os.environ.get(source.env("URL"), source.url)
    md5 = os.environ.get(source.env("MD5"), source.md5).lower()
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".download-") as tmp:
        archive = Path(tmp) / "archive.tar.gz"
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DatasetError(
                f"cannot download {source.name} from {url} ({reason}); are you offline? Fetch the archive "
                f"yourself and unpack it so that {data_dir / source.folder} exists (or set {source.env('URL')})"
            ) from None
        got = md5sum(archive)
        if got != md5:
            raise DatasetError(f"downloaded {source.name} archive from {url} has MD5 {got}, expected {md5}: "
                               f"corrupt or not the official file; nothing was unpacked")
        unpack = Path(tmp) / "unpacked"
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(unpack, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DatasetError(f"cannot unpack the {source.name} archive from {url}: {exc}") from None
        found = find_folder(unpack, source)
        if found is None:
            raise DatasetError(f"the {source.name} archive from {url} does not hold {source.folder}/ with "
                               f"{', '.join(source.train_files + source.test_files)}")
        target = data_dir / source.folder
        if target.exists():
            shutil.rmtree(target)
        os.replace(found, target)  # whole or not at all
    return target


def _load(source: CifarSource, *, split: str, input_size: int | None, data_dir=None, download: bool = False,
          seed: int = 0, in_channels: int | None = None) -> tuple[TensorImageDataset, DatasetInfo]:
    root = resolve_data_dir(data_dir)
    if root.exists() and not root.is_dir():
        raise DatasetError(f"the data folder {root} is a file, not a folder (--data-dir or $RESNET_CLI_DATA)")
    folder = find_folder(root, source, split)
    if folder is None:
        if not download:
            raise DatasetError(f"no {source.name} {split} batches in {root} (expected "
                               f"{', '.join(split_files(source, split))} in {root / source.folder}/); pass "
                               f"--data-dir DIR, or --download to fetch the official archive")
        folder = fetch_archive(source, root)
    raw, labels = read_split(folder, source, split)
    size = input_size or 32
    channels = in_channels or 3
    mean, std = source.mean, source.std
    if channels != 3:
        if channels != 1:
            raise DatasetError(f"{source.name} images have 3 channels; the network takes {channels}")
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    info = DatasetInfo(name=source.name, num_classes=source.num_classes, input_size=size, in_channels=channels,
                       mean=tuple(mean), std=tuple(std), crop_padding=max(1, size // 8), flip=True,
                       source=str(root))
    data = Uint8ImageDataset(raw, labels, info)
    data.classes = class_names(folder, source)
    return data, info


def class_names(folder: Path, source: CifarSource) -> list[str] | None:
    """The class names of the official meta file (CIFAR-10's airplane, automobile, ...), or None where it is
    missing or says something else: names only label the output, they are never required."""
    try:
        names = read_batch(folder / source.meta_file).get(source.meta_key)
    except DatasetError:
        return None
    if not isinstance(names, list) or len(names) != source.num_classes:
        return None
    out = [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]
    return out if all(isinstance(n, str) for n in out) else None


def load_cifar10(**kwargs) -> tuple[TensorImageDataset, DatasetInfo]:
    return _load(CIFAR10, **kwargs)


def load_cifar100(**kwargs) -> tuple[TensorImageDataset, DatasetInfo]:
    return _load(CIFAR100, **kwargs)
