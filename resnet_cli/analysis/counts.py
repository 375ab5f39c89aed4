"""Parameters and MACs of an architecture, per stage, block and layer, from the analytic plan.

Conventions, stated in every output: one MAC (multiply-add) is what the ResNet paper and torchvision call
one "FLOP"; FLOPs = 2 x MACs; only conv and linear layers are charged; batch norm adds parameters, no MACs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from ..plan import ModelPlan, plan_model
from ..plan.layers import LayerCount, Shape
from ..plan.resnet import block_plan
from ..registry import spec_overrides
from ..spec import ArchSpec
from .memory import DTYPE_BYTES, memory_estimate, plan_stage_sizes

CONVENTIONS = (
    "MACs = multiply-adds of conv and linear layers (the ResNet paper's and torchvision's 'FLOPs'); "
    "FLOPs = 2 x MACs; batch norm, pooling, ReLU and the residual addition are not charged; "
    "params count weights and biases; buffers are BN's running means and variances (Keras' non-trainable "
    "params), not parameters"
)


@dataclass
class Row:
    """One line of a size table: a stage, a block or a layer."""

    name: str
    kind: str  # stage | block | layer kinds (conv, bn, linear, pool, shortcut)
    level: int  # 1 stage, 2 block, 3 layer
    out_shape: Shape
    params: int
    macs: int
    share: float  # of the model's MACs
    detail: str = ""
    receptive_field: int | None = None  # px of the input one output pixel sees (stages and blocks; None: head)


# The layers on the longest path through the network: the branch of every block, the stem and the DenseNet
# transitions. Shortcuts (1x1 or none) and gates see less; the head's global pool sees everything by definition.
MAIN_PATH_ROLES = ("stem", "branch", "transition")


@dataclass
class ReceptiveField:
    """The theoretical receptive field by the standard recursion (Araujo et al. 2019, "Computing receptive fields
    of convolutional neural networks"): through a layer of kernel k and stride s, r <- r + (k - 1) j, j <- j s,
    from r = j = 1 at the input, over the plan's kernels and strides in forward order along the main path."""

    size: int = 1  # r, in input pixels
    jump: int = 1  # j, input pixels between two neighbouring outputs

    def through(self, unit: Any) -> int:
        for layer in unit.layers:
            if layer.kernel and layer.role in MAIN_PATH_ROLES:
                self.size += (layer.kernel - 1) * self.jump
                self.jump *= layer.stride
        return self.size


@dataclass
class ParamsReport:
    arch: str
    engine: str
    input_size: int
    num_classes: int
    params: int
    trainable_params: int
    macs: int
    # BN's running means and variances: state-dict tensors that are not trained (plan.ModelPlan.buffers)
    buffers: int
    residual_blocks: int
    depth: int
    rows: list[Row]
    spec: dict[str, Any]
    conventions: str = CONVENTIONS
    fvcore: dict[str, Any] | None = None
    # With stochastic depth (Huang et al. 2016): p_L, the expected number of blocks that run in a training step
    # (sum of p_l; (3L - 1)/4 for p_L = 0.5) and the expected training MACs per image (each block's MACs times
    # its survival probability; the shortcut's projection always runs).
    stochastic_depth: dict[str, Any] | None = None
    # What was built beyond the name: spec fields that differ from the registered arch (``--set`` and the named
    # options), and the label that says so (``resnet110 (shortcut_mode=conv)``; the bare name when unmodified).
    overrides: dict[str, Any] = field(default_factory=dict)
    # Height and width of the input (``input_size`` is the height), and the memory estimates (analysis/memory.py).
    input_hw: tuple[int, int] | None = None
    memory: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        from ..registry import label_with_overrides

        return label_with_overrides(self.arch, self.overrides)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def stages(self) -> list[Row]:
        return [r for r in self.rows if r.level == 1]

    def to_dict(self) -> dict[str, Any]:
        out = {
            "arch": self.arch,
            "label": self.label,
            "overrides": self.overrides,
            "engine": self.engine,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "buffers": self.buffers,
            "macs": self.macs,
            "flops": self.flops,
            "gmacs": self.macs / 1e9,  # exact: tables round, JSON does not
            "residual_blocks": self.residual_blocks,
            "depth": self.depth,
            "units": {"params": "count", "macs": "multiply-adds", "flops": "2 x macs"},
            "conventions": self.conventions,
            "receptive_field": next((r.receptive_field for r in reversed(self.stages) if r.receptive_field), None),
            "stages": [_row_dict(r) for r in self.stages],
            "rows": [_row_dict(r) for r in self.rows],
            "spec": self.spec,
        }
        if self.input_hw is not None:
            out["input_hw"] = list(self.input_hw)
        if self.memory is not None:
            out["memory"] = self.memory
        if self.stochastic_depth is not None:
            out["stochastic_depth"] = self.stochastic_depth
        if self.fvcore is not None:
            out["fvcore_flops"] = self.fvcore["total"]
            out["fvcore"] = self.fvcore
        return out


def _row_dict(row: Row) -> dict[str, Any]:
    d = asdict(row)
    d["out_shape"] = list(row.out_shape)
    return d


def module_buffers(module: Any) -> int:
    """What ``ModelPlan.buffers`` counts, read off a built module: its BN layers' running means and variances."""
    return sum(b.numel() for name, b in module.named_buffers() if name.endswith((".running_mean", ".running_var"))
               or name in ("running_mean", "running_var"))


def count_params(spec: ArchSpec, detail: int = 1, plan: ModelPlan | None = None, *, batch_size: int = 1,
                 dtype: str = "float32") -> ParamsReport:
    """The size report of ``spec`` by arithmetic; ``detail`` 1 = stages, 2 = + blocks, 3 = + layers; memory
    estimates at ``batch_size`` and ``dtype`` (a name in memory.DTYPE_BYTES)."""
    plan = plan or plan_model(spec)
    total_macs = plan.macs or 1
    rows: list[Row] = []
    field_of_view = ReceptiveField()
    for stage, units in plan.stages():
        s_params = sum(u.params for u in units)
        s_macs = sum(u.macs for u in units)
        kind = "stage" if units[0].is_block else stage
        stage_row = Row(stage, kind, 1, units[-1].out_shape, s_params, s_macs, s_macs / total_macs,
                        f"{sum(u.is_block for u in units)} blocks" if units[0].is_block else "")
        rows.append(stage_row)
        for unit in units:
            rf = field_of_view.through(unit)
            if detail >= 2 and unit.is_block:
                rows.append(Row(unit.name, "block", 2, unit.out_shape, unit.params, unit.macs,
                                unit.macs / total_macs, unit.shape_change or "", rf))
            if detail >= 3:
                rows += [_layer_row(layer, total_macs) for layer in unit.layers]
        stage_row.receptive_field = None if stage == "head" else field_of_view.size
    return ParamsReport(
        arch=spec.name, engine="analytic", input_size=spec.input_size, num_classes=spec.num_classes,
        params=plan.params, trainable_params=plan.params, buffers=plan.buffers, macs=plan.macs,
        residual_blocks=len(plan.blocks), depth=spec.depth, rows=rows, spec=spec.to_dict(),
        stochastic_depth=_stochastic_depth(spec, plan), overrides=spec_overrides(spec), input_hw=spec.input_hw,
        memory=memory_estimate(plan_stage_sizes(plan), batch_size=batch_size, dtype=dtype,
                               bytes_per_element=DTYPE_BYTES[dtype],
                               input_elements=spec.in_channels * spec.input_hw[0] * spec.input_hw[1]),
    )


def _stochastic_depth(spec: ArchSpec, plan: ModelPlan) -> dict[str, Any] | None:
    if spec.stochastic_depth is None:
        return None
    expected = plan.expected_training_macs()  # a dropped block skips its branch; shortcut and gate still run
    return {
        "p_last": spec.stochastic_depth,
        "expected_blocks": spec.expected_depth,
        "blocks": len(plan.blocks),
        "expected_training_macs": expected,
        "expected_training_macs_share": expected / plan.macs if plan.macs else 1.0,
    }


def _layer_row(layer: LayerCount, total_macs: int) -> Row:
    return Row(layer.name, layer.kind, 3, layer.out_shape, layer.params, layer.macs, layer.macs / total_macs,
               layer.detail)


# --------------------------------------------------------------------------- one block: basic vs bottleneck
@dataclass
class BlockReport:
    """The weights of one residual block at a given width: why He et al. 2015 (§4.1, Fig. 5) use the bottleneck
    in deep nets (two 3x3 convs at 256 channels hold 17x the weights of a 1x1-3x3-1x1 bottleneck)."""

    block: str
    channels: int
    feature_size: int
    layers: list[LayerCount]
    other: dict[str, Any] = field(default_factory=dict)  # the other block kind, for the ratio

    @property
    def conv_params(self) -> int:
        return sum(lc.params for lc in self.layers if lc.kind == "conv")

    @property
    def bn_params(self) -> int:
        return sum(lc.params for lc in self.layers if lc.kind == "bn")

    @property
    def macs(self) -> int:
        return sum(lc.macs for lc in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "block": self.block,
            "channels": self.channels,
            "feature_size": self.feature_size,
            "conv_params": self.conv_params,
            "bn_params": self.bn_params,
            "params": self.conv_params + self.bn_params,
            "macs": self.macs,
            "flops": 2 * self.macs,
            "layers": [
                {"name": lc.name, "kind": lc.kind, "detail": lc.detail, "params": lc.params, "macs": lc.macs}
                for lc in self.layers
            ],
            "compared_with": self.other,
            "conventions": CONVENTIONS,
        }


def block_layers(block: str, channels: int, feature_size: int, placement: str = "original") -> list[LayerCount]:
    """A shape-preserving block of ``channels`` in and out, as the ResNet planner lays it out: basic = two 3x3
    convs; bottleneck = 1x1 to channels/4, 3x3, 1x1 back (He et al. 2015 Fig. 5), each conv with its BN (before
    it under full pre-activation)."""
    if block == "bottleneck" and channels % 4:
        raise ValueError(f"a bottleneck needs channels divisible by 4 (got {channels})")
    spec = ArchSpec(name=f"one {block} block", block=block, placement=placement)
    unit = block_plan(spec, "block", "block", (channels, feature_size, feature_size), channels // spec.expansion, 1)
    return [dataclasses.replace(layer, name=layer.name.removeprefix("block."), block="") for layer in unit.layers]


def count_block(block: str, channels: int, feature_size: int = 56) -> BlockReport:
    report = BlockReport(block, channels, feature_size, block_layers(block, channels, feature_size))
    other_kind = "bottleneck" if block == "basic" else "basic"
    if channels % 4 == 0:
        other = BlockReport(other_kind, channels, feature_size, block_layers(other_kind, channels, feature_size))
        basic, bottle = (report, other) if block == "basic" else (other, report)
        report.other = {
            "block": other_kind,
            "conv_params": other.conv_params,
            "basic_to_bottleneck_ratio": basic.conv_params / bottle.conv_params,
        }
    return report


# --------------------------------------------------------------------------- compare
@dataclass
class CompareReport:
    reports: list[ParamsReport]
    # each column's name where it is not its report's label: a checkpoint's, by its file (registry.column_label)
    labels: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        base = self.reports[0]
        labels = self.labels or [r.label for r in self.reports]
        return {
            "baseline": labels[0],
            "conventions": CONVENTIONS,
            "archs": [
                {
                    "arch": r.arch,
                    "label": label,
                    "overrides": r.overrides,
                    "depth": r.depth,
                    "residual_blocks": r.residual_blocks,
                    "input_size": r.input_size,
                    "input_hw": list(r.input_hw or (r.input_size, r.input_size)),
                    "params": r.params,
                    "buffers": r.buffers,
                    "macs": r.macs,
                    "flops": r.flops,
                    "params_ratio": r.params / base.params if base.params else None,
                    "macs_ratio": r.macs / base.macs if base.macs else None,
                }
                for r, label in zip(self.reports, labels)
            ],
        }
