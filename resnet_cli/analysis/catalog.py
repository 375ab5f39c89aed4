"""The catalogue behind ``resnet-cli archs``: every registered name with its size, by arithmetic."""

from __future__ import annotations

import fnmatch
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
    """The registered names and the parametric families that ``pattern`` matches: a glob (``resnet1*``) matches
    names only; a plain word (no ``*?[``) is found anywhere in a name, and, case-insensitively, in an
    architecture's family or description too (``cifar``: resnet20 ... resnet1202, wrn28_10, densenet40_12, whose
    descriptions say CIFAR, and every parametric name, whose help says CIFAR)."""
    word = pattern if pattern and not any(c in pattern for c in "*?[") else None
    glob = f"*{word}*" if word else pattern
    rows = []
    for name in list_archs():
        spec = get_spec(name)
        if glob and not fnmatch.fnmatchcase(name, glob) and not (word and _describes(word, spec)):
            continue
        plan = plan_model(spec)
        rows.append({
            "name": name, "family": spec.family, "kind": spec.kind, "depth": spec.depth,
            "residual_blocks": len(plan.blocks),
            "input_size": spec.input_size, "num_classes": spec.num_classes, "params": plan.params,
            "macs": plan.macs, "description": spec.description,
        })
    matched = parametric_templates(glob)
    parametric = [{"template": p.template, "help": p.help} for p in parametric_templates()
                  if p in matched or (word and word.casefold() in p.help.casefold())]
    return ArchsReport(rows, parametric)


def _describes(word: str, spec: Any) -> bool:
    """Whether the architecture's family or description holds ``word`` (case-insensitive): ``archs cifar``
    finds the CIFAR nets, whose names do not say so."""
    word = word.casefold()
    return word in spec.family.casefold() or word in spec.description.casefold()
