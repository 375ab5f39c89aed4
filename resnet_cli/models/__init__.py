"""Torch modules: one builder per family (named in the family table, resnet_cli/families.py) turns any ArchSpec
into an ``nn.Module``.

Every model built here is a ``ResidualNetwork`` (models/base.py): its residual blocks are reachable in forward
order with their stage, index and whether they change shape — the one hook that the path, lesion and gradient
analyses share — and ``forward_stem`` / ``forward_head`` are separable so an analysis can run a prefix once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..spec import ArchSpec

if TYPE_CHECKING:  # pragma: no cover
    from .base import ResidualNetwork


def build_model(spec: ArchSpec) -> ResidualNetwork:
    """Build the module for a validated spec (its family's builder, from the family table)."""
    return spec.family_entry.build(spec)
