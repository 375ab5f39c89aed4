"""Architecture inference: which registered architecture a bare state dict (no spec saved with it) is.

Each family says in its entry of the family table how its state dicts look (``families.StateDictKeys``: the head
and stem keys, a cheap test on the keys, the parametric names the keys imply); this module holds no family's
facts. A candidate fits when the module it builds (on the meta device: no memory, no time) has exactly the
state dict's keys and shapes. The answer is data (``ArchChoice``): the name, how it was decided, and what was
set aside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ArchNeededError, ResnetCliError

if TYPE_CHECKING:  # pragma: no cover
    from ..families import Family, Shapes
    from ..spec import ArchSpec

#: ``ArchChoice.by``: named with --arch, or the one architecture whose keys and shapes the state dict has.
GIVEN = "given"
KEYS_AND_SHAPES = "keys_and_shapes"


@dataclass(frozen=True)
class SetAside:
    """Architectures that fit the weights too, and why the choice is another: ``archs`` ``reason``."""

    archs: tuple[str, ...]
    reason: str  # a predicate of the archs: "fits too, but akamaster builds only residual nets"

    def to_dict(self) -> dict[str, Any]:
        return {"archs": list(self.archs), "reason": self.reason}


@dataclass(frozen=True)
class ArchChoice:
    """How a bare state dict's architecture was found."""

    name: str
    by: str  # GIVEN or KEYS_AND_SHAPES
    set_aside: tuple[SetAside, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "by": self.by, "set_aside": [s.to_dict() for s in self.set_aside]}


def _families_reading(name: str) -> list[Family]:
    """The family table, ``name``'s family first: whose head and stem keys a state dict is read by."""
    from ..families import families
    from ..registry import get_spec

    table = families()
    first = table[get_spec(name).family]
    return [first, *(f for f in table.values() if f is not first)]


def state_dict_overrides(name: str, state: dict[str, Any]) -> dict[str, Any]:
    """Fields a bare state dict says outright, read as ``name``'s family stores them: classes (the head's rows)
    and input channels (the first conv's second axis). Another family's keys are read where ``name``'s are
    absent, so that a wrong --arch is told its misfit with the file's real class count."""
    out: dict[str, Any] = {}
    order = _families_reading(name)
    for key in dict.fromkeys(f.state_dicts.head for f in order):
        if key in state and state[key].dim() == 2:
            out["num_classes"] = int(state[key].shape[0])
            break
    for key in dict.fromkeys(f.state_dicts.stem for f in order):
        if key in state and state[key].dim() == 4:
            out["in_channels"] = int(state[key].shape[1])
            break
    return out


def _candidate_names(shapes: Shapes) -> list[str]:
    """Every registered name, then the parametric names some family reads off the keys."""
    from ..families import families
    from ..registry import list_archs

    names = list(list_archs())
    for family in families().values():
        names += family.state_dicts.parametric_names(shapes)
    return names


def _shapes_of(spec: ArchSpec) -> dict[str, tuple[int, ...]] | None:
    import torch

    from ..models import build_model

    try:
        with torch.device("meta"):
            model = build_model(spec)
    except Exception:
        return None
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _fits(spec: ArchSpec, want: Shapes) -> bool:
    """Keys and shapes equal; without ``num_batches_tracked`` buffers (older PyTorch, some exporters) when the
    state dict has none (batch norm fills them in on a strict load)."""
    shapes = _shapes_of(spec)
    if shapes is not None and not any(k.endswith(".num_batches_tracked") for k in want):
        shapes = {k: v for k, v in shapes.items() if not k.endswith(".num_batches_tracked")}
    return shapes == want


def _break_ties(fits: list[ArchSpec], residual_only: str | None) -> tuple[list[ArchSpec], list[SetAside]]:
    """The candidates left when the key layout or the convention decides, and what was set aside."""
    dropped: list[SetAside] = []
    plain = tuple(s.name for s in fits if not s.residual)
    if residual_only and plain and len(plain) < len(fits):
        fits = [s for s in fits if s.residual]
        dropped.append(SetAside(plain, f"fits too, but {residual_only} builds only residual nets"))
    # Where a bottleneck strides leaves no trace in the weights: resnet50 and resnet50_v1 have equal state dicts.
    # A bare state dict is read in torchvision's (and timm's) layout, the stride in the 3x3, unless --arch says.
    v15 = [s for s in fits if not s.stride_in_1x1]
    if len(fits) > 1 and len(v15) == 1:
        others = tuple(s.name for s in fits if s.stride_in_1x1)
        fits = v15
        dropped.append(SetAside(others, "has the same weights, strided in the first 1x1: pass --arch for it"))
    return fits, dropped


def infer_arch(state: dict[str, Any], *, residual_only: str | None = None) -> tuple[ArchSpec, ArchChoice]:
    """The one registered (or parametric) architecture whose keys and shapes equal the state dict's.

    Candidates take the state dict's class count and input channels. Names with the same spec (``resnet20`` and
    ``cifar_resnet20``) count once. Raises ``CheckpointError`` when none fits or several different ones do
    (e.g. a CIFAR ResNet and its plain twin: option A shortcuts have no weights, so their state dicts are
    equal) — unless ``residual_only`` (the name of a key layout whose code builds only residual nets) leaves one.
    """
    import dataclasses

    from ..families import family_of
    from ..registry import get_spec

    want = {k: tuple(v.shape) for k, v in state.items()}
    matches: dict[tuple, ArchSpec] = {}
    for name in _candidate_names(want):
        try:
            spec = get_spec(name, **state_dict_overrides(name, state))
        except ResnetCliError:
            continue
        if family_of(spec.family).state_dicts.could_fit(spec, want) and _fits(spec, want):
            key = tuple(sorted((k, str(v)) for k, v in dataclasses.asdict(spec).items()
                               if k not in ("name", "description")))
            matches.setdefault(key, spec)
    if not matches:
        raise ArchNeededError("the state dict matches no registered architecture (keys or shapes differ)")
    fits, dropped = _break_ties(list(matches.values()), residual_only)
    if len(fits) > 1:
        raise ArchNeededError(f"the state dict fits several architectures ({', '.join(s.name for s in fits)})")
    return fits[0], ArchChoice(fits[0].name, KEYS_AND_SHAPES, tuple(dropped))
