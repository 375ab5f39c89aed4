"""The ``vgg`` family (plan/vgg.py): torchvision's VGG, with its module layout and state-dict keys, so that
torchvision's VGG weights load with ``strict=True`` and compute the same function.

``features`` stays torchvision's flat Sequential (``features.0`` conv, ``features.1`` BN or ReLU, ...). What the
lesion, path and gradient analyses need is a block per conv: ``VGGLayer`` groups a conv with its BN and ReLU
without owning them (it is kept outside the module tree, so the state dict is torchvision's and each parameter
is listed once), and ``forward`` runs the layers and pools through ``sequence()``, which is what the lesion
engine runs too.
"""

from __future__ import annotations

import torch
from torch import nn

from ..plan.vgg import HIDDEN, POOLED, feature_modules
from ..spec import ArchSpec
from .base import BlockRef, ResidualBlock, ResidualNetwork


class VGGLayer(ResidualBlock):
    """conv3x3 (+ BN) + ReLU, a block without a shortcut: its ``skip`` is the identity where the conv keeps the
    shape (base.ResidualBlock.skip), as a plain twin's blocks."""

    has_shortcut = False

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d | None, relu: nn.ReLU) -> None:
        super().__init__(conv.in_channels, conv.out_channels, 1)
        self.conv, self.relu = conv, relu
        self.norm = norm

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.relu(x if self.norm is None else self.norm(x))


class VGG(ResidualNetwork):
    """features (convs, BNs, ReLUs, max-pools) -> adaptive average pool to 7x7 -> classifier (fc-ReLU-dropout
    twice, fc), torchvision's ``VGG`` and its initialisation."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        modules: list[nn.Module] = []
        channels = spec.in_channels
        for kind, _stage, width in feature_modules(spec):
            if kind == "conv":
                modules.append(nn.Conv2d(channels, width, 3, padding=1))
                channels = width
            elif kind == "bn":
                modules.append(nn.BatchNorm2d(width))
            elif kind == "relu":
                modules.append(nn.ReLU(inplace=True))
            else:
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*modules)
        self.avgpool = nn.AdaptiveAvgPool2d((POOLED, POOLED))
        self.classifier = nn.Sequential(
            nn.Linear(channels * POOLED * POOLED, HIDDEN), nn.ReLU(True), nn.Dropout(spec.dropout),
            nn.Linear(HIDDEN, HIDDEN), nn.ReLU(True), nn.Dropout(spec.dropout),
            nn.Linear(HIDDEN, spec.num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)
        # (position in features, stage, layer) per conv; a tuple, not a ModuleList: the layers' modules belong
        # to ``features`` alone
        self._layers = tuple(self._group(spec))

    def _group(self, spec: ArchSpec) -> list[tuple[int, int, VGGLayer]]:
        plan = feature_modules(spec)
        out = []
        for index, (kind, stage, _width) in enumerate(plan):
            if kind != "conv":
                continue
            norm = self.features[index + 1] if spec.block == "conv_bn" else None
            relu = self.features[index + (2 if norm is not None else 1)]
            out.append((index, stage, VGGLayer(self.features[index], norm, relu)))
        return out

    def train(self, mode: bool = True) -> VGG:
        super().train(mode)
        for _index, _stage, layer in self._layers:  # outside the module tree, so not reached by super()
            layer.training = mode
        return self

    def residual_blocks(self) -> list[BlockRef]:
        refs: list[BlockRef] = []
        per_stage: dict[int, int] = {}
        for index, stage, layer in self._layers:
            j = per_stage.get(stage, 0)
            per_stage[stage] = j + 1
            refs.append(BlockRef(len(refs), f"features.{index}", stage + 1, j, layer.changes_shape, layer))
        return refs

    def sequence(self) -> list[tuple[nn.Module, BlockRef | None]]:
        refs = {r.name: r for r in self.residual_blocks()}
        out: list[tuple[nn.Module, BlockRef | None]] = []
        for index, module in enumerate(self.features):
            ref = refs.get(f"features.{index}")
            if ref is not None:
                out.append((ref.module, ref))
            elif isinstance(module, nn.MaxPool2d):
                out.append((module, None))
        return out

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return x  # a VGG net has no stem: its first conv is its first block

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(x), 1))
