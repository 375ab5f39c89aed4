"""The ``keras`` family (plan/keras.py): small Keras residual nets in PyTorch, layer for layer.

- ``keras_resnet_v1`` / ``keras_resnet_v2``: conv 3x3/16 + ReLU -> ``res_block(16, 16)`` -> ``res_block(16, 32)``
  -> (v2: BN) -> Flatten -> Dense(10). ``res_block_v2`` is BN-ReLU-conv3x3-BN-ReLU-conv3x3, plus a 1x1 conv on
  the shortcut when the filters change (the pre-activation unit of He et al. 2016). ``res_block_v1`` is called
  but not written out in the Keras source; we take it as the post-activation mirror of v2
  (conv3x3-BN-ReLU-conv3x3-BN, add, ReLU), the original unit of He et al. 2015. All strides are 1, so the dense
  layer sees the whole 32x32x32 map.
- ``keras_minimodel`` (``MiniModel``): conv 3x3/32 (no activation) -> 3 ``Unit``s of 32 -> 3 of 64, 128, 256,
  the first of each opened by a 2x2 max-pool on the branch and a strided 1x1 conv on the shortcut -> BN, ReLU,
  Dropout(0.25) -> AveragePooling 4x4 -> Flatten -> Dense(10).

Keras defaults kept: every conv and dense layer has a bias; BN uses epsilon 1e-3 and momentum 0.99 (PyTorch
momentum 0.01); kernels start Glorot-uniform (resnet_v1/v2's dense layer He-normal), biases zero. The final
softmax is left out: the model returns logits, which ``nn.CrossEntropyLoss`` expects.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..plan.keras import head_features, keras_blocks
from ..spec import ArchSpec
from .base import ResidualBlock, ResidualNetwork


def keras_bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class KerasResBlock(ResidualBlock):
    """``res_block_v1`` (post-activation) or ``res_block_v2`` / MiniModel's ``Unit`` (pre-activation)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, preact: bool, residual: bool = True) -> None:
        super().__init__(in_channels, out_channels, stride)
        self.preact = preact
        self.has_shortcut = residual  # False: the plain twin, no shortcut at all (forward is the branch)
        self.pool = nn.MaxPool2d(2) if stride != 1 else None
        for i, cin in ((1, in_channels), (2, out_channels)):
            if preact:
                self.add_module(f"bn{i}", keras_bn(cin))
            self.add_module(f"conv{i}", nn.Conv2d(cin, out_channels, 3, padding=1, bias=True))
            if not preact:
                self.add_module(f"bn{i}", keras_bn(out_channels))
        # Keras 'same' padding of a 1x1 conv at stride 2 takes every other pixel, as PyTorch's padding 0 does.
        self.shortcut_conv = (nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=True)
                              if self.changes_shape and residual else None)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        if self.preact:
            x = self.conv1(F.relu(self.bn1(x)))
            return self.conv2(F.relu(self.bn2(x)))
        x = F.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(x))

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.shortcut_conv is None else self.shortcut_conv(x)

    def merge(self, identity: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return identity + residual if self.preact else F.relu(identity + residual)

    def merge_plain(self, residual: torch.Tensor) -> torch.Tensor:
        return residual if self.preact else F.relu(residual)  # the activation that follows the addition stays


class KerasNet(ResidualNetwork):
    """stem conv -> blocks -> the model's head (see the module docstring)."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        preact = spec.block in ("res_block_v2", "minimodel_unit")
        self.conv1 = nn.Conv2d(spec.in_channels, spec.stem_width, 3, padding=1, bias=True)
        self.stem_relu = spec.block != "minimodel_unit"  # resnet_v1/v2: Conv2D(..., activation='relu'); MiniModel: none
        channels = spec.stem_width
        stages: dict[str, list[nn.Module]] = {}
        for _name, stage, width, stride in keras_blocks(spec):
            stages.setdefault(stage, []).append(KerasResBlock(channels, width, stride, preact, spec.residual))
            channels = width
        for stage, blocks in stages.items():
            self.add_module(stage, nn.Sequential(*blocks))
        self.stage_names = tuple(stages)
        self.head_bn = keras_bn(channels) if spec.block != "res_block_v1" else None
        height, width = spec.input_hw
        for s in spec.strides:
            height, width = height // s, width // s
        self.fc = nn.Linear(head_features(spec, (channels, height, width)), spec.num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        if spec.block != "minimodel_unit":
            nn.init.kaiming_normal_(self.fc.weight, mode="fan_in")  # Dense(..., kernel_initializer='he_normal')
        for ref, p in zip(self.residual_blocks(), spec.survival_probabilities()):
            ref.module.survival = p

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return F.relu(x) if self.stem_relu else x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        if self.head_bn is not None:
            x = self.head_bn(x)
        if self.spec.block == "minimodel_unit":
            x = F.dropout(F.relu(x), self.spec.dropout, self.training)
            x = F.avg_pool2d(x, 4)
        return self.fc(torch.flatten(x, 1))
