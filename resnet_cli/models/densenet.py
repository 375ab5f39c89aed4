"""The ``densenet`` family (Huang et al. 2017), torchvision's layout and state-dict keys.

``features.conv0``/``norm0``/``pool0``, ``features.denseblock{i}.denselayer{j}.{norm1,conv1,norm2,conv2}``,
``features.transition{i}.{norm,conv}``, ``features.norm5``, ``classifier``: torchvision's DenseNet-121/161/169/201
weights load with ``strict=True`` and compute the same function. plan/densenet.py counts the same layers.

What a *block* is here, for the path and lesion analyses: one dense layer. Its output is its input with k new
feature maps concatenated, ``cat(x, H(x))``; deleting it (``skip``) zeroes the new maps, ``cat(x, 0)``, so
every later layer still gets the channels it expects. Transitions (BN-ReLU-conv1x1-avgpool) change the shape
and are not blocks: ``sequence()`` lists them with ``None``. A dense layer does not change the spatial size
and its skip keeps its output shape, so its BlockRef says ``downsample=False``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..plan.densenet import transition_width
from ..spec import ArchSpec
from .base import BlockRef, ResidualBlock, ResidualNetwork


class DenseLayer(ResidualBlock):
    """BN-ReLU-conv1x1(bn_size*k)-BN-ReLU-conv3x3(k) (DenseNet-B), or BN-ReLU-conv3x3(k); output cat(x, new)."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__(in_channels, in_channels + growth_rate, 1)
        self.growth_rate, self.drop_rate = growth_rate, drop_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        if bn_size:
            self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
            self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, growth_rate, 3, padding=1, bias=False)
        self.bottleneck = bool(bn_size)

    @property
    def changes_shape(self) -> bool:  # see the module docstring
        return False

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The k new feature maps H(x)."""
        out = self.conv1(self.relu1(self.norm1(x)))
        if self.bottleneck:
            out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out

    def merge(self, identity: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return torch.cat([identity, residual], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(x, self.branch(x))

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The layer deleted: its new maps are zeros, ``cat(x, 0)``."""
        zeros = x.new_zeros((x.shape[0], self.growth_rate, x.shape[2], x.shape[3]))
        return torch.cat([x, zeros], 1)


class DenseBlock(nn.Sequential):
    """``denselayer1`` ... ``denselayerN``, each adding k channels."""


class Transition(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(in_channels))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(in_channels, out_channels, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNet(ResidualNetwork):
    """torchvision's DenseNet with the stem from the spec (ImageNet 7x7/2 + max-pool, or CIFAR 3x3)."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        features = nn.Sequential()
        if spec.stem == "imagenet":
            features.add_module("conv0", nn.Conv2d(spec.in_channels, spec.stem_width, 7, 2, 3, bias=False))
            features.add_module("norm0", nn.BatchNorm2d(spec.stem_width))
            features.add_module("relu0", nn.ReLU(inplace=True))
            features.add_module("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        else:
            features.add_module("conv0", nn.Conv2d(spec.in_channels, spec.stem_width, 3, padding=1, bias=False))
        self.stem_names = tuple(name for name, _ in features.named_children())
        channels = spec.stem_width
        names = []
        for i, n_layers in enumerate(spec.layers, start=1):
            block = DenseBlock()
            for j in range(1, n_layers + 1):
                block.add_module(f"denselayer{j}", DenseLayer(channels, spec.growth_rate, spec.bn_size, spec.dropout))
                channels += spec.growth_rate
            features.add_module(f"denseblock{i}", block)
            names.append(f"denseblock{i}")
            if i < len(spec.layers):
                out = transition_width(spec, channels)
                features.add_module(f"transition{i}", Transition(channels, out))
                channels = out
        features.add_module("norm5", nn.BatchNorm2d(channels))
        self.features = features
        self.stage_names = tuple(names)
        self.classifier = nn.Linear(channels, spec.num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.stem_names:
            x = getattr(self.features, name)(x)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features.norm5(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))

    def residual_blocks(self) -> list[BlockRef]:
        refs: list[BlockRef] = []
        for s, stage_name in enumerate(self.stage_names, start=1):
            for j, (name, layer) in enumerate(getattr(self.features, stage_name).named_children()):
                refs.append(BlockRef(len(refs), f"features.{stage_name}.{name}", s, j, False, layer))
        return refs

    def sequence(self) -> list[tuple[nn.Module, BlockRef | None]]:
        refs = {id(r.module): r for r in self.residual_blocks()}
        out: list[tuple[nn.Module, BlockRef | None]] = []
        for name, module in self.features.named_children():
            if name.startswith("denseblock"):
                out += [(layer, refs[id(layer)]) for layer in module]
            elif name.startswith("transition"):
                out.append((module, None))
        return out
