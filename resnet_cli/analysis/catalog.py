"""The catalogue behind ``resnet-cli archs``: every registered name with its size, by arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..plan import plan_model
from ..registry import get_spec, list_archs, parametric_templates


@dataclass
class ArchsReport:
    rows: list[dict[str, Any]]
    parametric: list[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {"archs": self.rows, "parametric": self.parametric,
                "units": {"params": "count", "macs": "multiply-adds at each arch's default input size"}}


def catalog(pattern: str | None = None) -> ArchsReport:
    """The registered names and the parametric families that ``pattern`` matches: a glob (``resnet1*``), or a
    plain word, found anywhere in a name (``cifar``: cifar_resnet<depth>, cifar_plain<depth>)."""
    if pattern and not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    rows = []
    for name in list_archs(pattern):
        spec = get_spec(name)
        plan = plan_model(spec)
        rows.append({
            "name": name, "family": spec.family, "kind": spec.kind, "depth": spec.depth,
            "residual_blocks": len(plan.blocks),
            "input_size": spec.input_size, "num_classes": spec.num_classes, "params": plan.params,
            "macs": plan.macs, "description": spec.description,
        })
    parametric = [{"template": p.template, "help": p.help} for p in parametric_templates(pattern)]
    return ArchsReport(rows, parametric)
