"""The ``resnet`` and ``highway`` families: their spec checks and analytic plan (models/resnet.py builds the same
layers with the same names; the helpers here are shared with it, so the two cannot disagree on which layers
exist)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..families import Family, Shapes, StateDictKeys, layer_depth
from ..spec import GATED_MODES, ArchSpec, check_stage_lengths
from .layers import LayerCount, Shape, bn, conv, global_pool, linear, pool
from .model import ModelPlan, UnitPlan

BLOCKS = ("basic", "bottleneck")
ConvArgs = tuple[int, int, int, int, int]  # in channels, out channels, kernel, stride, groups


@dataclass(frozen=True)
class Placement:
    """Where one placement puts BN and ReLU around a unit's convs (He et al. 2016, "Identity Mappings", Fig. 4):
    the steps of each conv but the last (``conv``, its ``bn``, ``relu``), of the last one, and what follows the
    addition (the last conv's BN where it moves there). The plan, the built blocks and the drawing read it here."""

    letter: str  # the panel of Fig. 4
    caption: str  # the figure's caption
    unit: tuple[str, ...]
    last: tuple[str, ...]
    after_add: tuple[str, ...] = ()

    @property
    def bn_before_conv(self) -> bool:
        """Each BN normalises its conv's input (full pre-activation), so it is as wide as that input; a projection
        shortcut reads the pre-activated input and has no BN of its own, and as no block normalises its sum, the
        head starts with BN-ReLU."""
        return self.unit.index("bn") < self.unit.index("conv")

    @property
    def preactivates(self) -> bool:
        """Something runs before the first conv: the pre-activation the shortcut may share."""
        return self.unit[0] != "conv"

    @property
    def bn_after_add(self) -> bool:
        return "bn" in self.after_add

    def steps(self, convs: int) -> tuple[list[str], list[str]]:
        """The steps of a unit of ``convs`` convolutions before and after the addition, numbered: ``conv1``,
        ``bn1``, ``relu``, ..., and what follows the addition (``bn<convs>``, ``relu``)."""
        def numbered(steps: tuple[str, ...], i: int) -> list[str]:
            return [step if step == "relu" else f"{step}{i}" for step in steps]

        before = [s for i in range(1, convs + 1) for s in numbered(self.unit if i < convs else self.last, i)]
        return before, numbered(self.after_add, convs)


# He et al. 2016, Fig. 4 (a)-(e), in spec.PLACEMENTS order.
PLACEMENT_TABLE = {
    "original": Placement("a", "original", ("conv", "bn", "relu"), ("conv", "bn"), ("relu",)),
    "bn_after_add": Placement("b", "BN after addition", ("conv", "bn", "relu"), ("conv",), ("bn", "relu")),
    "relu_before_add": Placement("c", "ReLU before addition", ("conv", "bn", "relu"), ("conv", "bn", "relu")),
    "relu_preact": Placement("d", "ReLU-only pre-activation", ("relu", "conv", "bn"), ("relu", "conv", "bn")),
    "full_preact": Placement("e", "full pre-activation", ("bn", "relu", "conv"), ("bn", "relu", "conv")),
}


def bottleneck_width(spec: ArchSpec, planes: int) -> int:
    """Channels of a bottleneck's grouped 3x3 conv (torchvision: ``int(planes * base_width / 64) * groups``)."""
    return int(planes * (spec.width_per_group / 64.0)) * spec.groups


def block_convs(spec: ArchSpec, in_channels: int, planes: int, stride: int) -> list[ConvArgs]:
    """The branch's convolutions in order: basic = 3x3, 3x3; bottleneck = 1x1, 3x3 (groups), 1x1, the stride in the
    3x3 or (``stride_in_1x1``) in the first 1x1."""
    if spec.block == "bottleneck":
        width, out = bottleneck_width(spec, planes), planes * 4
        s1, s3 = (stride, 1) if spec.stride_in_1x1 else (1, stride)
        return [(in_channels, width, 1, s1, 1), (width, width, 3, s3, spec.groups), (width, out, 1, 1, 1)]
    return [(in_channels, planes, 3, stride, 1), (planes, planes, 3, 1, 1)]


def se_width(spec: ArchSpec, channels: int) -> int:
    """Hidden width of a squeeze-and-excitation module on ``channels``: C / r rounded to a multiple of
    ``se_divisor``, at least one multiple (timm's ``make_divisible(C / r, divisor, round_limit=0)``)."""
    d = spec.se_divisor
    return max(d, int(channels / spec.se_reduction + d / 2) // d * d)


def se_plan(spec: ArchSpec, name: str, shape: Shape) -> list[LayerCount]:
    """Squeeze (global average pool), excite (1x1 conv to C/r, ReLU, 1x1 conv back, sigmoid; both with bias),
    scale the branch's maps channel by channel (Hu et al. 2018, Fig. 3; timm's ``se.fc1``/``se.fc2``)."""
    squeezed = global_pool(f"{name}.se.pool", shape)
    fc1 = conv(f"{name}.se.fc1", squeezed.out_shape, se_width(spec, shape[0]), 1, padding=0, bias=True)
    fc2 = conv(f"{name}.se.fc2", fc1.out_shape, shape[0], 1, padding=0, bias=True)
    return [squeezed, fc1, fc2, LayerCount(f"{name}.se.scale", "scale", 0, 0, shape, "x * sigmoid(excitation)")]


def needs_projection(spec: ArchSpec, changes_shape: bool) -> bool:
    """A 1x1 conv on the shortcut: option C or the ``conv`` shortcut variant everywhere, option B where the
    shape changes."""
    return spec.shortcut == "C" or spec.shortcut_mode == "conv" or (spec.shortcut == "B" and changes_shape)


def shares_preactivation(spec: ArchSpec, changes_shape: bool, first: bool) -> bool:
    """Whether the shortcut takes the pre-activated input (pre-activation placements, on blocks that change
    shape and on the net's first block). Changes what is computed, not what is counted."""
    return spec.residual and PLACEMENT_TABLE[spec.placement].preactivates and (changes_shape or first)


def stem_has_norm(spec: ArchSpec) -> bool:
    """Whether the stem ends in BN-ReLU (``spec.stem_norm``; by default all but a CIFAR pre-activation stem)."""
    if spec.stem_norm is not None:
        return spec.stem_norm
    return not (spec.stem == "cifar" and spec.placement == "full_preact")


def first_block_preacts(spec: ArchSpec) -> bool:
    """Under full pre-activation, the first block has its own BN-ReLU only where the stem has none (He et al.'s
    CIFAR code, timm's resnetv2); after a stem that ends in BN-ReLU it has none (fb.resnet.torch's 'no_preact')."""
    return not stem_has_norm(spec)


def has_bn(spec: ArchSpec, index: int, first: bool) -> bool:
    """Whether a block has ``bn<index>``: every one does, but under full pre-activation the net's first block
    lacks ``bn1`` where the stem's BN-ReLU already pre-activates it (``first_block_preacts``)."""
    bn_before_conv = PLACEMENT_TABLE[spec.placement].bn_before_conv
    return not (bn_before_conv and index == 1 and first and not first_block_preacts(spec))


def deep_stem_convs(spec: ArchSpec) -> list[tuple[str, int, int]]:
    """(name, out channels, stride) of ResNet-D's stem convs, as timm names them inside ``conv1`` (its BNs are
    conv1.1 and conv1.4, its ReLUs conv1.2 and conv1.5)."""
    half = spec.stem_width // 2
    return [("conv1.0", half, 2), ("conv1.3", half, 1), ("conv1.6", spec.stem_width, 1)]


def stem_plan(spec: ArchSpec, names: tuple[str, str, str] = ("conv1", "bn1", "maxpool"),
              norm: bool | None = None) -> UnitPlan:
    """The stem: ImageNet's 7x7/2 conv, ResNet-D's three 3x3 convs or CIFAR's 3x3 conv; then BN(-ReLU) where
    ``norm`` (default ``stem_has_norm``), and a 3x3/2 max-pool unless CIFAR. ``names`` are the modules' names
    (a DenseNet's are features.conv0, features.norm0, features.pool0)."""
    conv_name, bn_name, pool_name = names
    shape: Shape = (spec.in_channels, *spec.input_hw)
    unit = UnitPlan("stem", "stem", shape)
    if spec.stem == "deep":
        for i, (name, width, stride) in enumerate(deep_stem_convs(spec)):
            shape = unit.add("stem", conv(name, shape, width, 3, stride)).out_shape
            if i < 2:
                unit.add("stem", bn(f"conv1.{3 * i + 1}", shape))
    elif spec.stem == "imagenet":
        shape = unit.add("stem", conv(conv_name, shape, spec.stem_width, 7, stride=2, padding=3)).out_shape
    else:
        shape = unit.add("stem", conv(conv_name, shape, spec.stem_width, 3)).out_shape
    if stem_has_norm(spec) if norm is None else norm:
        unit.add("stem", bn(bn_name, shape))
    if spec.stem != "cifar":
        unit.add("stem", pool(pool_name, shape, 3, 2, 1))
    return unit


def block_plan(spec: ArchSpec, name: str, stage: str, shape: Shape, planes: int, stride: int,
               first: bool = False) -> UnitPlan:
    """One basic or bottleneck block: its branch, then its shortcut and gate (if they have layers).

    Where the shortcut shares the pre-activation (``shares_preactivation``), the first BN feeds both ways and stays
    when the branch is deleted: the plan gives it the shortcut's role."""
    out_channels = planes * spec.expansion
    changes_shape = stride != 1 or shape[0] != out_channels
    unit = UnitPlan(name, stage, shape, is_block=True, downsample=changes_shape)
    shared = shares_preactivation(spec, changes_shape, first)
    placement = PLACEMENT_TABLE[spec.placement]
    current = shape
    convs = block_convs(spec, shape[0], planes, stride)
    for i, (_cin, cout, kernel, s, groups) in enumerate(convs, start=1):
        if placement.bn_before_conv and has_bn(spec, i, first):
            unit.add("shortcut" if shared and i == 1 else "branch", bn(f"{name}.bn{i}", current))
        c = unit.add("branch", conv(f"{name}.conv{i}", current, cout, kernel, s, groups=groups))
        if not placement.bn_before_conv:
            after_add = placement.bn_after_add and spec.residual and i == len(convs)
            unit.add("merge" if after_add else "branch", bn(f"{name}.bn{i}", c.out_shape))
        current = c.out_shape
    if spec.se_reduction:
        unit.add("branch", *se_plan(spec, name, current))
    unit.add("shortcut", *shortcut_plan(spec, name, shape, current, stride, changes_shape))
    if spec.residual and spec.shortcut_mode in GATED_MODES:  # g = sigmoid(1x1 conv(x) + b_g), one per channel
        unit.add("gate", conv(f"{name}.gate", shape, out_channels, 1, stride, padding=0, bias=True))
    return unit  # every shortcut and gate layer outputs the block's shape, so out_shape stays right


def shortcut_plan(spec: ArchSpec, name: str, shape: Shape, out_shape: Shape, stride: int,
                  changes_shape: bool) -> list[LayerCount]:
    if not spec.residual:
        return []
    if needs_projection(spec, changes_shape):
        out: list[LayerCount] = []
        if spec.avg_down:  # 2x2 average pool (ceil mode: the same size as a strided conv's), then a 1x1/1 conv
            if stride != 1:
                out.append(LayerCount(f"{name}.downsample.0", "pool", 0, 0, (shape[0], *out_shape[1:]),
                                      "2x2/2 average", kernel=2, stride=2))
            proj = conv(f"{name}.downsample.1", out[-1].out_shape if out else shape, out_shape[0], 1, 1, padding=0)
        else:
            proj = conv(f"{name}.downsample.0", shape, out_shape[0], 1, stride, padding=0)
        out.append(proj)
        if not PLACEMENT_TABLE[spec.placement].bn_before_conv:
            out.append(bn(f"{name}.downsample.{2 if spec.avg_down else 1}", proj.out_shape))
        return out
    if changes_shape:  # option A: subsample and zero-pad channels, no parameters
        return [LayerCount(f"{name}.downsample", "shortcut", 0, 0, out_shape, "zero-pad (option A)", stride=stride)]
    return []


def head_plan(spec: ArchSpec, shape: Shape) -> UnitPlan:
    unit = UnitPlan("head", "head", shape)
    if PLACEMENT_TABLE[spec.placement].bn_before_conv:
        unit.add("head", bn("head_bn", shape))
    unit.add("head", global_pool("avgpool", shape), linear("fc", shape[0], spec.num_classes))
    return unit


def plan_resnet(spec: ArchSpec) -> ModelPlan:
    units = [stem_plan(spec)]
    shape = units[0].out_shape
    for i, (n_blocks, planes, stride) in enumerate(zip(spec.layers, spec.widths, spec.strides)):
        stage = f"layer{i + 1}"
        for j in range(n_blocks):
            if j >= 2:
                # The same block as the one before (same input shape, stride 1, not the net's first) under the next
                # name: copied, not planned again (resnet1202's 600 blocks are 6 kinds; ``archs`` plans every net).
                unit = units[-1].renamed(f"{stage}.{j}")
            else:
                unit = block_plan(spec, f"{stage}.{j}", stage, shape, planes, stride if j == 0 else 1,
                                  first=len(units) == 1)
            units.append(unit)
            shape = unit.out_shape
    units.append(head_plan(spec, shape))
    return ModelPlan(spec, units, units[-1].out_shape)


# --------------------------------------------------------------------------- the family entries
def check_resnet(spec: ArchSpec) -> None:
    check_stage_lengths(spec)
    if spec.stride_in_1x1 and spec.block != "bottleneck":
        raise SpecError("stride_in_1x1 moves a bottleneck's stride; a basic block strides in its first 3x3 anyway")
    if spec.stem_norm is False and spec.placement != "full_preact":
        raise SpecError("a stem without BN-ReLU needs full_preact blocks (the first block normalises instead)")
    if spec.stem == "deep" and spec.stem_width % 2:
        raise SpecError(f"a deep stem's first convs are stem_width / 2 wide: stem_width must be even, "
                        f"not {spec.stem_width}")
    if spec.se_reduction < 0 or spec.se_divisor < 1:
        raise SpecError("se_reduction must be at least 0 (0 = no squeeze-and-excitation) and se_divisor at least 1")
    if spec.block != "bottleneck" and (spec.groups != 1 or spec.width_per_group != 64):
        raise SpecError(f"{spec.block} blocks support only groups=1 and width_per_group=64 (use bottleneck)")


def check_highway(spec: ArchSpec) -> None:
    if not spec.residual:
        raise SpecError("a highway net is its gated shortcuts; without them (residual=false) it is a plain net: "
                        "use cifar_plain<depth>")
    if spec.shortcut_mode != "exclusive_gating":
        raise SpecError("a highway net gates every block (shortcut_mode exclusive_gating): it is its definition")
    check_resnet(spec)


def resnet_depth(spec: ArchSpec) -> int:
    """He et al.'s count; CIFAR Wide ResNets count as Zagoruyko & Komodakis 2016 do, so that ``wrn28_10`` has
    depth 28: 6n convs in blocks + conv1 + the three 1x1 shortcut convs = 6n + 4 (the fc is not counted).

    Their count needs their shortcuts: a net widened from the stem with 1x1 projections where the shape changes
    (option B, a projection into every stage). ``cifar_resnet56:widths=32,64,128`` keeps option A's parameter-free
    shortcuts, so it stays a 56-layer ResNet with wider layers, as its name says."""
    if spec.stem == "cifar" and spec.shortcut == "B" and "Wide ResNet" in resnet_kind(spec):
        return 2 * spec.num_blocks + 4
    return layer_depth(spec)


def resnet_kind(spec: ArchSpec) -> str:
    if not spec.residual:
        label = "plain"
    elif spec.groups > 1:
        label = "ResNeXt"
    elif spec.width_per_group > 64 or (spec.block == "basic" and spec.widths[0] > spec.stem_width):
        label = "Wide ResNet"
    else:
        label = "ResNet"
    if spec.stem == "deep" or spec.avg_down:
        label += "-D"
    if spec.stride_in_1x1 and spec.placement == "original":
        label += " v1"
    if spec.se_reduction:
        label = f"SE-{label}"
    if spec.placement == "full_preact":
        label = f"pre-act {label}"
    elif spec.placement != "original":
        label += f", {spec.placement}"
    if spec.shortcut_mode != "identity":
        label += f", {spec.shortcut_mode} shortcut"
    return label


def stage_blocks(shapes: Shapes) -> tuple[int, ...]:
    """Blocks per stage in a torchvision-layout state dict: layer1.0, layer1.1, ... -> (2, ...)."""
    import re

    counts: dict[int, set[int]] = {}
    for key in shapes:
        m = re.match(r"layer(\d+)\.(\d+)\.", key)
        if m:
            counts.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    return tuple(len(counts[s]) for s in sorted(counts))


def layers_could_fit(spec: ArchSpec, shapes: Shapes) -> bool:
    """The stem's kernel (7 for ImageNet's, 3 for CIFAR's) and the blocks per stage (``layerN.M`` keys)."""
    kernel = {"imagenet": 7, "cifar": 3}.get(spec.stem)
    if kernel and "conv1.weight" in shapes and shapes["conv1.weight"][-1] != kernel:
        return False
    return stage_blocks(shapes) == tuple(spec.layers)


def cifar_depth_names(shapes: Shapes) -> tuple[str, ...]:
    """He et al.'s CIFAR nets are parametric: three stages of n blocks are 6n+2 layers, residual or plain."""
    blocks = stage_blocks(shapes)
    if blocks and len(blocks) == 3:
        depth = 6 * blocks[0] + 2
        return f"cifar_resnet{depth}", f"cifar_plain{depth}"
    return ()


RESNET_FIELDS = ("placement", "shortcut_mode", "se_reduction", "se_divisor", "stride_in_1x1", "avg_down",
                 "stem_norm")
FAMILIES = (
    Family("resnet", BLOCKS, plan_resnet, builder="resnet_cli.models.resnet:ResNet", zoo="resnet_cli.zoo.resnets",
           kind=resnet_kind, check=check_resnet, depth=resnet_depth, fields=RESNET_FIELDS,
           state_dicts=StateDictKeys(could_fit=layers_could_fit, parametric_names=cifar_depth_names)),
    # Srivastava et al. 2015: the resnet builder with a gate on every shortcut
    Family("highway", BLOCKS, plan_resnet, builder="resnet_cli.models.resnet:ResNet", zoo="resnet_cli.zoo.resnets",
           kind=lambda spec: "highway", check=check_highway, fields=RESNET_FIELDS,
           state_dicts=StateDictKeys(could_fit=layers_could_fit)),
)
