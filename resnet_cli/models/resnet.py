"""The ``resnet`` family: torchvision's BasicBlock/Bottleneck/ResNet, with the stem and shortcut in the spec.

Module names and shapes match torchvision (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``,
``fc``), so torchvision checkpoints load with ``strict=True``. plan/resnet.py counts the same layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..plan.resnet import bottleneck_width
from ..spec import ArchSpec
from . import builder
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
    """The shortcut module for a block (None = identity), by the spec's option A/B/C."""
    changes_shape = stride != 1 or in_channels != out_channels
    if spec.shortcut == "C" or (spec.shortcut == "B" and changes_shape):
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
        )
    if changes_shape:
        return ZeroPadShortcut(in_channels, out_channels, stride)
    return None


class PostActivationBlock(ResidualBlock):
    """The original ResNet block: ``relu(h(x) + F(x))``, with ``F`` ending in BN (He et al. 2015)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, residual: bool) -> None:
        super().__init__(in_channels, out_channels, stride)
        self.has_shortcut = residual
        self.downsample: nn.Module | None = None  # set after the convs, to keep torchvision's key order
        self.relu = nn.ReLU(inplace=True)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.downsample is None else self.downsample(x)

    def merge(self, identity: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return torch.relu(identity + residual)

    def merge_plain(self, residual: torch.Tensor) -> torch.Tensor:
        return torch.relu(residual)


class BasicBlock(PostActivationBlock):
    """Two 3x3 convs (ResNet-18/34 and the CIFAR nets)."""

    expansion = 1

    def __init__(self, spec: ArchSpec, in_channels: int, planes: int, stride: int) -> None:
        super().__init__(in_channels, planes, stride, spec.residual)
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if spec.residual:
            self.downsample = make_shortcut(spec, in_channels, planes, stride)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))


class Bottleneck(PostActivationBlock):
    """1x1 reduce, 3x3 (grouped for ResNeXt; stride here, as torchvision's "ResNet v1.5"), 1x1 expand x4."""

    expansion = 4

    def __init__(self, spec: ArchSpec, in_channels: int, planes: int, stride: int) -> None:
        out_channels = planes * self.expansion
        super().__init__(in_channels, out_channels, stride, spec.residual)
        width = bottleneck_width(spec, planes)
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=spec.groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        if spec.residual:
            self.downsample = make_shortcut(spec, in_channels, out_channels, stride)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class ResNet(ResidualNetwork):
    """stem (ImageNet 7x7/2 + max-pool, or CIFAR 3x3/1) -> stages of blocks -> global average pool -> fc."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        block_cls = Bottleneck if spec.block == "bottleneck" else BasicBlock
        if spec.stem == "imagenet":
            self.conv1 = nn.Conv2d(spec.in_channels, spec.stem_width, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(spec.in_channels, spec.stem_width, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(spec.stem_width)
        self.relu = nn.ReLU(inplace=True)
        channels = spec.stem_width
        names = []
        for i, (n_blocks, planes, stride) in enumerate(zip(spec.layers, spec.widths, spec.strides)):
            blocks = []
            for j in range(n_blocks):
                blocks.append(block_cls(spec, channels, planes, stride if j == 0 else 1))
                channels = blocks[-1].out_channels
            names.append(f"layer{i + 1}")
            self.add_module(names[-1], nn.Sequential(*blocks))
        self.stage_names = tuple(names)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, spec.num_classes)
        init_weights(self)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))


def init_weights(model: nn.Module) -> None:
    """He (fan-out) initialisation for convs, BN to identity: torchvision's choice for ResNets."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


@builder("resnet")
def build_resnet(spec: ArchSpec) -> ResNet:
    return ResNet(spec)
