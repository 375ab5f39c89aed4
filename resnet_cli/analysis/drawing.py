"""What ``resnet-cli draw`` draws, as plain data: columns of boxes, shortcut edges and labels, read off the plan.

He et al. 2015 explain ResNet with pictures: Figure 3 (VGG-19, a 34-layer plain net and ResNet-34 side by side,
one box per layer labelled "3×3 conv, 64", "/2" where the stride halves the map, identity shortcuts solid,
projections dotted, the output size beside each stage) and Figure 5 (a basic block beside a bottleneck); He et al.
2016 ("Identity Mappings") Figure 4 shows the five placements of BN and ReLU. ``network_drawing`` and
``block_drawing`` return that content; ``render/draw.py`` only lays it out. Nothing here imports torch or
matplotlib: every box is a layer of the analytic plan (``plan_model``), so the tests check the drawing against
the plan and the plan is checked against the built module elsewhere.

What a box is:

- a network column has one box per convolution, pooling and fully connected layer on the main path (the stem,
  the blocks' branches, DenseNet transitions, the head), as the paper's Figure 3 has; batch norm and ReLU are
  left out, as there. A squeeze-and-excitation module (Hu et al. 2018) is one box, labelled as their Table 1
  labels it ("SE: fc, [16, 256]"). Each block's shortcut is an edge, from the block's input to its output:
  ``identity`` (solid), ``projection`` (a 1×1 conv: dotted, the paper's "dotted shortcuts increase dimensions"),
  ``zero_pad`` (option A: dashed, also a change of dimensions, without weights) or ``concat`` (a DenseNet
  layer's input concatenated with its new maps);
- a block column (Figure 5, Figure 4 of the identity-mappings paper) also has the BN, ReLU and addition steps in
  the placement's order, and each convolution's weights.

Folding: a run of identical blocks (same boxes, same shortcut) in one stage is drawn once with "× n" beside it,
as He et al.'s Table 1 writes ResNet-152's 36 blocks of conv4; by default only a column that would otherwise have
more than ``FOLD_ABOVE`` boxes is folded (ResNet-34's 36 boxes are drawn whole, as in the paper).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..plan import plan_model
from ..plan.layers import LayerCount
from ..plan.model import UnitPlan
from ..plan.resnet import PLACEMENT_TABLE
from ..registry import spec_label, spec_overrides
from ..spec import ArchSpec

# A column with more boxes than this is folded unless the user says otherwise (ResNet-50 has 53, ResNet-101 104).
FOLD_ABOVE = 60

# How each kind of shortcut is drawn: a change of dimensions is dotted (projection) or dashed (zero-padding).
EDGE_STYLES = {"identity": "solid", "projection": "dotted", "zero_pad": "dashed", "concat": "solid"}


@dataclass(frozen=True)
class Box:
    label: str  # "3×3 conv, 128, /2"
    kind: str  # input | conv | pool | fc | se | bn | relu | add
    layers: tuple[str, ...] = ()  # the plan's layers it stands for (every repeat's, when folded)
    size: tuple[int, int] = (0, 0)  # output height, width (0, 0 for a fully connected layer's output)
    channels: int = 0
    stride: int = 1
    block: str = ""  # the block it belongs to ("" outside blocks); the first of a folded run
    weights: int = 0  # parameters of the layer (once, not times ``times``)
    times: int = 1  # drawn once for this many identical blocks
    # The output size of the block the box is in (its own outside blocks): columns are aligned stage by stage on
    # it, so that a block whose first 1×1 still sees the larger map (torchvision's bottleneck) is not split.
    block_size: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Edge:
    """A shortcut: leaves after box ``source`` (the block's input) and joins after box ``target`` (the block's
    last box; in a block column, the addition box itself)."""

    source: int
    target: int
    kind: str  # identity | projection | zero_pad | concat
    label: str = ""  # what is drawn beside it: the shortcut variant ("gate", "×0.5", "dropout 0.5")
    detail: str = ""  # what the shortcut computes ("1×1 conv, 128, /2"; "zero-pad, /2")
    layers: tuple[str, ...] = ()  # the plan's shortcut and gate layers (every repeat's, when folded)
    block: str = ""
    times: int = 1

    @property
    def style(self) -> str:
        return EDGE_STYLES[self.kind]


@dataclass(frozen=True)
class Fold:
    """Boxes ``first``..``last`` (one block) stand for ``times`` identical blocks: ``blocks``."""

    first: int
    last: int
    times: int
    blocks: tuple[str, ...]


@dataclass(frozen=True)
class SizeSpan:
    """Boxes ``first``..``last`` output maps of ``size`` (height, width): "112", "56", ... beside a stage."""

    first: int
    last: int
    size: tuple[int, int]

    @property
    def label(self) -> str:
        h, w = self.size
        return f"{h}" if h == w else f"{h}×{w}"


@dataclass
class Column:
    kind: str  # network | block
    title: str  # what was built: the arch name with its overrides ("resnet34"), or "basic, 256-d"
    subtitle: str  # "34-layer ResNet", "original"
    boxes: list[Box]
    edges: list[Edge] = field(default_factory=list)
    folds: list[Fold] = field(default_factory=list)
    sizes: list[SizeSpan] = field(default_factory=list)
    params: int = 0  # of the network (a network column) or of the block's convolutions (a block column)
    macs: int = 0
    arch: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        """Boxes of ``kind`` drawn (a folded box counts once)."""
        return sum(1 for box in self.boxes if box.kind == kind)


@dataclass
class Drawing:
    columns: list[Column]
    output: str = ""  # the file it was drawn to

    def to_dict(self) -> dict[str, Any]:
        out = []
        for column in self.columns:
            d = asdict(column)
            for edge, data in zip(column.edges, d["edges"]):
                data["style"] = edge.style
            for span, data in zip(column.sizes, d["sizes"]):
                data["label"] = span.label
            out.append(d)
        return {"output": self.output, "columns": out}


# --------------------------------------------------------------------------- labels, as the papers write them
def conv_label(layer: LayerCount, *, with_conv: bool = True) -> str:
    """``3×3 conv, 128, /2``; a grouped conv with its cardinality, ``3×3 conv, 128, C=32`` (Xie et al. 2017)."""
    text = f"{layer.kernel}×{layer.kernel}{' conv' if with_conv else ''}, {layer.out_shape[0]}"
    if layer.groups > 1:
        text += f", C={layer.groups}"
    return text + (f", /{layer.stride}" if layer.stride > 1 else "")


def pool_label(layer: LayerCount) -> str:
    """The paper's ``pool, /2`` (max pooling), ``avg pool, /2``, and ``avg pool`` for the global average."""
    if layer.detail == "global average":
        return "avg pool"
    average = layer.detail.endswith("average")  # plan/layers.py's pool(average=True), avg_down's pool
    return ("avg pool" if average else "pool") + (f", /{layer.stride}" if layer.stride > 1 else "")


def _size(layer: LayerCount) -> tuple[int, int]:
    return (0, 0) if layer.kind == "linear" else (layer.out_shape[1], layer.out_shape[2])


def layer_box(layer: LayerCount) -> Box | None:
    """The box of one main-path layer, or None for what Figure 3 leaves out (batch norm, flatten)."""
    if layer.kind == "conv":
        label = conv_label(layer)
    elif layer.kind == "pool":
        label = pool_label(layer)
    elif layer.kind == "linear":
        label = f"fc {layer.out_shape[0]}"
    else:
        return None
    kind = {"linear": "fc"}.get(layer.kind, layer.kind)
    return Box(label, kind, (layer.name,), _size(layer), layer.out_shape[0], layer.stride, layer.block,
               layer.params, block_size=_size(layer))


def se_box(layers: list[LayerCount]) -> Box:
    """A squeeze-and-excitation module as one box, Hu et al.'s Table 1 label: ``SE: fc, [16, 256]``."""
    fcs = [layer for layer in layers if layer.kind == "conv"]
    widths = ", ".join(str(layer.out_shape[0]) for layer in fcs)
    out = layers[-1]
    return Box(f"SE: fc, [{widths}]", "se", tuple(layer.name for layer in layers), _size(out), out.out_shape[0], 1,
               out.block, sum(layer.params for layer in layers), block_size=_size(out))


def unit_boxes(unit: UnitPlan) -> list[Box]:
    """The main-path boxes of a unit (stem, block, transition or head), in forward order. A pool that leaves its
    map as it is (torchvision VGG's adaptive pool to 7×7, on the 7×7 map of a 224-pixel image) is not drawn:
    it computes nothing there, and the paper's VGG-19 has no such box."""
    out: list[Box] = []
    se: list[LayerCount] = []
    shape = unit.in_shape
    for layer in unit.layers:
        if layer.role in ("shortcut", "gate"):
            continue
        unchanged, shape = layer.out_shape == shape, layer.out_shape
        if layer.kind == "pool" and unchanged:
            continue
        if ".se." in layer.name:
            se.append(layer)
            if layer.kind == "scale":
                out.append(se_box(se))
                se = []
            continue
        box = layer_box(layer)
        if box is not None:
            out.append(box)
    if unit.is_block:
        size = (unit.out_shape[1], unit.out_shape[2])
        out = [replace(box, block_size=size) for box in out]
    return out


def shortcut_mode_label(spec: ArchSpec) -> str:
    """The identity-mappings paper's variants (its Fig. 2) beside the shortcut; nothing for plain identity."""
    mode = spec.shortcut_mode
    if mode == "scaling":
        return f"×{spec.shortcut_scale:g}"
    if mode in ("exclusive_gating", "shortcut_gating"):
        return "1−g"
    if mode == "dropout":
        return f"dropout {spec.shortcut_dropout:g}"
    return ""


def unit_shortcut(spec: ArchSpec, unit: UnitPlan) -> tuple[str, str, tuple[str, ...]] | None:
    """(kind, detail, plan layers) of a block's shortcut, or None where it has none (a plain net)."""
    layers = unit.role_layers("shortcut") + unit.role_layers("gate")
    names = tuple(layer.name for layer in layers)
    path = [layer for layer in unit.role_layers("shortcut") if layer.kind != "bn"]
    if any(layer.kind == "conv" for layer in path):
        detail = ", then ".join(pool_label(layer) if layer.kind == "pool" else conv_label(layer) for layer in path)
        return "projection", detail, names
    if any(layer.kind == "shortcut" for layer in path):  # option A: subsample and zero-pad the channels
        stride = max(layer.stride for layer in path)
        return "zero_pad", "zero-pad" + (f", /{stride}" if stride > 1 else ""), names
    if any(layer.kind == "concat" for layer in path):
        return "concat", path[0].detail, names
    if not spec.residual:
        return None
    return "identity", "identity", names


# --------------------------------------------------------------------------- a network: He et al.'s Figure 3
@dataclass
class _Piece:
    """One unit's boxes and shortcut before they are numbered; blocks of one stage with equal ``signature``
    fold together."""

    unit: UnitPlan
    boxes: list[Box]
    shortcut: tuple[str, str, tuple[str, ...]] | None

    @property
    def signature(self) -> tuple:
        shortcut = self.shortcut[:2] if self.shortcut else None
        return (self.unit.stage, tuple((b.label, b.kind, b.size) for b in self.boxes), shortcut)


def network_column(spec: ArchSpec, fold: bool | None = None) -> Column:
    """He et al.'s Figure 3 column for ``spec``: image, every main-path layer as a box, each block's shortcut as
    an edge, the output size beside each run of boxes. ``fold``: True folds runs of identical blocks into
    "× n", False never, None only beyond ``FOLD_ABOVE`` boxes."""
    plan = plan_model(spec)
    pieces = [_Piece(u, unit_boxes(u), unit_shortcut(spec, u) if u.is_block else None) for u in plan.units]
    if fold is None:
        fold = 1 + sum(len(p.boxes) for p in pieces) > FOLD_ABOVE
    runs: list[list[_Piece]] = []
    for piece in pieces:
        last = runs[-1][-1] if runs else None
        if fold and piece.unit.is_block and last is not None and last.unit.is_block \
                and piece.signature == last.signature:
            runs[-1].append(piece)
        else:
            runs.append([piece])
    input_hw = spec.input_hw
    boxes = [Box("image", "input", (), input_hw, spec.in_channels, block_size=input_hw)]
    edges: list[Edge] = []
    folds: list[Fold] = []
    label = shortcut_mode_label(spec)
    for run in runs:
        first, times = run[0], len(run)
        source = len(boxes) - 1
        for i, box in enumerate(first.boxes):
            layers = tuple(name for piece in run for name in piece.boxes[i].layers)
            boxes.append(replace(box, layers=layers, times=times))
        if first.shortcut is not None and first.boxes:
            kind, detail, _ = first.shortcut
            layers = tuple(name for piece in run for name in (piece.shortcut or ("", "", ()))[2])
            edges.append(Edge(source, len(boxes) - 1, kind, "" if kind == "concat" else label, detail, layers,
                              first.unit.name, times))
        if times > 1:
            folds.append(Fold(source + 1, len(boxes) - 1, times, tuple(p.unit.name for p in run)))
    return Column("network", spec_label(spec), network_subtitle(spec), boxes, edges, folds,
                  size_spans(boxes), plan.params, plan.macs, spec.name, spec_overrides(spec))


def network_subtitle(spec: ArchSpec) -> str:
    """``34-layer ResNet``; with what the boxes do not show: a DenseNet's growth rate (Huang et al. name their nets
    by it) and the spec's dropout rate (a Wide ResNet's between a block's convs, which Zagoruyko & Komodakis draw
    as a layer of the block)."""
    text = f"{spec.depth}-layer {spec.kind}"
    if spec.family == "densenet":
        text += f", k={spec.growth_rate}"
    if spec.dropout:
        text += f", dropout {spec.dropout:g}"
    return text


def size_spans(boxes: list[Box]) -> list[SizeSpan]:
    """Runs of consecutive boxes with one output size (fully connected layers, size (0, 0), get none; nor does the
    1×1 map after the global pool)."""
    spans: list[SizeSpan] = []
    for i, box in enumerate(boxes):
        if box.size in ((0, 0), (1, 1)) or box.kind == "input":
            continue
        if spans and spans[-1].size == box.size and spans[-1].last == i - 1:
            spans[-1] = SizeSpan(spans[-1].first, i, box.size)
        else:
            spans.append(SizeSpan(i, i, box.size))
    return spans


def network_drawing(specs: list[ArchSpec], fold: bool | None = None) -> Drawing:
    return Drawing([network_column(spec, fold) for spec in specs])


# --------------------------------------------------------------------------- one block: Fig. 5, and Fig. 4 of 2016
def block_column(block: str, channels: int, placement: str = "original", feature_size: int = 56,
                 lettered: bool = False) -> Column:
    """One shape-preserving block of ``channels`` in and out (He et al. 2015 Fig. 5) under ``placement`` (He et al.
    2016 Fig. 4): its convolutions (with their weights), BN, ReLU and the addition in order, the shortcut into
    the addition. ``lettered``: the placement with its letter in the paper's Figure 4, "(e) full pre-activation"."""
    from .counts import block_layers

    layers = {layer.name: layer for layer in block_layers(block, channels, feature_size, placement)}
    convs = sum(1 for layer in layers.values() if layer.kind == "conv")
    before, after = PLACEMENT_TABLE[placement].steps(convs)
    size = (feature_size, feature_size)
    boxes = [Box(f"{channels}-d", "input", (), size, channels)]
    for step in [*before, "add", *after]:
        if step == "relu":
            boxes.append(Box("ReLU", "relu", (), size, boxes[-1].channels))
        elif step == "add":
            boxes.append(Box("addition", "add", (), size, channels))
        else:
            layer = layers[step]
            if layer.kind == "conv":
                boxes.append(Box(conv_label(layer), "conv", (layer.name,), size, layer.out_shape[0], 1, "",
                                 layer.params))
            else:
                boxes.append(Box("BN", "bn", (layer.name,), size, layer.out_shape[0], 1, "", layer.params))
    add = next(i for i, box in enumerate(boxes) if box.kind == "add")
    weights = sum(box.weights for box in boxes if box.kind == "conv")
    figure = PLACEMENT_TABLE[placement]
    subtitle = f"({figure.letter}) {figure.caption}" if lettered else f"{figure.caption} placement"
    return Column("block", f"{block}, {channels}-d", subtitle, boxes,
                  [Edge(0, add, "identity", detail="identity")], params=weights,
                  macs=sum(layer.macs for layer in layers.values()))


def block_drawing(blocks: list[str], placements: list[str], channels: int = 256, feature_size: int = 56) -> Drawing:
    """Every block kind under every placement, side by side (blocks outer): ``basic, bottleneck`` at one placement
    is Figure 5; one block under the five placements is Figure 4 of the identity-mappings paper."""
    lettered = len(placements) > 1
    return Drawing([block_column(b, channels, p, feature_size, lettered) for b in blocks for p in placements])
