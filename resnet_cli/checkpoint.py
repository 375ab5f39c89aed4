"""Checkpoints: one file with everything needed to rebuild, evaluate and continue training a network.

A checkpoint is a ``torch.save``d dict of plain containers and tensors only:

- ``format`` ("resnet-cli-checkpoint") and ``version``;
- ``arch`` (the name) and ``spec`` (``ArchSpec.to_dict()``: the full architecture, so no registry is needed);
- ``state_dict`` (torchvision's key names);
- ``dataset`` (``DatasetInfo.to_dict()``: name, classes, input size, normalisation) or None;
- ``record`` (per-epoch train/test loss and error, learning rate, wall time);
- ``extra`` (what resuming needs: optimizer, scheduler and scaler state, RNG state, epoch and step).

It is always read with ``torch.load(..., weights_only=True)``: a checkpoint never runs code. A file that is not
one (a pickled module, a truncated or corrupt file, some other object) raises ``CheckpointError`` with one line.
A bare state dict loads too, in stages that stay separate: read the file (``_read``) -> find the weights in
their container (``key_layouts.unwrap``: ``{'state_dict': ...}`` and the like) -> map foreign key names to
torchvision's (``key_layouts.map_keys``: ``module.`` prefixes, akamaster's ``linear.`` head, ...) -> the arch,
given (``arch=``) or inferred from the keys and shapes when exactly one registered architecture fits
(``infer_arch``) -> validate by a strict ``load_state_dict`` (``Checkpoint.build_model``). What was mapped is
kept in ``Checkpoint.key_mappings``; commands print it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ResnetCliError
from .spec import ArchSpec

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from .data import DatasetInfo
    from .data.normalization import Normalization
    from .key_layouts import KeyMapping

FORMAT = "resnet-cli-checkpoint"
VERSION = 1


class CheckpointError(ResnetCliError):
    """A file that cannot be loaded as a checkpoint or state dict."""


@dataclass
class Checkpoint:
    """A loaded checkpoint (or a bare state dict with its spec found)."""

    spec: ArchSpec
    state_dict: dict[str, Any]
    dataset: DatasetInfo | None = None
    record: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    version: int = VERSION
    #: None for a resnet-cli checkpoint; for a bare state dict, how its arch was found: "given" or a sentence
    #: naming the inferred architecture.
    inferred_arch: str | None = None
    #: What the loader had to change to read a foreign file (container, prefixes, key names); [] for ours.
    key_mappings: list[KeyMapping] = field(default_factory=list)
    #: The normalisation the last ``load_data`` chose (None before it is called).
    normalization: Normalization | None = None

    @property
    def is_bare(self) -> bool:
        """A bare state dict (not written by resnet-cli): no dataset, no normalisation of its own."""
        return self.inferred_arch is not None

    def loading_report(self) -> dict[str, Any]:
        """What every command that reads a checkpoint reports besides its results: how the arch was found, the
        key mappings and the normalisation, as data (JSON) and for ``render.loading_lines`` (tables)."""
        return {"arch": self.spec.name, "inferred_arch": self.inferred_arch,
                "key_mappings": [m.to_dict() for m in self.key_mappings],
                "normalization": self.normalization.to_dict() if self.normalization is not None else None}

    @property
    def arch(self) -> str:
        return self.spec.name

    @property
    def epochs_done(self) -> int:
        return len(self.record)

    def build_model(self, device: Any = None) -> nn.Module:
        """The network with these weights (loaded strictly), in eval mode, on ``device`` (default CPU)."""
        from .models import build_model

        model = build_model(self.spec)
        misfit = _misfit(model.state_dict(), self.state_dict, self.spec.name)
        if misfit:
            raise CheckpointError(f"{self.path or 'checkpoint'}: weights do not fit {self.spec.name}: {misfit}")
        try:
            model.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            detail = " ".join(line.strip() for line in first[:3])
            raise CheckpointError(f"{self.path or 'checkpoint'}: weights do not fit {self.spec.name}: "
                                  f"{detail[:400]}") from None
        model.eval()
        if device is not None:
            model.to(device)
        return model

    def load_data(self, split: str = "test", *, dataset: str | None = None,
                  data_dir: str | os.PathLike[str] | None = None, input_size: int | None = None,
                  limit: int | None = None, download: bool = False,
                  normalize: str | None = None) -> tuple[Any, DatasetInfo]:
        """The data this network is measured on: its own dataset as trained (input size, channels, folder), or
        ``dataset`` by name at the network's input size. What ``eval``, ``lesion`` and ``gradients`` read.

        Normalised by ``normalize`` (a name or ``MEAN,..:STD,..``), else as ``data.normalization`` says (the
        checkpoint's own; ImageNet's for a bare state dict on photographs); the choice is kept in
        ``self.normalization``. Refuses data with another number of classes than the network has outputs:
        label k must mean output k.
        """
        from .data import load_dataset
        from .data.normalization import choose, renormalised

        info = self.dataset
        if dataset is None and info is None:
            raise CheckpointError(f"{self.path or 'the checkpoint'} does not say what data it was trained on; "
                                  f"pass --dataset")
        name = dataset or info.name
        same = info is not None and name == info.name
        size = input_size if input_size is not None else (info.input_size if same else self.spec.input_size)
        data, data_info = load_dataset(name, split, input_size=size,
                                       data_dir=data_dir or (info.source if same and info.source else None),
                                       download=download, limit=limit, in_channels=self.spec.in_channels)
        if data_info.num_classes != self.spec.num_classes:
            raise CheckpointError(f"{name} has {data_info.num_classes} classes; {self.spec.name} in "
                                  f"{self.path or 'the checkpoint'} has {self.spec.num_classes} outputs")
        self.normalization = choose(given=normalize, dataset=data_info.name, info=data_info, stored=info,
                                    bare=self.is_bare)
        return renormalised(data, data_info, self.normalization)


def _misfit(wanted: dict[str, Any], given: dict[str, Any], name: str) -> str:
    """What keeps ``given`` weights from loading into ``name``'s module, whose state dict is ``wanted``, in a few
    words ("60 of its tensors missing (layer1.3.conv1.weight, ...)"), or "" when they fit."""
    def some(names: list[str]) -> str:
        return ", ".join(names[:2]) + (", ..." if len(names) > 2 else "")

    # batch norm fills in a missing step counter itself (checkpoints from before torch 0.4.1 have none)
    missing = [k for k in wanted if k not in given and not k.endswith("num_batches_tracked")]
    extra = [k for k in given if k not in wanted]
    shapes = [f"{k} {tuple(given[k].shape)} for {tuple(wanted[k].shape)}" for k in wanted
              if k in given and hasattr(given[k], "shape") and tuple(given[k].shape) != tuple(wanted[k].shape)]
    parts = [f"{len(missing):,} of its tensors missing ({some(missing)})" if missing else "",
             f"{len(extra):,} tensors {name} does not have ({some(extra)})" if extra else "",
             f"{len(shapes):,} of other shapes ({some(shapes)})" if shapes else ""]
    found = "; ".join(p for p in parts if p)
    if not found:
        return ""
    try:
        fits, _ = infer_arch(given)
        found += f"; they fit {fits.name} (leave --arch out to use it)"
    except ResnetCliError:
        pass
    return found


def _plain(obj: Any) -> Any:
    """Tuples -> lists, dataclasses with to_dict -> dicts: what weights_only loading accepts and JSON shows."""
    if hasattr(obj, "to_dict") and not isinstance(obj, dict):
        return _plain(obj.to_dict())
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def save_checkpoint(path: str | os.PathLike[str], *, spec: ArchSpec, state_dict: dict[str, Any],
                    dataset: DatasetInfo | None, record: list[dict] | dict,
                    extra: dict | None = None) -> Path:
    """Write a checkpoint atomically (whole or not at all). Tensors are moved to the CPU."""
    import torch

    from .fileio import atomic_open

    if isinstance(record, dict):
        record = record.get("epochs", [record])
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": spec.name,
        "spec": spec.to_dict(),
        "state_dict": _to_cpu(dict(state_dict)),
        "dataset": dataset.to_dict() if dataset is not None else None,
        "record": _plain(list(record)),
        "extra": _to_cpu(extra or {}),
    }
    path = Path(path)
    existed = path.exists()
    try:
        with atomic_open(path, "wb") as fh:
            torch.save(payload, fh)
    except (OSError, RuntimeError) as exc:  # a full disk, a folder in the way: the user's to fix, not a traceback
        # torch's zip writer reports a failed write as RuntimeError("... file write failed" or "unexpected pos")
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
            f"torch's writer failed: {_first_line(exc)}; is the disk full?"
        kept = f"; {path.name} keeps what it held before" if existed else ""  # atomic_open: whole or not at all
        raise ResnetCliError(f"cannot write the checkpoint {path}: {why}{kept}") from None
    return path


def _to_cpu(obj: Any) -> Any:
    """Tensors on the CPU and contiguous (NCHW), in nested dicts and lists: a network trained channels_last on a
    GPU saves the layout one trained on the CPU does, its weights and its optimizer's momentum alike."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().contiguous()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def check_checkpoint_path(path: Path) -> Path:
    """Refuse a path that holds no checkpoint file, at once: before torch is imported (seconds) or any data is
    loaded. Also a name too long, a FIFO or device (/dev/zero would be read forever) and a file past the limit."""
    from .limits import MAX_CHECKPOINT_BYTES, check_file_size, check_path_length

    path = Path(path)
    check_path_length(path, "a checkpoint", CheckpointError)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    try:
        check_file_size(path, MAX_CHECKPOINT_BYTES, "a checkpoint", CheckpointError)
    except FileNotFoundError:
        raise CheckpointError(f"no such checkpoint: {path}") from None
    except OSError as exc:  # a symlink loop, a folder without read permission
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    return path


def _read(path: Path) -> Any:
    """The object in a checkpoint file, read with torch's weights-only unpickler after the file's size and zip
    records were checked against the limits (a small file must not inflate to gigabytes)."""
    import pickle
    import warnings
    import zipfile

    import torch

    data = _read_bytes(path)
    _check_zip_records(data, path)
    _check_legacy_pickles(data, path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before it fails: one line, not three
            warnings.simplefilter("ignore")
            return _check_items(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True), path)
    except pickle.UnpicklingError as exc:
        code = _foreign_globals(data)
        if code:
            raise CheckpointError(
                f"{path} holds pickled Python objects ({', '.join(code[:3])}), not only tensors and plain data; it "
                f"is refused because loading it could run code (save model.state_dict() instead)") from None
        why = "truncated or corrupt" if data[:2] == b"PK" else "corrupt or not a torch file"
        raise CheckpointError(f"{path} is {why} ({_torch_reason(exc)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError,
            AttributeError, TypeError, UnicodeDecodeError) as exc:
        text = str(exc).lower()
        zip_incomplete = data[:2] == b"PK" and not zipfile.is_zipfile(io.BytesIO(data))
        if zip_incomplete or isinstance(exc, EOFError) or "truncat" in text or "end of file" in text or \
                "central directory" in text:
            why = "truncated or corrupt"
        else:
            why = "corrupt or not a torch file"
        raise CheckpointError(f"{path} is {why} ({type(exc).__name__}: {_first_line(exc)})") from None


def _check_items(obj: Any, path: Path) -> Any:
    """``obj``, refused when its containers hold more than MAX_CHECKPOINT_ITEMS values counted as a tree.

    A pickle may name one object many times: 30 levels of ``[x, x]`` are 2**30 values to whatever walks them (the
    record's check, --resume's save, a spec's fields) from a 200 kB file. Counted without recursion, and without
    listing a container that would pass the limit."""
    from .limits import MAX_CHECKPOINT_ITEMS

    pending, counted = [obj], 0
    while pending:
        item = pending.pop()
        if not isinstance(item, (dict, list, tuple, set, frozenset)):
            continue  # a tensor, a number, a string: one value, counted by its container
        counted += 2 * len(item) if isinstance(item, dict) else len(item)  # a dict's keys and values
        if counted > MAX_CHECKPOINT_ITEMS:
            raise CheckpointError(f"{path} is refused: its lists and dicts hold more than {MAX_CHECKPOINT_ITEMS:,} "
                                  f"values (counting each reference to a shared one), past the limit for a checkpoint")
        pending.extend([*item.keys(), *item.values()] if isinstance(item, dict) else item)
    return obj


def _read_bytes(path: Path) -> bytes:
    check_checkpoint_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise CheckpointError(f"{path} is empty, not a checkpoint")
    return data


def _check_zip_records(data: bytes, path: Path) -> None:
    """Refuse a zip checkpoint whose records would inflate past the limits, before torch inflates them."""
    import zipfile

    from .limits import (
        MAX_CHECKPOINT_BYTES,
        MAX_CHECKPOINT_INFLATION,
        MAX_CHECKPOINT_PICKLE_BYTES,
        MAX_CHECKPOINT_RECORDS,
    )

    if data[:2] != b"PK":
        return
    entries = _zip_directory_entries(data)
    if entries > MAX_CHECKPOINT_RECORDS:
        raise CheckpointError(f"{path} is refused: its zip directory lists {entries:,} records, past the limit of "
                              f"{MAX_CHECKPOINT_RECORDS:,} for a checkpoint")
    try:
        records = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return  # torch's reader says what is wrong with it
    total = sum(r.file_size for r in records)
    pickled = max((r.file_size for r in records if r.filename.endswith(".pkl")), default=0)
    limit = min(MAX_CHECKPOINT_BYTES, MAX_CHECKPOINT_INFLATION * len(data))
    if total > limit or pickled > MAX_CHECKPOINT_PICKLE_BYTES:
        big = max(records, key=lambda r: r.file_size)
        raise CheckpointError(f"{path} is refused: its zip records inflate to {total:,} bytes from a "
                              f"{len(data):,}-byte file ({big.filename!r}: {big.file_size:,}); the limits are "
                              f"{MAX_CHECKPOINT_INFLATION}x the file, {MAX_CHECKPOINT_BYTES:,} bytes in all and "
                              f"{MAX_CHECKPOINT_PICKLE_BYTES:,} for the pickle")


def _check_legacy_pickles(data: bytes, path: Path) -> None:
    """Refuse a checkpoint in torch's format before zip (akamaster's files are in it) whose pickles pass the
    limit a zip checkpoint's pickle has, before torch builds what they name (9 MiB of them: 4 s and 300 MB)."""
    from .limits import MAX_CHECKPOINT_PICKLE_BYTES

    if data[:2] == b"PK":
        return
    stream = io.BytesIO(data)
    try:
        for _op in _legacy_pickle_ops(stream):
            if stream.tell() > MAX_CHECKPOINT_PICKLE_BYTES:
                raise CheckpointError(
                    f"{path} is refused: its pickled part passes {MAX_CHECKPOINT_PICKLE_BYTES:,} bytes, the limit "
                    f"for a checkpoint's pickle (torch builds every tensor and value it names)")
    except (ValueError, EOFError, UnicodeDecodeError):
        return  # not pickles as torch writes them: torch's reader says what is wrong with the file


def _legacy_pickle_ops(stream: io.BytesIO) -> Iterator[tuple[Any, Any, Any]]:
    """The opcodes (read, never run) of a file in torch's format before zip: five pickles (magic number,
    protocol, system information, the object, its storage keys), then the raw tensor data; a bare pickle is the
    first of them only."""
    import pickletools

    end = len(stream.getbuffer())
    for _ in range(5):
        yield from pickletools.genops(stream)
        if stream.tell() >= end:
            return


def _zip_directory_entries(data: bytes) -> int:
    """How many records the zip's central directory lists, counted before ``zipfile`` parses it (one ZipInfo per
    record: 300,000 empty records took 425 MB), in the bytes ``zipfile`` would read: the directory ends where the
    end-of-directory record (or its zip64 form) starts. Every entry starts with PK\\1\\2, so counting those bytes
    counts at least every entry. 0 when there is no end record (``zipfile`` refuses that file itself)."""
    import struct

    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if end < 0 or end + 22 > len(data):
        return 0
    (size,) = struct.unpack_from("<I", data, end + 12)
    start = end
    locator = end - 20
    if locator >= 0 and data[locator:locator + 4] == b"PK\x06\x07":  # zip64: the directory ends at its record
        (record,) = struct.unpack_from("<Q", data, locator + 8)
        if data[record:record + 4] == b"PK\x06\x06":
            (size,) = struct.unpack_from("<Q", data, record + 40)
            start = record
    return data[max(0, start - size):start].count(b"PK\x01\x02")


#: Globals a torch checkpoint of tensors and plain containers names (what weights-only loading builds).
_TENSOR_GLOBALS = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set", "builtins.frozenset",
                   "__builtin__.set", "__builtin__.frozenset")


def _foreign_globals(data: bytes) -> list[str]:
    """The Python objects (module.name) the checkpoint's pickle would build that are not tensors or plain data:
    read from the pickle's opcodes (never run), so the verdict does not hang on one torch version's wording."""
    import pickletools
    import zipfile

    pickled = data
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                pickled = z.read(name) if name else b""
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError):
            return []
    found: list[str] = []
    strings: list[str] = []
    # a zip's data.pkl is one pickle; the older format's object is its fourth
    ops = pickletools.genops(io.BytesIO(pickled)) if data[:2] == b"PK" else _legacy_pickle_ops(io.BytesIO(data))
    try:
        for op, arg, _pos in ops:
            if isinstance(arg, str):
                strings.append(arg)
            if op.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:
        pass
    return sorted({g for g in found if not g.startswith(_TENSOR_GLOBALS)})


def _torch_reason(exc: BaseException) -> str:
    import re

    detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
    return detail.group(1).strip()[:200] if detail else "unpickling failed"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]


def load_checkpoint(path: str | os.PathLike[str], arch: str | None = None) -> Checkpoint:
    """Load a resnet-cli checkpoint, or a bare state dict (torchvision's layout, or a foreign one that
    ``key_layouts`` maps) with ``arch`` or an inferred arch."""
    path = check_checkpoint_path(Path(path))

    import torch

    from .key_layouts import map_keys, unwrap

    obj = _read(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return _from_payload(obj, path, arch)
    state, mappings = unwrap(obj, _is_state_dict)
    if state is None:
        kind = type(obj).__name__
        if isinstance(obj, torch.Tensor):
            kind = f"a single tensor of shape {list(obj.shape)}"
        elif isinstance(obj, dict):
            kind = "a dict that is neither a resnet-cli checkpoint nor a state dict"
        raise CheckpointError(f"{path} is not a checkpoint or state dict (it holds {kind})")
    state, renames, layouts = map_keys(state)
    mappings += renames
    if arch is not None:
        from .registry import get_spec

        spec, note = get_spec(arch, **_head_overrides(state)), "given"
    else:
        residual_only = next((layout.name for layout in layouts if layout.residual_only), None)
        spec, note = infer_arch(state, residual_only=residual_only)
    return Checkpoint(spec=spec, state_dict=state, path=str(path), inferred_arch=note, key_mappings=mappings)


def _is_state_dict(obj: Any) -> bool:
    import torch

    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj) and \
        all(isinstance(v, torch.Tensor) for v in obj.values())


#: Fields of one epoch of a training record: these three in every epoch (what plot-record draws); the others, where
#: present, numbers too (``train`` writes all of them; ``images_per_s`` may be None).
RECORD_REQUIRED = ("epoch", "train_error", "test_error")
RECORD_NUMBERS = ("lr", "train_loss", "test_loss", "train_images", "test_images", "train_time_s", "images_per_s",
                  "epoch_time_s", "wall_time_s")


def check_record(record: Any, path: Any, required: tuple[str, ...] = RECORD_REQUIRED) -> None:
    """Refuse a training record that is not a list of epochs with numbers in ``required`` (and numbers or None
    in the other known fields): read back from a file, it is checked before anything draws or extends it."""
    if not isinstance(record, list) or not all(isinstance(r, dict) for r in record):
        raise CheckpointError(f"{path}: the training record is not a list of epochs")
    for i, row in enumerate(record, start=1):
        missing = [k for k in required if k not in row]
        if missing:
            raise CheckpointError(f"{path}: epoch {i} of the training record lacks {', '.join(missing)}")
        wrong = [k for k in (*required, *RECORD_NUMBERS) if k in row and not _is_number(row[k], k in required)]
        if wrong:
            raise CheckpointError(f"{path}: epoch {i} of the training record has {wrong[0]} = "
                                  f"{str(row[wrong[0]])[:40]!r}, not a number")


def _is_number(value: Any, required: bool) -> bool:
    if value is None:
        return not required
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _from_payload(obj: dict, path: Path, arch: str | None) -> Checkpoint:
    version = obj.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {version!r}; this resnet-cli reads up to "
                              f"{VERSION} (upgrade resnet-cli)")
    try:
        spec = ArchSpec.from_dict(obj["spec"]).validate()
        state = obj["state_dict"]
        if not isinstance(state, dict) or not _is_state_dict(state):
            raise CheckpointError(f"{path}: the state dict is missing or not tensors")
        dataset = None
        if obj.get("dataset") is not None:
            from .data import DatasetInfo

            dataset = DatasetInfo.from_dict(obj["dataset"])
        record = obj.get("record") or []
        check_record(record, path)
        extra = obj.get("extra") or {}
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is a damaged resnet-cli checkpoint (missing {exc})") from None
    except ResnetCliError as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path} is a damaged resnet-cli checkpoint ({exc})") from None
    if arch is not None and arch.lower() != spec.name.lower():
        raise CheckpointError(f"{path} holds {spec.name}, not {arch} (drop --arch: a checkpoint names its own)")
    return Checkpoint(spec=spec, state_dict=state, dataset=dataset, record=record, extra=extra, path=str(path),
                      version=version)


# --------------------------------------------------------------------------- arch inference
def _head_overrides(state: dict[str, Any]) -> dict[str, Any]:
    """Fields a bare state dict says outright: classes (fc rows) and input channels (first conv)."""
    out: dict[str, Any] = {}
    for key in ("fc.weight", "classifier.weight", "classifier.6.weight"):
        if key in state and state[key].dim() == 2:
            out["num_classes"] = int(state[key].shape[0])
            break
    for key in ("conv1.weight", "features.conv0.weight", "features.0.weight"):
        if key in state and state[key].dim() == 4:
            out["in_channels"] = int(state[key].shape[1])
            break
    return out


def _candidate_names(state: dict[str, Any]) -> list[str]:
    from .registry import list_archs

    names = list(list_archs())
    # Parametric CIFAR nets: the depth follows from the blocks in the first stage (6n+2 layers).
    blocks = {k.split(".")[1] for k in state if k.startswith("layer1.") and k.split(".")[1].isdigit()}
    stages = {k.split(".")[0] for k in state if k.startswith("layer")}
    if blocks and len(stages) == 3:
        depth = 6 * len(blocks) + 2
        names += [f"cifar_resnet{depth}", f"cifar_plain{depth}"]
    return names


def _stage_blocks(shapes: dict[str, Any]) -> tuple[int, ...]:
    """Blocks per stage in a torchvision-layout ResNet state dict: layer1.0, layer1.1, ... -> (2, ...)."""
    import re

    counts: dict[int, set[int]] = {}
    for key in shapes:
        m = re.match(r"layer(\d+)\.(\d+)\.", key)
        if m:
            counts.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    return tuple(len(counts[s]) for s in sorted(counts))


def _shapes_of(spec: ArchSpec) -> dict[str, tuple[int, ...]] | None:
    import torch

    from .models import build_model

    try:
        with torch.device("meta"):
            model = build_model(spec)
    except Exception:
        return None
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _could_fit(spec: ArchSpec, want: dict[str, tuple[int, ...]]) -> bool:
    """Cheap tests before building on the meta device: the stem's kernel, the first key of torchvision's
    ``features`` (``features.conv0`` of a DenseNet, ``features.0`` of a VGG), the others' blocks per stage
    (``layerN.M`` keys)."""
    kernel = {"imagenet": 7, "cifar": 3}.get(spec.stem)
    if kernel and "conv1.weight" in want and want["conv1.weight"][-1] != kernel:
        return False
    first = {"densenet": "features.conv0.weight", "vgg": "features.0.weight"}.get(spec.family)
    if first is not None:
        return first in want
    return not any(k.startswith("features.") for k in want) and _stage_blocks(want) == tuple(spec.layers)


def _fits(spec: ArchSpec, want: dict[str, tuple[int, ...]]) -> bool:
    """Keys and shapes equal; without ``num_batches_tracked`` buffers (older PyTorch, some exporters) when the
    state dict has none (batch norm fills them in on a strict load)."""
    shapes = _shapes_of(spec)
    if shapes is not None and not any(k.endswith(".num_batches_tracked") for k in want):
        shapes = {k: v for k, v in shapes.items() if not k.endswith(".num_batches_tracked")}
    return shapes == want


def _break_ties(fits: list[ArchSpec], residual_only: str | None) -> tuple[list[ArchSpec], str]:
    """The candidates left when the key layout or the convention decides, and a note saying what was set aside."""
    dropped = ""
    plain = [s.name for s in fits if not s.residual]
    if residual_only and plain and len(plain) < len(fits):
        fits = [s for s in fits if s.residual]
        dropped = f" ({', '.join(plain)} fits too, but {residual_only} builds only residual nets)"
    # Where a bottleneck strides leaves no trace in the weights: resnet50 and resnet50_v1 have equal state dicts.
    # A bare state dict is read in torchvision's (and timm's) layout, the stride in the 3x3, unless --arch says.
    v15 = [s for s in fits if not s.stride_in_1x1]
    if len(fits) > 1 and len(v15) == 1:
        others = ", ".join(s.name for s in fits if s.stride_in_1x1)
        fits, dropped = v15, f"{dropped} ({others} has the same weights, strided in the first 1x1: pass --arch for it)"
    return fits, dropped


def infer_arch(state: dict[str, Any], *, residual_only: str | None = None) -> tuple[ArchSpec, str]:
    """The one registered (or CIFAR-parametric) architecture whose keys and shapes equal the state dict's.

    Candidates take the state dict's class count and input channels. Names with the same spec (``resnet20`` and
    ``cifar_resnet20``) count once. Raises ``CheckpointError`` when none fits or several different ones do
    (e.g. a CIFAR ResNet and its plain twin: option A shortcuts have no weights, so their state dicts are
    equal) — unless ``residual_only`` (the name of a key layout whose code builds only residual nets) leaves one.
    """
    import dataclasses

    from .registry import get_spec

    want = {k: tuple(v.shape) for k, v in state.items()}
    overrides = _head_overrides(state)
    matches: dict[tuple, ArchSpec] = {}
    for name in _candidate_names(state):
        try:
            spec = get_spec(name, **overrides)
        except ResnetCliError:
            continue
        if _could_fit(spec, want) and _fits(spec, want):
            key = tuple(sorted((k, str(v)) for k, v in dataclasses.asdict(spec).items()
                               if k not in ("name", "description")))
            matches.setdefault(key, spec)
    if not matches:
        raise CheckpointError("the state dict matches no registered architecture (keys or shapes differ); "
                              "pass --arch NAME")
    fits, dropped = _break_ties(list(matches.values()), residual_only)
    if len(fits) > 1:
        raise CheckpointError(f"the state dict fits several architectures ({', '.join(s.name for s in fits)}); "
                              f"pass --arch to choose")
    return fits[0], f"inferred {fits[0].name} from the state dict's keys and shapes{dropped}"
