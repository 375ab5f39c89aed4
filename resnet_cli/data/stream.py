"""The one data path of ``eval``, ``lesion`` and ``gradients``: a dataset read batch by batch, never whole.

``ImageStream(dataset, workers=..., pin_memory=...)`` yields the batches of a run of image indices, in order:

- **In memory** (CIFAR's batches as uint8, digits, synthetic data: datasets with ``get_batch``): each batch is
  sliced and, for uint8 images, scaled and normalised as it is taken. Nothing else is copied: the data set is
  held once, in the form it was read in.
- **From files** (an image folder): a ``torch.utils.data.DataLoader`` over exactly these batches, ``--workers``
  processes decoding in parallel (each one thread: the decode is Pillow's, one image at a time), ``prefetch`` batches
  ahead per worker, page-locked batches on CUDA. Memory is that of the batches in flight, whatever the number
  of images.

Either way the batches are the same ones in the same order, so the counts of a study are the same streamed or
held in memory, with any number of workers.

An image that cannot be read stops the run with one line naming the file and what is wrong (what was measured
before it is kept by the study), unless ``skip_bad`` is set: then it is left out, listed in ``skipped`` and the
batch goes on without it. A worker that dies (killed, out of memory) is one line too, not a hung run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import torch

from ..limits import check_workers
from . import DatasetError

#: What to do about an image that cannot be read.
ADVICE = ("replace it with a readable file (a lesion study then continues with --resume), or pass --skip-bad-images "
          "to leave out the images that cannot be read")
#: Batches each worker decodes ahead of the one being measured (the DataLoader's default).
PREFETCH = 2


class ImageStream:
    """The batches of ``dataset`` (``(image, label)`` items, or a ``get_batch`` in-memory set), streamed."""

    def __init__(self, dataset: Any, *, workers: int = 0, pin_memory: bool = False, skip_bad: bool = False) -> None:
        self.dataset = dataset
        self.workers = check_workers(workers)
        self.pin_memory = pin_memory
        self.skip_bad = skip_bad
        self.skipped: dict[str, str] = {}  # image -> why it could not be read (with skip_bad)
        known = getattr(dataset, "unreadable", None)  # found before any work (an image folder's header scan)
        if known and not skip_bad:
            first = next(iter(known.values()))
            more = f" (and {len(known) - 1:,} more images)" if len(known) > 1 else ""
            raise DatasetError(f"{first}{more}: {ADVICE}")

    @classmethod
    def of_tensors(cls, images: torch.Tensor, labels: torch.Tensor) -> ImageStream:
        """Images already in memory (N x C x H x W, normalised) and their labels: the Python API's study input."""
        if len(images) != len(labels):
            raise DatasetError(f"{len(images)} images but {len(labels)} labels")
        return cls(TensorPairs(images, labels))

    def __len__(self) -> int:
        return len(self.dataset)

    def held_on(self, device: Any) -> ImageStream:
        """This stream with in-memory data moved whole to a GPU where it fits (``keeps_on_device``): its batches
        are then sliced (and for uint8 images normalised) there, with no copy from the host per batch."""
        from ..devices import keeps_on_device

        ds = self.dataset
        if torch.device(device).type == "cpu" or not (self.in_memory and hasattr(ds, "to")):
            return self
        if not keeps_on_device(torch.device(device), ds.images, ds.labels):
            return self
        return ImageStream(ds.to(device), workers=self.workers, pin_memory=False, skip_bad=self.skip_bad)

    @property
    def in_memory(self) -> bool:
        return hasattr(self.dataset, "get_batch")

    def first_image(self) -> torch.Tensor:
        """The first image as a batch of one (1 x C x H x W): what a study probes the network's shapes with."""
        x, _ = next(self.batches(0, 1, 1, workers=0))
        return x

    def batches(self, start: int, stop: int, batch_size: int, *, workers: int | None = None,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Images ``start..stop`` in batches of ``batch_size`` (the last one shorter) counted from ``start``."""
        stop = min(stop, len(self))
        chunks = [torch.arange(i, min(i + batch_size, stop)) for i in range(start, stop, batch_size)]
        yield from self.chunks(chunks, workers=workers)

    def chunks(self, chunks: list[torch.Tensor], *, workers: int | None = None,
               ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One batch per tensor of indices in ``chunks``, in order (empty ones left out)."""
        chunks = [c for c in chunks if len(c)]
        if self.in_memory:
            for chunk in chunks:
                yield self.dataset.get_batch(chunk)
            return
        workers = self.workers if workers is None else workers
        loader = torch.utils.data.DataLoader(
            _Guarded(self.dataset), batch_sampler=[c.tolist() for c in chunks], num_workers=workers,
            pin_memory=self.pin_memory, collate_fn=_collate, worker_init_fn=_one_thread if workers else None,
            prefetch_factor=PREFETCH if workers else None)
        try:
            for x, y, failed in _worker_failures_as_errors(loader):
                for path, why in failed:
                    if not self.skip_bad:
                        raise DatasetError(f"{why}: {ADVICE}")
                    self.skipped[path] = why
                if len(y):
                    yield x, y
        finally:
            del loader  # its workers end with it, also when the caller stops early

    def fingerprint(self) -> str:
        """What a resumed study must find again: the data's own fingerprint (``fingerprint()`` of the dataset:
        for an image folder its files' names and classes and the preprocessing), else its images' and labels'
        bytes, read batch by batch."""
        own = getattr(self.dataset, "fingerprint", None)
        if own is not None:
            return own()
        h = hashlib.sha256()  # a dataset of another kind: its images read once, a batch at a time
        for x, y in self.batches(0, len(self), 256):
            h.update(tensor_fingerprint(x, y).encode())
        return h.hexdigest()[:16]


def as_stream(data: Any, labels: Any = None) -> ImageStream:
    """``data`` as a stream: a stream already, tensors of images with ``labels``, or a dataset."""
    if isinstance(data, ImageStream):
        return data
    if labels is not None:
        return ImageStream.of_tensors(data, labels)
    return ImageStream(data)


def tensor_fingerprint(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class TensorPairs:
    """Normalised images and labels given as tensors (the Python API): batches are slices of them."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels.to(torch.int64)

    def __len__(self) -> int:
        return len(self.images)

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = int(indices[0]), int(indices[-1]) + 1
        if hi - lo == len(indices):  # a run of indices: a view, no copy
            return self.images[lo:hi], self.labels[lo:hi]
        return self.images[indices], self.labels[indices]

    def fingerprint(self) -> str:
        return tensor_fingerprint(self.images, self.labels)

    def to(self, device: Any) -> TensorPairs:
        return TensorPairs(self.images.to(device), self.labels.to(device))


class _Guarded(torch.utils.data.Dataset):
    """Items as ``(image, label, None)``, or ``(None, label, (path, why))`` for one that cannot be read: the
    failure travels back from a worker as data, to be said in one line (a DataLoader would re-raise it with the
    worker's whole traceback in its message)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, int, Any]:
        try:
            x, y = self.dataset[i]
        except DatasetError as exc:
            where = getattr(self.dataset, "describe_item", lambda i: f"image {i}")(i)
            return None, -1, (where, str(exc))
        return x, int(y), None


def _collate(items: list[tuple[Any, int, Any]]) -> tuple[torch.Tensor, torch.Tensor, list[tuple[str, str]]]:
    good = [(x, y) for x, y, failed in items if failed is None]
    failed = [f for _, _, f in items if f is not None]
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.int64), failed
    return torch.stack([x for x, _ in good]), torch.tensor([y for _, y in good], dtype=torch.int64), failed


def _one_thread(worker_id: int) -> None:
    # decoding is one image at a time; torch's own threads in every worker would only fight over the cores
    torch.set_num_threads(1)


def _worker_failures_as_errors(loader: Any) -> Iterator[Any]:
    """The loader's batches; a worker that died (a signal, the OOM killer) or a loader that cannot start its
    workers becomes one line."""
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except RuntimeError as exc:
            if not is_worker_failure(exc):
                raise
            raise DatasetError(worker_failure_message(exc)) from None
        yield batch


def is_worker_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a DataLoader's word that one of its workers died. torch raises it from the loader, or
    from its SIGCHLD handler at whatever line the main process is running (cli/failures.py catches that one)."""
    return isinstance(exc, RuntimeError) and str(exc).lstrip().startswith("DataLoader worker")


def worker_failure_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:200]
    return (f"a data-loading worker stopped ({text}); run again with fewer --workers, or --workers 0 to decode in "
            f"this process")
