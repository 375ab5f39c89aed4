"""Torch modules: one builder per family turns any ArchSpec into an ``nn.Module``.

Every model built here is a ``ResidualNetwork`` (models/base.py): its residual blocks are reachable in forward
order with their stage, index and whether they change shape — the one hook that the path, lesion and gradient
analyses share — and ``forward_stem`` / ``forward_head`` are separable so an analysis can run a prefix once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import SpecError
from ..spec import ArchSpec

if TYPE_CHECKING:  # pragma: no cover
    from .base import ResidualNetwork

BUILDERS: dict[str, Callable[[ArchSpec], ResidualNetwork]] = {}


def builder(family: str) -> Callable:
    def deco(fn: Callable[[ArchSpec], ResidualNetwork]) -> Callable[[ArchSpec], ResidualNetwork]:
        BUILDERS[family] = fn
        return fn

    return deco


def build_model(spec: ArchSpec) -> ResidualNetwork:
    """Build the module for a validated spec."""
    from . import densenet, resnet, seeds  # noqa: F401  (builders register on import)

    try:
        fn = BUILDERS[spec.family]
    except KeyError:
        raise SpecError(f"no builder for family {spec.family!r}") from None
    return fn(spec)
