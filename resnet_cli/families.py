"""The family table: the one place that says which families of networks exist.

A *family* (``resnet``, ``highway``, ``densenet``, ``keras``, ``vgg``) is declared by one module,
``resnet_cli/plan/<m>.py``, as ``Family`` entries in its ``FAMILIES`` tuple. An entry holds everything the rest of
the tool asks of a family:

- ``blocks``: the values its specs' ``block`` field may take;
- ``check``: the validation of the spec fields only this family reads (``ArchSpec.validate`` runs the common
  checks, then this);
- ``plan``: the analytic plan (torch-free), the one source of layer names, roles, shapes and counts;
- ``builder``: the torch module builder as a lazy ``"module:callable"`` path, imported on the first build, so
  that this table, the specs and the plans never import torch (``archs`` and ``params`` run without it);
- ``zoo``: the module that registers the family's names (imported by the registry on first use);
- ``kind`` and ``depth``: the listing's label and the papers' layer count;
- ``fields``: the spec fields only some families read (marked ``FAMILY_ONLY`` in spec.py) that this one reads;
  a spec of another family may not set them;
- ``state_dicts``: how a bare state dict of this family is recognised (``StateDictKeys``: its head and stem
  keys, a cheap test on its keys, the parametric names its keys imply), what ``checkpoint.inference`` reads.

Adding a family: write its plan module with its ``FAMILIES`` entry (and the builder and zoo modules it names),
add the module's name to ``FAMILY_MODULES`` below, and add its published counts to the tests.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from .plan.model import ModelPlan
    from .spec import ArchSpec

# resnet_cli/plan/<name>.py for each name: the modules that declare the families. Their zoo modules register
# names in this order (it orders the parametric names in ``archs``).
FAMILY_MODULES = ("densenet", "resnet", "keras", "vgg")


def _no_checks(spec: ArchSpec) -> None:
    return None


def layer_depth(spec: ArchSpec) -> int:
    """Weighted layers on the longest path, as He et al. count them: the convs of the blocks + stem + fc."""
    per_block = 3 if spec.block == "bottleneck" else 2
    return per_block * spec.num_blocks + 2


#: A state dict's keys and their tensors' shapes, as arch inference reads them.
Shapes = Mapping[str, tuple[int, ...]]


def _may_fit(spec: ArchSpec, shapes: Shapes) -> bool:
    return True


def _no_names(shapes: Shapes) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class StateDictKeys:
    """How a family's state dicts look, so that a bare one (no spec saved with it) is matched to an architecture.

    Inference builds each candidate on the meta device and compares keys and shapes; this says what to read
    before that and which candidates to try."""

    #: The classifier's weight, whose rows are the classes, and the first conv's, whose second axis is the input
    #: channels: a bare state dict says both outright, and candidates take them.
    head: str = "fc.weight"
    stem: str = "conv1.weight"
    #: A cheap test on the keys and shapes (blocks per stage, the stem's kernel) before building the candidate.
    could_fit: Callable[[ArchSpec, Shapes], bool] = _may_fit
    #: Parametric names the keys imply, tried beside the registered ones (a CIFAR ResNet's depth is 6n+2).
    parametric_names: Callable[[Shapes], tuple[str, ...]] = _no_names


@dataclass(frozen=True)
class Family:
    name: str
    blocks: tuple[str, ...]
    plan: Callable[[ArchSpec], ModelPlan]
    builder: str  # "package.module:callable", the callable taking the spec and returning the nn.Module
    zoo: str  # the module that registers the family's names
    kind: Callable[[ArchSpec], str]
    check: Callable[[ArchSpec], None] = _no_checks
    depth: Callable[[ArchSpec], int] = layer_depth
    fields: tuple[str, ...] = ()  # the spec fields marked FAMILY_ONLY (spec.py) that this family reads
    state_dicts: StateDictKeys = StateDictKeys()

    def build(self, spec: ArchSpec) -> Any:
        module, _, attr = self.builder.partition(":")
        return getattr(importlib.import_module(module), attr)(spec)


@functools.cache
def families() -> dict[str, Family]:
    """Every family by name, in FAMILY_MODULES order."""
    out: dict[str, Family] = {}
    for module in FAMILY_MODULES:
        for family in importlib.import_module(f"{__package__}.plan.{module}").FAMILIES:
            if family.name in out:
                raise RuntimeError(f"family {family.name!r} declared twice")
            out[family.name] = family
    return out


def family_of(name: str) -> Family:
    table = families()
    if name not in table:
        raise SpecError(f"family must be one of {', '.join(table)}, not {name!r}")
    return table[name]
