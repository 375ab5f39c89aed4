"""ResNets of He et al. 2015 (ImageNet and CIFAR), their plain twins, ResNeXt and Wide ResNet (ImageNet).

ImageNet models follow torchvision's ``models/resnet.py`` exactly (same parameter counts, same state-dict keys);
ResNeXt and Wide ResNet are arguments of the bottleneck (``groups``, ``width_per_group``), not new classes.
CIFAR models are the 6n+2 networks of the paper's §4.2 with option A (zero-padding) shortcuts.
"""

from __future__ import annotations

import re
from functools import partial

from ..errors import SpecError
from ..registry import register, register_parametric, register_spec
from ..spec import ArchSpec

IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
# Depths of He et al. 2015 Table 6 that get a short name (resnet20 ... resnet1202).
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)

for _depth, (_block, _layers) in IMAGENET_DEPTHS.items():
    register_spec(
        f"resnet{_depth}", family="resnet", block=_block, layers=_layers,
        description=f"ResNet-{_depth} (He et al. 2015, Table 1), torchvision layout",
    )
    register_spec(
        f"plain{_depth}", family="resnet", block=_block, layers=_layers, residual=False,
        description=f"plain twin of ResNet-{_depth}: the same layers without shortcuts",
    )

for _name, _layers, _groups, _wpg, _desc in (
    ("resnext50_32x4d", (3, 4, 6, 3), 32, 4, "ResNeXt-50 32x4d (Xie et al. 2017)"),
    ("resnext101_32x8d", (3, 4, 23, 3), 32, 8, "ResNeXt-101 32x8d (Xie et al. 2017)"),
    ("resnext101_64x4d", (3, 4, 23, 3), 64, 4, "ResNeXt-101 64x4d (Xie et al. 2017)"),
    ("wide_resnet50_2", (3, 4, 6, 3), 1, 128, "Wide ResNet-50-2: bottleneck 3x3 twice as wide"),
    ("wide_resnet101_2", (3, 4, 23, 3), 1, 128, "Wide ResNet-101-2: bottleneck 3x3 twice as wide"),
):
    register_spec(_name, family="resnet", block="bottleneck", layers=_layers, groups=_groups,
                  width_per_group=_wpg, description=_desc)


def cifar_spec(depth: int, *, residual: bool = True, name: str | None = None) -> ArchSpec:
    """The 6n+2-layer CIFAR network of He et al. 2015 §4.2: 3 stages of n basic blocks, 16/32/64 filters."""
    if depth < 8 or (depth - 2) % 6:
        raise SpecError(
            f"CIFAR ResNets have 6n+2 layers (3 stages of n two-conv blocks, plus the first conv and the fc): "
            f"{depth} is not 6n+2 for a whole n >= 1; try {_nearest_cifar_depths(depth)}"
        )
    n = (depth - 2) // 6
    kind = "ResNet" if residual else "plain net"
    return ArchSpec(
        name=name or (f"cifar_resnet{depth}" if residual else f"cifar_plain{depth}"),
        family="resnet", block="basic", layers=(n, n, n), widths=(16, 32, 64), strides=(1, 2, 2),
        stem="cifar", stem_width=16, shortcut="A", residual=residual, num_classes=10, input_size=32,
        description=f"CIFAR {kind}-{depth} (He et al. 2015 §4.2): 3 stages of {n} basic blocks, 16/32/64 filters",
    )


def _nearest_cifar_depths(depth: int) -> str:
    n = max(1, round((depth - 2) / 6))
    options = sorted({6 * max(1, n - 1) + 2, 6 * n + 2, 6 * (n + 1) + 2})
    return " or ".join(str(d) for d in options if d != depth)


for _depth in CIFAR_DEPTHS:
    register(f"resnet{_depth}")(partial(cifar_spec, _depth, name=f"resnet{_depth}"))
    register(f"plain{_depth}")(partial(cifar_spec, _depth, residual=False, name=f"plain{_depth}"))


@register_parametric(r"cifar_resnet(\d+)", "cifar_resnet<depth>", "any 6n+2 CIFAR ResNet, option A shortcuts")
def _parse_cifar_resnet(m: re.Match[str]) -> ArchSpec:
    return cifar_spec(int(m.group(1)))


@register_parametric(r"cifar_plain(\d+)", "cifar_plain<depth>", "the plain twin of any 6n+2 CIFAR ResNet")
def _parse_cifar_plain(m: re.Match[str]) -> ArchSpec:
    return cifar_spec(int(m.group(1)), residual=False)
