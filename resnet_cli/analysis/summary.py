"""``resnet_cli.summarize(module, input_size=...)``: the ``params`` table for any PyTorch module, torchinfo-style.

One forward pass of zeros with hooks on the leaf modules records each one's output shape; from those:

* **MACs**: convolutions charge (output elements) x (input channels / groups) x (kernel area), linear layers
  (output elements) x (input features) — the analytic engine's rule, so a module the tool builds gets the same
  numbers as ``params`` (tested). Batch norm, pooling, activations and additions are not charged.
* **params**: every parameter, counted once, in the module that owns it.
* **memory (estimates)**, at ``batch_size`` and ``dtype``, by torchinfo's counting rule (analysis/memory.py, the
  rule ``params`` uses too): parameters x bytes per element; "forward" = the outputs of every leaf layer that has
  parameters (conv, batch norm, linear) x batch x bytes; "forward + backward" = twice that. What autograd really
  keeps differs a little (the input image, batch norm's per-channel statistics, max-pooling's int64 indices;
  in-place ReLUs share their input's memory): the tests check the estimate against the saved tensors on the CPU.

Rows are grouped as ``params`` groups the tool's own plans: a *stage* is a child container of the network's
spine (``layer1``, ``features.denseblock1``); leaves before the first stage are the ``stem``, after the last the
``head``; a *block* is a container inside a stage (``layer1.0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..limits import parse_input_size
from ..plan.layers import shape_change
from .counts import ParamsReport, Row, module_buffers
from .memory import StageSize, counted_elements, memory_estimate


@dataclass
class _Leaf:
    name: str
    kind: str  # conv | linear | bn | other
    out_shape: tuple[int, ...]  # per image (no batch dimension)
    macs: int
    output_elements: int  # per image


@dataclass
class _Group:
    name: str
    kind: str
    blocks: dict[str, list[_Leaf]] = field(default_factory=dict)  # block name -> its leaves, in forward order
    leaves: list[_Leaf] = field(default_factory=list)
    params: int = 0
    block_params: dict[str, int] = field(default_factory=dict)
    block_shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)


def summarize(module: Any, input_size: Any = 224, *, batch_size: int = 1, in_channels: int = 3,
              dtype: Any = None, detail: int = 1, name: str | None = None) -> ParamsReport:
    """The per-stage (``detail`` 2: + blocks) params / MACs / memory report of ``module`` on an input of
    ``input_size`` (H, HxW or (H, W)) pixels with ``in_channels`` channels; ``dtype`` sets the bytes per element
    of the memory estimates (default: the module's parameters' dtype). ``params`` renders it."""
    import torch

    height, width = parse_input_size(input_size)
    dtype = dtype or next((p.dtype for p in module.parameters()), torch.float32)
    element = torch.empty((), dtype=dtype).element_size()
    leaves, shapes = _trace(module, torch.zeros(1, in_channels, height, width))
    groups = _group(module, leaves, shapes)
    rows, stage_sizes = _rows(groups, detail, sum(leaf.macs for leaf in leaves) or 1)
    head = next((leaf for leaf in reversed(leaves) if leaf.kind == "linear"), None)
    spec = getattr(module, "spec", None)  # a module the tool built says what it is, with its overrides
    report = ParamsReport(
        arch=name or getattr(spec, "name", None) or type(module).__name__, engine="hooks",
        input_size=height,
        num_classes=head.out_shape[0] if head else 0, params=sum(p.numel() for p in module.parameters()),
        trainable_params=sum(p.numel() for p in module.parameters() if p.requires_grad),
        buffers=module_buffers(module),
        macs=sum(leaf.macs for leaf in leaves), residual_blocks=sum(len(g.blocks) for g in groups),
        depth=_depth(leaves),
        rows=rows, spec={}, input_hw=(height, width),
        memory=memory_estimate(stage_sizes, batch_size=batch_size, dtype=str(dtype).replace("torch.", ""),
                               bytes_per_element=element, input_elements=in_channels * height * width),
        overrides=_overrides(spec) if spec is not None and name is None else {},
    )
    return report


def _rows(groups: list[_Group], detail: int, total_macs: int) -> tuple[list[Row], list[StageSize]]:
    """The table's rows (stages; with ``detail`` 2 their blocks) and what the memory estimates need of each stage."""
    rows, stage_sizes = [], []
    for g in groups:
        # a stage's output is its last block's (a DenseNet's dense layer returns its input and its new maps)
        out = g.block_shapes[list(g.blocks)[-1]][1] if g.blocks else (g.leaves[-1].out_shape if g.leaves else ())
        macs = sum(leaf.macs for leaf in g.leaves)
        rows.append(Row(g.name, g.kind, 1, out, g.params, macs, macs / total_macs,
                        f"{len(g.blocks)} blocks" if g.blocks else ""))
        if detail >= 2:
            rows += [_block_row(g, block, total_macs) for block in g.blocks]
        activations = counted_elements((leaf.kind, leaf.output_elements) for leaf in g.leaves)
        stage_sizes.append(StageSize(g.name, g.params, activations))
    return rows, stage_sizes


def _overrides(spec: Any) -> dict[str, Any]:
    from ..registry import spec_overrides

    return spec_overrides(spec)


def _depth(leaves: list[_Leaf]) -> int:
    """Weighted layers off the shortcuts (convs and linear layers): the papers' depth of a ResNet."""
    def on_shortcut(name: str) -> bool:
        return ".downsample." in name or ".shortcut" in name or name.endswith(".gate")

    return sum(1 for leaf in leaves if leaf.kind in ("conv", "linear") and not on_shortcut(leaf.name))


def _block_row(g: _Group, block: str, total_macs: int) -> Row:
    leaves = g.blocks[block]
    macs = sum(leaf.macs for leaf in leaves)
    shape_in, shape_out = g.block_shapes.get(block, ((), ()))
    # the shortcut's modules: torchvision's ``downsample`` (a conv, or option A's zero-padding), the Keras ports'
    # ``shortcut_conv``; a block that keeps its shape but projects its shortcut anyway is a projection block too
    projections = (block + ".downsample", block + ".shortcut")
    projects = any(leaf.name.startswith(projections) for leaf in leaves)
    change = shape_change(shape_in, shape_out, projects) if shape_in else ("projection" if projects else None)
    return Row(block, "block", 2, shape_out, g.block_params.get(block, 0), macs, macs / total_macs, change or "")


def _trace(module: Any, x: Any) -> tuple[list[_Leaf], dict[str, tuple[tuple[int, ...], tuple[int, ...]]]]:
    """Leaves in forward order, and (input shape, output shape) per image of every container called."""
    import torch

    leaves: list[_Leaf] = []
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def per_image(t: Any) -> tuple[int, ...]:
        shape = tuple(t.shape[1:]) if isinstance(t, torch.Tensor) else ()
        return shape + (1, 1) if len(shape) == 1 else shape  # a logit vector as params shows it: 1000x1x1

    def hook(name: str, leaf: bool):
        def record(mod: Any, inputs: Any, output: Any) -> None:
            if not leaf:
                shapes.setdefault(name, (per_image(inputs[0]) if inputs else (), per_image(output)))
                return
            kind, macs = _charge(mod, output)
            leaves.append(_Leaf(name, kind, per_image(output), macs, math.prod(output.shape[1:])))
        return record

    handles = [m.register_forward_hook(hook(n, not any(True for _ in m.children())))
               for n, m in module.named_modules() if n]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(x.to(next(module.parameters()).device) if any(True for _ in module.parameters()) else x)
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    return leaves, shapes


def _charge(mod: Any, output: Any) -> tuple[str, int]:
    import torch.nn as nn

    per_image = math.prod(output.shape[1:])
    if isinstance(mod, nn.modules.conv._ConvNd):
        return "conv", per_image * (mod.in_channels // mod.groups) * math.prod(mod.kernel_size)
    if isinstance(mod, nn.Linear):
        return "linear", per_image * mod.in_features
    if isinstance(mod, nn.modules.batchnorm._NormBase):
        return "bn", 0
    return "other", 0


def _spine(module: Any) -> tuple[str, Any]:
    """The container whose children are the stages: the module itself, or its one container child (a
    DenseNet's ``features``)."""
    containers = [(n, m) for n, m in module.named_children() if any(True for _ in m.children())]
    if len(containers) == 1 and sum(1 for _ in containers[0][1].children()) > 2:
        return containers[0][0] + ".", containers[0][1]
    return "", module


def _group(module: Any, leaves: list[_Leaf], shapes: dict[str, Any]) -> list[_Group]:
    prefix, spine = _spine(module)
    stage_names = [prefix + n for n, m in spine.named_children() if any(True for _ in m.children())]
    first = 0
    groups: dict[str, _Group] = {}

    def group_of(name: str) -> tuple[_Group, str | None]:
        nonlocal first
        stage = next((s for s in stage_names if name == s or name.startswith(s + ".")), None)
        if stage is None:
            key = "head" if first else "stem"
            return groups.setdefault(key, _Group(key, key)), None
        first = 1
        short = stage[len(prefix):]
        g = groups.setdefault(stage, _Group(short, short))
        rest = name[len(stage) + 1:]
        block = stage + "." + rest.split(".")[0] if "." in rest else None
        return g, block

    for leaf in leaves:
        g, block = group_of(leaf.name)
        g.leaves.append(leaf)
        if block is not None:
            g.kind = "stage"
            g.blocks.setdefault(block, []).append(leaf)
            g.block_shapes[block] = shapes.get(block, ((), ()))
    for pname, p in module.named_parameters():
        owner = pname.rsplit(".", 1)[0]
        g, block = _owner_group(groups, owner, stage_names)
        g.params += p.numel()
        if block is not None:
            g.block_params[block] = g.block_params.get(block, 0) + p.numel()
    return list(groups.values())


def _owner_group(groups: dict[str, _Group], owner: str, stage_names: list[str]) -> tuple[_Group, str | None]:
    stage = next((s for s in stage_names if owner == s or owner.startswith(s + ".")), None)
    if stage is not None:
        rest = owner[len(stage) + 1:]
        block = stage + "." + rest.split(".")[0] if rest else None
        g = groups[stage]
        return g, block if block in g.blocks else None
    # a leaf outside the stages: the group its forward call fell in (stem before the stages, head after)
    for g in groups.values():
        if g.name in ("stem", "head") and any(leaf.name == owner for leaf in g.leaves):
            return g, None
    return groups.get("head") or next(iter(groups.values())), None
