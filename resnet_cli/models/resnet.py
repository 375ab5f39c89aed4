"""The ``resnet`` and ``highway`` families: torchvision's BasicBlock/Bottleneck/ResNet, with the stem, the
shortcut, the BN/ReLU placement and the shortcut variant in the spec.

With the defaults (placement ``original``, shortcut_mode ``identity``) module names and shapes match torchvision
(``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``, ``fc``), so torchvision checkpoints load with
``strict=True``. plan/resnet.py counts the same layers under the same names.

Placements (He et al. 2016, "Identity Mappings in Deep Residual Networks", Fig. 4; ``PLACEMENT_TABLE`` in
plan/resnet.py says where each puts BN and ReLU), for convs c1..cn, one block class per placement and kind:

- ``original``         c1 bn relu ... cn bn, add, relu       BasicBlock, Bottleneck
- ``bn_after_add``     c1 bn relu ... cn, add, bn relu       BNAfterAddBasicBlock, BNAfterAddBottleneck
- ``relu_before_add``  c1 bn relu ... cn bn relu, add        ReLUBeforeAddBasicBlock, ReLUBeforeAddBottleneck
- ``relu_preact``      relu c1 bn ... relu cn bn, add        ReLUPreActBasicBlock, ReLUPreActBottleneck
- ``full_preact``      bn relu c1 ... bn relu cn, add        PreActBasicBlock, PreActBottleneck

The shortcut variant (the paper's Fig. 2) is built by ``make_shortcut``: the layers on the shortcut, the gate,
and how shortcut and branch add up. A highway net (Srivastava et al. 2015) is the ``relu_before_add`` unit with
exclusive gating: ``y = T(x) * H(x) + (1 - T(x)) * x`` with the transform gate ``T = sigmoid(1x1 conv(x) + b_T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..plan.resnet import (
    PLACEMENT_TABLE,
    block_convs,
    bottleneck_width,
    deep_stem_convs,
    has_bn,
    needs_projection,
    se_width,
    shares_preactivation,
    stem_has_norm,
)
from ..spec import GATED_MODES, ArchSpec
from .base import ResidualBlock, ResidualNetwork


class ZeroPadShortcut(nn.Module):
    """Option A shortcut (He et al. 2015 §4.2): subsample by the stride, zero-pad the new channels.

    A named module rather than akamaster's lambda, so the model pickles and prints what it does.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        if extra:
            x = F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_channels}->{self.out_channels}, stride={self.stride}"


def make_downsample(spec: ArchSpec, in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """The layers on a block's shortcut (None = identity), by the spec's option A/B/C and shortcut_mode.

    Where the placement normalises each conv's input (full pre-activation) the projection is a bare 1x1 conv (its
    input is already batch-normalised), as in He et al.'s pre-activation code and Zagoruyko & Komodakis' Wide
    ResNets; otherwise conv + BN (torchvision). With ``avg_down`` (ResNet-D) a 2x2 average pool comes first and
    the conv does not stride: ``downsample.0`` pool, ``.1`` conv, ``.2`` BN, timm's names.
    """
    changes_shape = stride != 1 or in_channels != out_channels
    if needs_projection(spec, changes_shape):
        layers: list[nn.Module] = []
        if spec.avg_down:  # ResNet-D, timm's downsample_avg: pool (or nothing at stride 1), then a 1x1/1 conv
            layers.append(nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride != 1
                          else nn.Identity())
            stride = 1
        layers.append(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False))
        if not PLACEMENT_TABLE[spec.placement].bn_before_conv:
            layers.append(nn.BatchNorm2d(out_channels))
        return nn.Sequential(*layers)
    if changes_shape:
        return ZeroPadShortcut(in_channels, out_channels, stride)
    return None


# --------------------------------------------------------------------------- shortcut variants (He et al. 2016 §3)
# How the shortcut h and the branch F add up, for a residual None where the branch is deleted (a lesion) or
# dropped (stochastic depth). Plain objects, not modules: they hold no weights (the gate's 1x1 conv is the
# block's ``gate``, where its checkpoint key is), so a network's summary and state dict do not change with them.
@dataclass(frozen=True)
class Addition:
    """y = h + F: the identity shortcut, and the ``conv`` variant's (its 1x1 conv is the block's downsample)."""

    def carry(self, identity: torch.Tensor, training: bool) -> torch.Tensor:
        """What the variant does to h(x) before the addition."""
        return identity

    def join(self, identity: torch.Tensor, residual: torch.Tensor | None,
             gate: torch.Tensor | None) -> torch.Tensor:
        return identity if residual is None else identity + residual


@dataclass(frozen=True)
class ConstantScaling(Addition):
    """y = lambda h + (1 - lambda) F."""

    scale: float

    def join(self, identity, residual, gate):
        identity = identity * self.scale
        return identity if residual is None else identity + residual * (1.0 - self.scale)


@dataclass(frozen=True)
class Gating(Addition):
    """y = (1 - g) h + g F (``exclusive``: the highway net's carry and transform gates) or y = (1 - g) h + F
    (shortcut-only gating), with g = sigmoid(gate(x)), the block's ``gate_of(x)``."""

    exclusive: bool

    def join(self, identity, residual, gate):
        if gate is None:
            raise ValueError("a gated shortcut needs its gate g = sigmoid(gate(x)): pass gate=block.gate_of(x)")
        if self.exclusive and residual is not None:
            residual = residual * gate
        return super().join(identity * (1.0 - gate), residual, gate)


@dataclass(frozen=True)
class ShortcutDropout(Addition):
    """y = dropout(h) + F (inverted dropout, in training only)."""

    rate: float

    def carry(self, identity, training):
        return F.dropout(identity, self.rate, training)


@dataclass
class Shortcut:
    """A block's shortcut, as ``make_shortcut`` builds it from the spec."""

    downsample: nn.Module | None  # the layers on h (None = identity)
    gate: nn.Conv2d | None  # the 1x1 conv of g = sigmoid(gate(x)) (None = ungated)
    variant: Addition


# spec.SHORTCUT_MODES -> the variant
SHORTCUT_VARIANTS = {
    "identity": lambda spec: Addition(),
    "scaling": lambda spec: ConstantScaling(spec.shortcut_scale),
    "exclusive_gating": lambda spec: Gating(exclusive=True),
    "shortcut_gating": lambda spec: Gating(exclusive=False),
    "conv": lambda spec: Addition(),  # a 1x1 conv on every shortcut: make_downsample's projection
    "dropout": lambda spec: ShortcutDropout(spec.shortcut_dropout),
}


def make_shortcut(spec: ArchSpec, in_channels: int, out_channels: int, stride: int) -> Shortcut:
    """A block's shortcut by the spec's option A/B/C and shortcut_mode; a plain net's blocks have none."""
    if not spec.residual:
        return Shortcut(None, None, Addition())
    downsample = make_downsample(spec, in_channels, out_channels, stride)
    gate = None
    if spec.shortcut_mode in GATED_MODES:  # g = sigmoid(1x1 conv(x) + b_g), one per channel
        gate = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=True)
        nn.init.constant_(gate.bias, spec.gate_bias)  # b_g (He et al. 2016 Table 1), b_T for a highway net
    return Shortcut(downsample, gate, SHORTCUT_VARIANTS[spec.shortcut_mode](spec))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): x * sigmoid(fc2(relu(fc1(mean of x over the map)))), fc1/fc2 1x1
    convs with bias, as timm's ``SEModule`` (so timm's ``layerN.M.se.fc1``/``se.fc2`` keys load)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


# --------------------------------------------------------------------------- the blocks
class ResNetBlock(ResidualBlock):
    """What the blocks of every placement share: ``conv1..convN`` with their BNs, SE, the shortcut, and the split
    into shortcut and branch that forward, skip and routed run.

    A subclass writes out one placement for one block kind: ``preactivate`` (what runs before the split:
    nothing, ReLU, or BN-ReLU), ``residual`` (the rest of the branch, SE included) and ``after_addition``. Where
    the placement pre-activates, a block that changes shape (and the net's first block) applies the
    pre-activation before splitting into shortcut and branch (He et al. 2016 §4.1, footnote; their code's
    'both_preact'); other blocks keep the raw x on the shortcut.

    ``branch(x)`` is F(x), ``shortcut(x)`` is h(x), ``gate_of(x)`` is g; ``forward(x) == merge(h, F, g)``.
    ``skip(x)`` deletes F and keeps everything else: the shortcut, its gate or scale, and what follows the
    addition.
    """

    placement: str  # its key in PLACEMENT_TABLE, set by each subclass
    kind = "basic"

    def __init__(self, spec: ArchSpec, in_channels: int, planes: int, stride: int, first: bool = False) -> None:
        super().__init__(in_channels, planes * spec.expansion, stride)
        self.has_shortcut = spec.residual
        self.mode = spec.shortcut_mode if spec.residual else "identity"
        self.drop = spec.dropout
        bn_before_conv = PLACEMENT_TABLE[spec.placement].bn_before_conv
        # Registered in forward order (a BN before its conv where it normalises the conv's input), as the state
        # dict has always listed the keys.
        for i, (cin, cout, kernel, s, groups) in enumerate(block_convs(spec, in_channels, planes, stride), start=1):
            if bn_before_conv and has_bn(spec, i, first):
                self.add_module(f"bn{i}", nn.BatchNorm2d(cin))
            self.add_module(f"conv{i}", nn.Conv2d(cin, cout, kernel, stride=s, padding=kernel // 2, groups=groups,
                                                  bias=False))
            if not bn_before_conv:
                self.add_module(f"bn{i}", nn.BatchNorm2d(cout))
        # the end of the branch, before the addition (timm: after bn3)
        self.se = SqueezeExcite(self.out_channels, se_width(spec, self.out_channels)) if spec.se_reduction else None
        self.shares_preact = shares_preactivation(spec, self.changes_shape, first)
        shortcut = make_shortcut(spec, in_channels, self.out_channels, stride)
        self.downsample, self.gate, self.variant = shortcut.downsample, shortcut.gate, shortcut.variant

    # ------------------------------------------------------------------ what each placement writes out
    def preactivate(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The branch after the pre-activation."""
        raise NotImplementedError

    def after_addition(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def dropout(self, x: torch.Tensor) -> torch.Tensor:
        """Wide ResNets' dropout between the convolutions (before the last one)."""
        return F.dropout(x, self.drop, self.training) if self.drop > 0 else x

    def excite(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.se is None else self.se(x)

    # ------------------------------------------------------------------ the pieces
    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(self.preactivate(x))

    def _shortcut_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.preactivate(x) if self.shares_preact else x

    def _carry(self, s: torch.Tensor) -> torch.Tensor:
        return self.variant.carry(s if self.downsample is None else self.downsample(s), self.training)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return self._carry(self._shortcut_input(x))

    def gate_of(self, x: torch.Tensor) -> torch.Tensor | None:
        """The gate g of a gated shortcut for the block input ``x`` (None for ungated variants)."""
        return None if self.gate is None else torch.sigmoid(self.gate(self._shortcut_input(x)))

    def merge(self, identity: torch.Tensor, residual: torch.Tensor | None,
              gate: torch.Tensor | None = None) -> torch.Tensor:
        """The variant's addition and what follows it; ``residual`` None = deleted (or dropped) branch."""
        return self.after_addition(self.variant.join(identity, residual, gate))

    def merge_plain(self, residual: torch.Tensor) -> torch.Tensor:
        return self.after_addition(residual)

    def _split(self, x: torch.Tensor, keep_branch: bool = True
               ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(h, F, g) of ``x``: F None where deleted (not ``keep_branch``) or dropped by stochastic depth."""
        # a deleted branch needs the pre-activation only where the shortcut shares it
        p = self.preactivate(x) if keep_branch or self.shares_preact else x
        s = p if self.shares_preact else x
        gate = None if self.gate is None else torch.sigmoid(self.gate(s))
        residual = self.stochastic_branch(p, self.residual) if keep_branch else None
        return self._carry(s), residual, gate  # the branch's dropout draws before the shortcut's

    # ------------------------------------------------------------------ the block
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_shortcut:
            return self.after_addition(self.branch(x))
        return self.merge(*self._split(x))

    def routed(self, x: torch.Tensor, through_branch: bool) -> torch.Tensor:
        """See ResidualBlock.routed. The pre-activation is shared by both ways; a gate belongs to the branch
        (it is a learned function of x, like F), so the shortcut way sees it as a constant."""
        if not self.has_shortcut:
            return self.forward(x)
        identity, residual, gate = self._split(x)
        if through_branch:
            return self.merge(identity.detach(), residual, gate)
        return self.merge(identity, None if residual is None else residual.detach(),
                          None if gate is None else gate.detach())

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The block with its residual branch deleted. For a highway block this is the carry path alone,
        ``(1 - T(x)) * x``: the transform H is what is deleted, the gate stays."""
        if not self.has_shortcut:
            return super().skip(x)
        return self.merge(*self._split(x, keep_branch=False))

    def extra_repr(self) -> str:
        extras = [f"placement={self.placement}"] if self.placement != "original" else []
        if self.mode != "identity":
            extras.append(f"shortcut_mode={self.mode}")
        if self.survival < 1.0:
            extras.append(f"survival={self.survival:.4g}")
        return ", ".join(extras)


# Each placement (He et al. 2016 Fig. 4) for a basic block (two 3x3 convs: ResNet-18/34, the CIFAR nets, Wide
# ResNets) and a bottleneck (1x1 reduce, 3x3, grouped for ResNeXt, 1x1 expand x4; the stride in the 3x3, as
# torchvision's "ResNet v1.5", or in the first 1x1 with ``stride_in_1x1``). tests/test_block_variants.py checks
# each against PLACEMENT_TABLE.
class BasicBlock(ResNetBlock):
    """(a) original (He et al. 2015; torchvision's BasicBlock): conv-BN-ReLU, conv-BN, add, ReLU."""

    placement = "original"

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(self.dropout(out)))
        return self.excite(out)

    def after_addition(self, y: torch.Tensor) -> torch.Tensor:
        return F.relu(y)


class Bottleneck(BasicBlock):
    """(a) original (torchvision's Bottleneck): conv-BN-ReLU twice, conv-BN, add, ReLU."""

    kind = "bottleneck"

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.dropout(out)))
        return self.excite(out)


class BNAfterAddBasicBlock(ResNetBlock):
    """(b) BN after addition: conv-BN-ReLU, conv, add, BN-ReLU (the last BN normalises the sum)."""

    placement = "bn_after_add"

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.conv2(self.dropout(out))
        return self.excite(out)

    def after_addition(self, y: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(y))


class BNAfterAddBottleneck(BNAfterAddBasicBlock):
    """(b) BN after addition: conv-BN-ReLU twice, conv, add, BN-ReLU."""

    kind = "bottleneck"

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.conv3(self.dropout(out))
        return self.excite(out)

    def after_addition(self, y: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn3(y))


class ReLUBeforeAddBasicBlock(ResNetBlock):
    """(c) ReLU before addition: conv-BN-ReLU, conv-BN-ReLU, add (the branch can only add; the highway unit)."""

    placement = "relu_before_add"

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(self.dropout(out))))
        return self.excite(out)


class ReLUBeforeAddBottleneck(ReLUBeforeAddBasicBlock):
    """(c) ReLU before addition: conv-BN-ReLU three times, add."""

    kind = "bottleneck"

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = F.relu(self.bn3(self.conv3(self.dropout(out))))
        return self.excite(out)


class ReLUPreActBasicBlock(ResNetBlock):
    """(d) ReLU-only pre-activation: ReLU-conv-BN, ReLU-conv-BN, add."""

    placement = "relu_preact"

    def preactivate(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv1(x))
        out = self.bn2(self.conv2(self.dropout(F.relu(out))))
        return self.excite(out)


class ReLUPreActBottleneck(ReLUPreActBasicBlock):
    """(d) ReLU-only pre-activation: ReLU-conv-BN three times, add."""

    kind = "bottleneck"

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv1(x))
        out = self.bn2(self.conv2(F.relu(out)))
        out = self.bn3(self.conv3(self.dropout(F.relu(out))))
        return self.excite(out)


class PreActBasicBlock(ResNetBlock):
    """(e) full pre-activation (timm's PreActBasic): BN-ReLU-conv, BN-ReLU-conv, add; nothing after it."""

    placement = "full_preact"

    def preactivate(self, x: torch.Tensor) -> torch.Tensor:
        bn1 = getattr(self, "bn1", None)  # none in the net's first block where the stem ends in BN-ReLU (has_bn)
        return x if bn1 is None else F.relu(bn1(x))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return self.excite(out)


class PreActBottleneck(PreActBasicBlock):
    """(e) full pre-activation (timm's PreActBottleneck): BN-ReLU-conv three times, add."""

    kind = "bottleneck"

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(self.dropout(F.relu(self.bn3(out))))
        return self.excite(out)


BLOCK_CLASSES: dict[tuple[str, str], type[ResNetBlock]] = {
    (cls.placement, cls.kind): cls
    for cls in (BasicBlock, Bottleneck, BNAfterAddBasicBlock, BNAfterAddBottleneck, ReLUBeforeAddBasicBlock,
                ReLUBeforeAddBottleneck, ReLUPreActBasicBlock, ReLUPreActBottleneck, PreActBasicBlock,
                PreActBottleneck)
}


class ResNet(ResidualNetwork):
    """stem (ImageNet 7x7/2 + max-pool, ResNet-D's deep stem + max-pool, or CIFAR 3x3/1) -> stages of blocks ->
    global average pool -> fc.

    Under full pre-activation the CIFAR stem is the conv alone (the first block's BN-ReLU follows it, He et al.
    2016 §4.1) and the head starts with BN-ReLU (``head_bn``), since no block ends with an activation. The
    ImageNet pre-activation stem ends in BN-ReLU and the first block has none (fb.resnet.torch's preresnet.lua,
    the code of He et al.'s ImageNet ResNet-200); ``stem_norm=False`` gives timm's resnetv2 instead.

    Correspondence to timm's key names (the checkpoint loader, checkpoint/format.py, maps them with
    key_layouts.py's ``KEY_LAYOUTS``):

    - ``resnet50d`` (ResNet-D): the same keys as timm: ``conv1.0/.1/.3/.4/.6`` (deep stem), ``bn1``,
      ``layerN.M.conv1..3/bn1..3``, ``layerN.0.downsample.0`` (AvgPool2d, no weights), ``.1`` conv, ``.2`` BN, ``fc``.
    - ``resnetv2_*`` (pre-activation, ``stem_norm=False``): ``stem.conv`` -> ``conv1``;
      ``stages.{N-1}.blocks.M.norm1/conv1/norm2/conv2/norm3/conv3`` -> ``layerN.M.bn1/conv1/bn2/conv2/bn3/conv3``;
      ``stages.{N-1}.blocks.0.downsample.conv`` -> ``layerN.0.downsample.0``; ``norm`` -> ``head_bn``;
      ``head.fc`` -> ``fc``.
    """

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        block_cls = BLOCK_CLASSES[spec.placement, spec.block]
        self.conv1 = stem_conv(spec)
        self.stem_norm = stem_has_norm(spec)
        if self.stem_norm:
            self.bn1 = nn.BatchNorm2d(spec.stem_width)
        self.maxpool: nn.Module = (nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if spec.stem != "cifar"
                                   else nn.Identity())
        channels = spec.stem_width
        names = []
        for i, (n_blocks, planes, stride) in enumerate(zip(spec.layers, spec.widths, spec.strides)):
            blocks = []
            for j in range(n_blocks):
                blocks.append(block_cls(spec, channels, planes, stride if j == 0 else 1, first=not names and j == 0))
                channels = blocks[-1].out_channels
            names.append(f"layer{i + 1}")
            self.add_module(names[-1], nn.Sequential(*blocks))
        self.stage_names = tuple(names)
        self.head_bn = nn.BatchNorm2d(channels) if PLACEMENT_TABLE[spec.placement].bn_before_conv else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, spec.num_classes)
        init_weights(self)
        for ref, p in zip(self.residual_blocks(), spec.survival_probabilities()):
            ref.module.survival = p

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        if self.stem_norm:
            x = F.relu(self.bn1(x))
        return self.maxpool(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        if self.head_bn is not None:
            x = F.relu(self.head_bn(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def stem_conv(spec: ArchSpec) -> nn.Module:
    """``conv1``: ImageNet's 7x7/2, CIFAR's 3x3, or ResNet-D's deep stem as timm builds it, a Sequential of
    conv-BN-ReLU-conv-BN-ReLU-conv (keys conv1.0, conv1.1, conv1.3, conv1.4, conv1.6; ``bn1`` follows)."""
    if spec.stem != "deep":
        kernel, stride, padding = (7, 2, 3) if spec.stem == "imagenet" else (3, 1, 1)
        return nn.Conv2d(spec.in_channels, spec.stem_width, kernel, stride, padding, bias=False)
    layers: list[nn.Module] = []
    channels = spec.in_channels
    for i, (_name, width, stride) in enumerate(deep_stem_convs(spec)):
        layers.append(nn.Conv2d(channels, width, 3, stride, 1, bias=False))
        if i < 2:
            layers += [nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        channels = width
    return nn.Sequential(*layers)


def init_weights(model: nn.Module) -> None:
    """He (fan-out) initialisation for convs, BN to identity: torchvision's choice for ResNets."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


__all__ = ["BLOCK_CLASSES", "BasicBlock", "Bottleneck", "ResNet", "ResNetBlock", "Shortcut", "ZeroPadShortcut",
           "bottleneck_width", "make_downsample", "make_shortcut"]
