"""The plan of a whole network: units (stem, each residual block, head) grouped into stages."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..spec import ArchSpec
from .layers import ROLES, LayerCount, Shape, bn_statistics, shape_change


@dataclass
class UnitPlan:
    """The stem, one residual block, or the head."""

    name: str  # "stem", "layer1.0", "head"
    stage: str  # "stem", "layer1", ..., "head"
    in_shape: Shape
    layers: list[LayerCount] = field(default_factory=list)
    is_block: bool = False
    downsample: bool = False  # the block changes the shape of its input

    def add(self, role: str, *layers: LayerCount) -> LayerCount:
        """Append ``layers`` with their role (layers.ROLES) and this unit as their block; returns the last."""
        if role not in ROLES:
            raise ValueError(f"unknown layer role {role!r}")
        block = self.name if self.is_block else ""
        for layer in layers:
            self.layers.append(layer.placed(role, block))
        return self.layers[-1]

    @property
    def shape_change(self) -> str | None:
        """How the block changes its shape (layers.shape_change): its shortcut projects where it has a conv, or
        where it carries the block's change of shape (option A's zero-padding into more channels)."""
        shortcut = self.role_layers("shortcut")
        projects = any(layer.kind == "conv" for layer in shortcut) or (self.downsample and bool(shortcut))
        return shape_change(self.in_shape, self.out_shape, projects)

    @property
    def out_shape(self) -> Shape:
        # the branch's last layer gives a block's output shape (a shortcut or gate after it has the same one)
        return self.layers[-1].out_shape if self.layers else self.in_shape

    def renamed(self, name: str) -> UnitPlan:
        """This block under the name ``name``: the same layers, each renamed from ``<self.name>.x`` to
        ``<name>.x`` and placed in block ``name``."""
        prefix = f"{self.name}."
        layers = [layer.placed(layer.role, name, f"{name}.{layer.name.removeprefix(prefix)}") for layer in self.layers]
        return UnitPlan(name, self.stage, self.in_shape, layers, self.is_block, self.downsample)

    def role_layers(self, role: str) -> list[LayerCount]:
        return [layer for layer in self.layers if layer.role == role]

    @property
    def branch_macs(self) -> int:
        """MACs of the residual branch: what a block skips when stochastic depth drops it."""
        return sum(layer.macs for layer in self.role_layers("branch"))

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
    def buffers(self) -> int:
        """Batch norm's running statistics: a mean and a variance per channel (``num_batches_tracked`` left out),
        tensors in the state dict that are not trained: Keras' summary calls them non-trainable params."""
        return sum(bn_statistics(layer) for layer in self.layers())

    @property
    def blocks(self) -> list[UnitPlan]:
        return [u for u in self.units if u.is_block]

    def block_names(self) -> list[str]:
        """The residual blocks' names in forward order (the modules' state-dict prefixes, ``layer2.0``)."""
        return [u.name for u in self.blocks]

    def expected_training_macs(self) -> float:
        """MACs per image expected in a training step under the spec's stochastic-depth schedule: each block's
        branch counts with its survival probability p_l; everything else (shortcuts, gates) always runs."""
        survival = self.spec.survival_probabilities()
        return self.macs - sum((1.0 - p) * u.branch_macs for p, u in zip(survival, self.blocks))

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
