"""The checkpoint file format and the training record's schema.

A checkpoint is a ``torch.save``d dict of plain containers and tensors only:

- ``format`` ("resnet-cli-checkpoint") and ``version``;
- ``arch`` (the name) and ``spec`` (``ArchSpec.to_dict()``: the full architecture, so no registry is needed);
- ``state_dict`` (torchvision's key names);
- ``dataset`` (``DatasetInfo.to_dict()``: name, classes, input size, normalisation) or None;
- ``record`` (per epoch: train/test loss, error and counts, learning rate, times: ``EpochRecord``, whose fields
  ``check_record`` holds a record read back to);
- ``extra`` (what resuming needs: optimizer, scheduler and scaler state, RNG state, epoch and step).

A bare state dict loads too, in stages that stay separate: read the file (``safety.read_checkpoint_file``) ->
find the weights in their container (``key_layouts.unwrap``: ``{'state_dict': ...}`` and the like) -> map
foreign key names to torchvision's (``key_layouts.map_keys``: ``module.`` prefixes, akamaster's ``linear.``
head, ...) -> the arch, given (``arch=``) or inferred from the keys and shapes when exactly one registered
architecture fits (``inference.infer_arch``) -> validate by a strict ``load_state_dict``
(``Checkpoint.build_model``). What was mapped is kept in ``Checkpoint.key_mappings``; commands print it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError, ResnetCliError
from ..spec import ArchSpec
from .inference import GIVEN, ArchChoice, infer_arch, state_dict_overrides
from .safety import check_checkpoint_path, first_line, read_checkpoint_file

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..data import DatasetInfo
    from ..data.normalization import Normalization
    from ..key_layouts import KeyMapping

FORMAT = "resnet-cli-checkpoint"
VERSION = 1


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
    #: None for a resnet-cli checkpoint (it names its own arch); for a bare state dict, how its arch was found.
    inferred_arch: ArchChoice | None = None
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
        return {"arch": self.spec.name,
                "inferred_arch": self.inferred_arch.to_dict() if self.inferred_arch is not None else None,
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
        from ..models import build_model

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
        from ..data import load_dataset
        from ..data.normalization import choose, renormalised

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

    from ..fileio import atomic_open

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
            f"torch's writer failed: {first_line(exc)}; is the disk full?"
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


def load_checkpoint(path: str | os.PathLike[str], arch: str | None = None) -> Checkpoint:
    """Load a resnet-cli checkpoint, or a bare state dict (torchvision's layout, or a foreign one that
    ``key_layouts`` maps) with ``arch`` or an inferred arch."""
    path = check_checkpoint_path(Path(path))

    import torch

    from ..key_layouts import map_keys, unwrap

    obj = read_checkpoint_file(path)
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
        from ..registry import get_spec

        spec = get_spec(arch, **state_dict_overrides(arch, state))
        note = ArchChoice(spec.name, GIVEN)
    else:
        residual_only = next((layout.name for layout in layouts if layout.residual_only), None)
        spec, note = infer_arch(state, residual_only=residual_only)
    return Checkpoint(spec=spec, state_dict=state, path=str(path), inferred_arch=note, key_mappings=mappings)


def _is_state_dict(obj: Any) -> bool:
    import torch

    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj) and \
        all(isinstance(v, torch.Tensor) for v in obj.values())


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of a training record, as ``train`` writes it (``to_dict``): the one home of the record's fields.
    Losses are mean cross-entropy, errors fractions of the images, times seconds; ``wall_time_s`` sums
    ``epoch_time_s`` over the run (across resumes)."""

    epoch: int  # 1-based
    lr: float
    train_loss: float
    train_error: float
    test_loss: float
    test_error: float
    train_correct: int
    train_images: int
    test_correct: int
    test_images: int
    train_time_s: float
    images_per_s: float | None  # None where no training time was measured
    epoch_time_s: float  # training and evaluation
    wall_time_s: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The record's fields, read back from a file (``check_record``): RECORD_REQUIRED in every epoch (what plot-record
#: draws); the others, where present, numbers too; ``train`` writes all of them in every epoch, and only those in
#: RECORD_NULLABLE may be None.
RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(EpochRecord))
RECORD_REQUIRED = ("epoch", "train_error", "test_error")
RECORD_NUMBERS = tuple(name for name in RECORD_FIELDS if name not in RECORD_REQUIRED)
RECORD_NULLABLE = ("images_per_s",)
#: What an epoch ``train`` wrote always holds: what resuming a run requires of its record.
RECORD_WRITTEN = tuple(name for name in RECORD_FIELDS if name not in RECORD_NULLABLE)


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
            from ..data import DatasetInfo

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


