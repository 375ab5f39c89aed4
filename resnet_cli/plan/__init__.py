"""Analytic plans: a spec -> every counted layer with its role, geometry, parameters, MACs and output shape,
without torch.

``plan_model(spec)`` is the default counting engine of ``resnet-cli params`` and the one source of facts about
an architecture (block names, what a lesion deletes, ...); tests check it against fvcore and hooks over the built
module for every registered architecture. Each family's module (resnet.py, densenet.py, keras.py, vgg.py) has its
planner; the family table (resnet_cli/families.py) chooses it by ``spec.family``.
"""

from __future__ import annotations

from ..spec import ArchSpec
from .layers import LayerCount, Shape
from .model import ModelPlan, UnitPlan


def plan_model(spec: ArchSpec) -> ModelPlan:
    return spec.family_entry.plan(spec)


__all__ = ["LayerCount", "ModelPlan", "Shape", "UnitPlan", "plan_model"]
