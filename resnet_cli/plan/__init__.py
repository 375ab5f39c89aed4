"""Analytic plans: a spec -> every counted layer with its parameters, MACs and output shape, without torch.

``plan_model(spec)`` is the default counting engine of ``resnet-cli params``; tests check it against fvcore
over the built module for every registered architecture. One planner per family, chosen by ``spec.family``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import SpecError
from ..spec import ArchSpec
from .layers import LayerCount, Shape
from .model import ModelPlan, UnitPlan

PLANNERS: dict[str, Callable[[ArchSpec], ModelPlan]] = {}


def planner(family: str) -> Callable:
    def deco(fn: Callable[[ArchSpec], ModelPlan]) -> Callable[[ArchSpec], ModelPlan]:
        PLANNERS[family] = fn
        return fn

    return deco


def plan_model(spec: ArchSpec) -> ModelPlan:
    from . import densenet, resnet, seeds  # noqa: F401  (planners register on import)

    try:
        fn = PLANNERS[spec.family]
    except KeyError:
        raise SpecError(f"no analytic planner for family {spec.family!r}") from None
    return fn(spec)


__all__ = ["LayerCount", "ModelPlan", "Shape", "UnitPlan", "plan_model", "planner"]
