"""resnet-cli: build, count, unravel and lesion residual networks.

The public API is imported lazily so that ``import resnet_cli`` (and the CLI's fast commands) never pay for
importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .checkpoint import Checkpoint
    from .spec import ArchSpec


def list_archs(pattern: str | None = None) -> list[str]:
    """Registered architecture names, optionally filtered by a glob pattern (``"resnet*"``)."""
    from .registry import list_archs as _list

    return _list(pattern)


def get_spec(arch: str | ArchSpec, **overrides: Any) -> ArchSpec:
    """The ArchSpec of a registered or parametric name, with any field overridden by keyword."""
    from .registry import get_spec as _get

    return _get(arch, **overrides)


def build_model(arch: str | ArchSpec, num_classes: int | None = None, **overrides: Any) -> torch.nn.Module:
    """Build the torch module for a name (or spec); ``num_classes`` and any spec field may be overridden."""
    from .models import build_model as _build

    return _build(get_spec(arch, num_classes=num_classes, **overrides))


def load_checkpoint(path: str, arch: str | None = None) -> Checkpoint:
    """A resnet-cli checkpoint, or a state dict saved by other code (torchvision's names, DataParallel,
    torch.compile, Lightning, akamaster's CIFAR ResNets): ``.spec``, ``.build_model()``, ``.load_data()``, and
    ``.key_mappings`` saying what had to be renamed. ``arch`` names a bare state dict's network (else inferred)."""
    from .checkpoint import load_checkpoint as _load

    return _load(path, arch=arch)




def summarize(module: torch.nn.Module, input_size: Any = 224, **options: Any) -> Any:
    """The ``params`` table of any module (hooks on its layers), with torchinfo-style memory estimates:
    ``print_summary(summarize(model, input_size="224x320", batch_size=32))`` or ``.to_dict()``.

    Options: ``batch_size``, ``in_channels``, ``dtype``, ``detail`` (1 stages, 2 + blocks), ``name``."""
    from .analysis.summary import summarize as _summarize

    return _summarize(module, input_size, **options)


def print_summary(report: Any) -> None:
    """Print a ``summarize`` (or ``params``) report as the ``params`` command does."""
    from .render import stdout_console
    from .render.params import params_table

    params_table(report, stdout_console())


__all__ = ["__version__", "build_model", "get_spec", "list_archs", "load_checkpoint", "print_summary",
           "summarize"]
