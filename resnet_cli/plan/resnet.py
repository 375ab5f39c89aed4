"""Analytic plan of the ``resnet`` family (models/resnet.py builds the same layers with the same names)."""

from __future__ import annotations

from ..spec import ArchSpec
from . import planner
from .layers import LayerCount, Shape, bn, conv, global_pool, linear, pool
from .model import ModelPlan, UnitPlan


def bottleneck_width(spec: ArchSpec, planes: int) -> int:
    """Channels of a bottleneck's grouped 3x3 conv (torchvision: ``int(planes * base_width / 64) * groups``)."""
    return int(planes * (spec.width_per_group / 64.0)) * spec.groups


def stem_plan(spec: ArchSpec) -> UnitPlan:
    shape: Shape = (spec.in_channels, spec.input_size, spec.input_size)
    unit = UnitPlan("stem", "stem", shape)
    if spec.stem == "imagenet":
        c1 = conv("conv1", shape, spec.stem_width, 7, stride=2, padding=3)
        unit.layers += [c1, bn("bn1", c1.out_shape), pool("maxpool", c1.out_shape, 3, 2, 1)]
    else:
        c1 = conv("conv1", shape, spec.stem_width, 3)
        unit.layers += [c1, bn("bn1", c1.out_shape)]
    return unit


def block_plan(spec: ArchSpec, name: str, stage: str, shape: Shape, planes: int, stride: int) -> UnitPlan:
    """One basic or bottleneck block: its branch, then its shortcut (if it has layers)."""
    out_channels = planes * spec.expansion
    changes_shape = stride != 1 or shape[0] != out_channels
    unit = UnitPlan(name, stage, shape, is_block=True, downsample=changes_shape)
    if spec.block == "basic":
        c1 = conv(f"{name}.conv1", shape, planes, 3, stride)
        c2 = conv(f"{name}.conv2", c1.out_shape, planes, 3)
        unit.layers += [c1, bn(f"{name}.bn1", c1.out_shape), c2, bn(f"{name}.bn2", c2.out_shape)]
    else:
        width = bottleneck_width(spec, planes)
        c1 = conv(f"{name}.conv1", shape, width, 1)
        c2 = conv(f"{name}.conv2", c1.out_shape, width, 3, stride, groups=spec.groups)
        c3 = conv(f"{name}.conv3", c2.out_shape, out_channels, 1)
        unit.layers += [c1, bn(f"{name}.bn1", c1.out_shape), c2, bn(f"{name}.bn2", c2.out_shape),
                        c3, bn(f"{name}.bn3", c3.out_shape)]
    out_shape = unit.layers[-1].out_shape
    unit.layers += shortcut_plan(spec, name, shape, out_shape, stride, changes_shape)
    return unit


def shortcut_plan(spec: ArchSpec, name: str, shape: Shape, out_shape: Shape, stride: int,
                  changes_shape: bool) -> list[LayerCount]:
    if not spec.residual:
        return []
    if spec.shortcut == "C" or (spec.shortcut == "B" and changes_shape):
        proj = conv(f"{name}.downsample.0", shape, out_shape[0], 1, stride, padding=0)
        return [proj, bn(f"{name}.downsample.1", proj.out_shape)]
    if changes_shape:  # option A: subsample and zero-pad channels, no parameters
        return [LayerCount(f"{name}.downsample", "shortcut", 0, 0, out_shape, "zero-pad (option A)")]
    return []


def head_plan(spec: ArchSpec, shape: Shape) -> UnitPlan:
    unit = UnitPlan("head", "head", shape)
    gp = global_pool("avgpool", shape)
    unit.layers += [gp, linear("fc", shape[0], spec.num_classes)]
    return unit


@planner("resnet")
def plan_resnet(spec: ArchSpec) -> ModelPlan:
    units = [stem_plan(spec)]
    shape = units[0].out_shape
    for i, (n_blocks, planes, stride) in enumerate(zip(spec.layers, spec.widths, spec.strides)):
        stage = f"layer{i + 1}"
        for j in range(n_blocks):
            unit = block_plan(spec, f"{stage}.{j}", stage, shape, planes, stride if j == 0 else 1)
            units.append(unit)
            shape = unit.out_shape
    units.append(head_plan(spec, shape))
    return ModelPlan(spec, units, units[-1].out_shape)
