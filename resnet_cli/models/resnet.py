"""The ``resnet`` and ``highway`` families: torchvision's BasicBlock/Bottleneck/ResNet, with the stem, the
shortcut, the BN/ReLU placement and the shortcut variant in the spec.

With the defaults (placement ``original``, shortcut_mode ``identity``) module names and shapes match torchvision
(``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``, ``fc``), so torchvision checkpoints load with
``strict=True``. plan/resnet.py counts the same layers under the same names.

Placements (He et al. 2016, "Identity Mappings in Deep Residual Networks", Fig. 4), for convs c1..cn:

- ``original``         c1 bn relu ... cn bn, add, relu
- ``bn_after_add``     c1 bn relu ... cn, add, bn relu (the last BN moves after the addition)
- ``relu_before_add``  c1 bn relu ... cn bn relu, add
- ``relu_preact``      relu c1 bn ... relu cn bn, add
- ``full_preact``      bn relu c1 ... bn relu cn, add (nothing after the addition)

A highway net (Srivastava et al. 2015) is the ``relu_before_add`` unit with exclusive gating:
``y = T(x) * H(x) + (1 - T(x)) * x`` with the transform gate ``T = sigmoid(1x1 conv(x) + b_T)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..plan.resnet import (
    block_convs,
    bottleneck_width,
    deep_stem_convs,
    first_block_preacts,
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


def make_shortcut(spec: ArchSpec, in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """The shortcut module for a block (None = identity), by the spec's option A/B/C and shortcut_mode.

    Under full pre-activation the projection is a bare 1x1 conv (its input is already batch-normalised), as in
    He et al.'s pre-activation code and Zagoruyko & Komodakis' Wide ResNets; otherwise conv + BN (torchvision).
    With ``avg_down`` (ResNet-D) a 2x2 average pool comes first and the conv does not stride: ``downsample.0``
    pool, ``.1`` conv, ``.2`` BN, timm's names.
    """
    changes_shape = stride != 1 or in_channels != out_channels
    if needs_projection(spec, changes_shape):
        layers: list[nn.Module] = []
        if spec.avg_down:  # ResNet-D, timm's downsample_avg: pool (or nothing at stride 1), then a 1x1/1 conv
            layers.append(nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride != 1
                          else nn.Identity())
            stride = 1
        layers.append(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False))
        if spec.placement != "full_preact":
            layers.append(nn.BatchNorm2d(out_channels))
        return nn.Sequential(*layers)
    if changes_shape:
        return ZeroPadShortcut(in_channels, out_channels, stride)
    return None


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): x * sigmoid(fc2(relu(fc1(mean of x over the map)))), fc1/fc2 1x1
    convs with bias, as timm's ``SEModule`` (so timm's ``layerN.M.se.fc1``/``se.fc2`` keys load)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class ResNetBlock(ResidualBlock):
    """A basic or bottleneck unit with any placement and shortcut variant (see the module docstring).

    ``branch(x)`` is F(x), ``shortcut(x)`` is h(x) (after the shared pre-activation where the placement has
    one); ``forward`` is ``post(combine(h, F, g))``. ``skip(x)`` deletes F and keeps everything else: the
    shortcut, its gate or scale, and what follows the addition.
    """

    expansion = 1

    def __init__(self, spec: ArchSpec, in_channels: int, planes: int, stride: int, first: bool = False) -> None:
        out_channels = planes * self.expansion
        super().__init__(in_channels, out_channels, stride)
        self.has_shortcut = spec.residual
        self.placement = spec.placement
        self.mode = spec.shortcut_mode if spec.residual else "identity"
        self.shortcut_scale, self.shortcut_drop, self.drop = spec.shortcut_scale, spec.shortcut_dropout, spec.dropout
        convs = block_convs(spec, in_channels, planes, stride)
        preact = spec.placement == "full_preact"
        pre: list[str] = ["relu"] if spec.placement == "relu_preact" else []
        body: list[str] = []
        post: list[str] = []
        no_preact = first and not first_block_preacts(spec)  # after a stem that ends in BN-ReLU
        for i, (cin, cout, kernel, s, groups) in enumerate(convs, start=1):
            last = i == len(convs)
            if preact and not (i == 1 and no_preact):
                self.add_module(f"bn{i}", nn.BatchNorm2d(cin))
                (pre if i == 1 else body).extend([f"bn{i}", "relu"])
            if last and self.drop > 0:
                body.append("dropout")  # Wide ResNets: dropout between the convolutions
            self.add_module(f"conv{i}", nn.Conv2d(cin, cout, kernel, stride=s, padding=kernel // 2, groups=groups,
                                                  bias=False))
            body.append(f"conv{i}")
            if preact:
                continue
            self.add_module(f"bn{i}", nn.BatchNorm2d(cout))
            if last and spec.placement == "bn_after_add":
                post.extend([f"bn{i}", "relu"])
            elif last:
                body.append(f"bn{i}")
                (body if spec.placement == "relu_before_add" else post).extend(
                    ["relu"] if spec.placement in ("original", "relu_before_add") else [])
            else:
                body.extend([f"bn{i}", "relu"])
        if spec.se_reduction:  # the end of the branch, before the addition (timm: after bn3)
            self.se = SqueezeExcite(out_channels, se_width(spec, out_channels))
            body.append("se")
        self.pre_ops, self.body_ops, self.post_ops = tuple(pre), tuple(body), tuple(post)
        # Where the placement pre-activates, a block that changes shape (and the net's first block) applies
        # the pre-activation before splitting into shortcut and branch (He et al. 2016 §4.1, footnote; their
        # code's 'both_preact'); other blocks keep the raw x on the shortcut.
        self.shares_preact = shares_preactivation(spec, self.changes_shape, first)
        self.downsample: nn.Module | None = None
        self.gate: nn.Conv2d | None = None
        if spec.residual:
            self.downsample = make_shortcut(spec, in_channels, out_channels, stride)
            if self.mode in GATED_MODES:
                self.gate = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=True)

    # ------------------------------------------------------------------ the pieces
    def _run(self, ops: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        for op in ops:
            if op == "relu":
                x = F.relu(x)
            elif op == "dropout":
                x = F.dropout(x, self.drop, self.training)
            else:
                x = getattr(self, op)(x)
        return x

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self.body_ops, self._run(self.pre_ops, x))

    def _shortcut_from(self, s_in: torch.Tensor) -> torch.Tensor:
        s = s_in if self.downsample is None else self.downsample(s_in)
        if self.mode == "dropout":
            s = F.dropout(s, self.shortcut_drop, self.training)
        return s

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return self._shortcut_from(self._run(self.pre_ops, x) if self.shares_preact else x)

    def combine(self, identity: torch.Tensor, residual: torch.Tensor | None,
                gate: torch.Tensor | None = None) -> torch.Tensor:
        """The addition with the variant's scales; ``residual`` None = deleted (or dropped) branch."""
        if self.mode == "scaling":
            identity = identity * self.shortcut_scale
            residual = None if residual is None else residual * (1.0 - self.shortcut_scale)
        elif self.mode in GATED_MODES:
            if gate is None:
                raise ValueError("a gated shortcut needs its gate g = sigmoid(gate(x)): pass gate=block.gate_of(x)")
            identity = identity * (1.0 - gate)
            if self.mode == "exclusive_gating" and residual is not None:
                residual = residual * gate
        return identity if residual is None else identity + residual

    def gate_of(self, x: torch.Tensor) -> torch.Tensor | None:
        """The gate g of a gated shortcut for the block input ``x`` (None for ungated variants)."""
        if self.gate is None:
            return None
        return torch.sigmoid(self.gate(self._run(self.pre_ops, x) if self.shares_preact else x))

    def merge(self, identity: torch.Tensor, residual: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        """combine + what follows the addition: ``forward(x) == merge(shortcut(x), branch(x), gate_of(x))``."""
        return self._run(self.post_ops, self.combine(identity, residual, gate))

    def merge_plain(self, residual: torch.Tensor) -> torch.Tensor:
        return self._run(self.post_ops, residual)

    def _forward(self, x: torch.Tensor, keep_branch: bool = True, route: str | None = None) -> torch.Tensor:
        """forward (``keep_branch``), skip (not ``keep_branch``), or routed (``route`` "branch" or "shortcut":
        the same value, with the gradient let through that way only)."""
        if not self.has_shortcut:
            if keep_branch:
                return self.merge_plain(self.branch(x))
            return super().skip(x)
        # a deleted branch needs the pre-activation only where the shortcut shares it
        p = self._run(self.pre_ops, x) if keep_branch or self.shares_preact else x
        s_in = p if self.shares_preact else x
        gate = torch.sigmoid(self.gate(s_in)) if self.gate is not None else None
        residual = self.stochastic_branch(p, lambda t: self._run(self.body_ops, t)) if keep_branch else None
        identity = self._shortcut_from(s_in)
        if route == "branch":
            identity = identity.detach()
        elif route == "shortcut":
            residual = None if residual is None else residual.detach()
            gate = None if gate is None else gate.detach()
        return self._run(self.post_ops, self.combine(identity, residual, gate))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(x)

    def routed(self, x: torch.Tensor, through_branch: bool) -> torch.Tensor:
        """See ResidualBlock.routed. The pre-activation is shared by both ways; a gate belongs to the branch
        (it is a learned function of x, like F), so the shortcut way sees it as a constant."""
        return self._forward(x, route="branch" if through_branch else "shortcut")

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The block with its residual branch deleted. For a highway block this is the carry path alone,
        ``(1 - T(x)) * x``: the transform H is what is deleted, the gate stays."""
        return self._forward(x, keep_branch=False)

    def extra_repr(self) -> str:
        extras = [f"placement={self.placement}"] if self.placement != "original" else []
        if self.mode != "identity":
            extras.append(f"shortcut_mode={self.mode}")
        if self.survival < 1.0:
            extras.append(f"survival={self.survival:.4g}")
        return ", ".join(extras)


class BasicBlock(ResNetBlock):
    """Two 3x3 convs (ResNet-18/34, the CIFAR nets, Wide ResNets)."""

    expansion = 1


class Bottleneck(ResNetBlock):
    """1x1 reduce, 3x3 (grouped for ResNeXt; stride here, as torchvision's "ResNet v1.5"), 1x1 expand x4."""

    expansion = 4


class ResNet(ResidualNetwork):
    """stem (ImageNet 7x7/2 + max-pool, ResNet-D's deep stem + max-pool, or CIFAR 3x3/1) -> stages of blocks ->
    global average pool -> fc.

    Under full pre-activation the CIFAR stem is the conv alone (the first block's BN-ReLU follows it, He et al.
    2016 §4.1) and the head starts with BN-ReLU (``head_bn``), since no block ends with an activation. The
    ImageNet pre-activation stem ends in BN-ReLU and the first block has none (fb.resnet.torch's preresnet.lua,
    the code of He et al.'s ImageNet ResNet-200); ``stem_norm=False`` gives timm's resnetv2 instead.

    Correspondence to timm's key names (the checkpoint loader maps them; see checkpoint.py):

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
        block_cls = Bottleneck if spec.block == "bottleneck" else BasicBlock
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
        self.head_bn = nn.BatchNorm2d(channels) if spec.placement == "full_preact" else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, spec.num_classes)
        init_weights(self)
        for ref, p in zip(self.residual_blocks(), spec.survival_probabilities()):
            ref.module.survival = p
            if ref.module.gate is not None:
                nn.init.constant_(ref.module.gate.bias, spec.gate_bias)

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


__all__ = ["BasicBlock", "Bottleneck", "ResNet", "ResNetBlock", "ZeroPadShortcut", "bottleneck_width",
           "make_shortcut"]
