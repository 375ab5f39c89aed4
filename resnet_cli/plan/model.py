"""The plan of a whole network: units (stem, each residual block, head) grouped into stages."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..spec import ArchSpec
from .layers import LayerCount, Shape


@dataclass
class UnitPlan:
    """The stem, one residual block, or the head."""

    name: str  # "stem", "layer1.0", "head"
    stage: str  # "stem", "layer1", ..., "head"
    in_shape: Shape
    layers: list[LayerCount] = field(default_factory=list)
    is_block: bool = False
    downsample: bool = False  # the block changes the shape of its input

    @property
    def out_shape(self) -> Shape:
        return self.layers[-1].out_shape if self.layers else self.in_shape

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


@dataclass
class ModelPlan:
    spec: ArchSpec
    units: list[UnitPlan]
    out_shape: Shape = (0, 0, 0)

    @property
    def params(self) -> int:
        return sum(u.params for u in self.units)

    @property
    def macs(self) -> int:
        return sum(u.macs for u in self.units)

    @property
    def blocks(self) -> list[UnitPlan]:
        return [u for u in self.units if u.is_block]

    def stages(self) -> list[tuple[str, list[UnitPlan]]]:
        """Units grouped by stage, in forward order."""
        out: list[tuple[str, list[UnitPlan]]] = []
        for unit in self.units:
            if not out or out[-1][0] != unit.stage:
                out.append((unit.stage, []))
            out[-1][1].append(unit)
        return out

    def layers(self) -> list[LayerCount]:
        return [layer for u in self.units for layer in u.layers]
