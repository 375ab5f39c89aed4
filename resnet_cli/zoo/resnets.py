"""ResNets of He et al. 2015 (ImageNet and CIFAR), their plain twins, ResNeXt and Wide ResNet (ImageNet).

ImageNet models follow torchvision's ``models/resnet.py`` exactly (same parameter counts, same state-dict keys);
ResNeXt and Wide ResNet are arguments of the bottleneck (``groups``, ``width_per_group``), not new classes.
CIFAR models are the 6n+2 networks of the paper's §4.2 with option A (zero-padding) shortcuts.
"""

from __future__ import annotations

import dataclasses
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


# Squeeze-and-excitation (Hu et al. 2018) on torchvision's ResNet-50 and ResNeXt-50: timm's seresnet50 and
# seresnext50_32x4d (r = 16, hidden widths rounded to multiples of 8; the same keys, plus layerN.M.se.fc1/fc2).
for _name, _groups, _wpg, _desc in (("seresnet50", 1, 64, "SE-ResNet-50"),
                                    ("seresnext50_32x4d", 32, 4, "SE-ResNeXt-50 32x4d")):
    register_spec(_name, family="resnet", block="bottleneck", layers=IMAGENET_DEPTHS[50][1], groups=_groups,
                  width_per_group=_wpg, se_reduction=16, se_divisor=8,
                  description=f"{_desc} (Hu et al. 2018), r=16, timm layout")


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


@register_parametric(r"se_resnet(\d+)", "se_resnet<depth>", "a 6n+2 CIFAR ResNet with squeeze-and-excitation, r=16")
def _parse_se_resnet(m: re.Match[str]) -> ArchSpec:
    depth = int(m.group(1))
    spec = cifar_spec(depth, name=f"se_resnet{depth}")
    return dataclasses.replace(spec, se_reduction=16, description=f"SE-ResNet-{depth} (Hu et al. 2018), CIFAR: "
                               f"ResNet-{depth} with an SE module (r=16, C/16 hidden) on every block")


# --------------------------------------------------------------------------- pre-activation ResNets
# He et al. 2016, "Identity Mappings in Deep Residual Networks": full pre-activation units (BN-ReLU-conv, nothing
# after the addition), laid out as the authors' code has them (examples/zoo_tables.md says what each count was
# checked against):
# - CIFAR 164 and 1001 = 9n+2 with bottleneck units (16, 32, 64 planes; 64, 128, 256 channels out), as in
#   KaimingHe/resnet-1k-layers' resnet-pre-act.lua: the stride in the first 1x1, the BN-ReLU shared with the
#   shortcut where the shape changes, a bare 1x1 conv projection there (option B);
# - CIFAR 110 = 6n+2 with basic units, as fb.resnet.torch's preresnet.lua with its CIFAR default, option A.
PREACT_CIFAR = {110: ("basic", 18, "A"), 164: ("bottleneck", 18, "B"), 1001: ("bottleneck", 111, "B")}
for _depth, (_block, _n, _shortcut) in PREACT_CIFAR.items():
    register_spec(
        f"preact_resnet{_depth}", family="resnet", block=_block, layers=(_n, _n, _n), widths=(16, 32, 64),
        strides=(1, 2, 2), stem="cifar", stem_width=16, shortcut=_shortcut, placement="full_preact",
        stride_in_1x1=_block == "bottleneck", num_classes=10, input_size=32,
        description=f"pre-activation ResNet-{_depth} (He et al. 2016), CIFAR, {_n} {_block} units per stage",
    )

# ImageNet pre-activation ResNets as fb.resnet.torch's preresnet.lua (the code of the paper's ImageNet ResNet-200,
# Table 5): torchvision's stages, the stride in the 3x3, a conv-BN-ReLU-max-pool stem after which the first block
# has no BN-ReLU of its own, bare 1x1 conv projections, a final BN-ReLU before the pool. The same counts as timm's
# resnetv2_* (whose stem has no BN and whose first block has one instead: ``stem_norm=False``).
PREACT_IMAGENET = {**IMAGENET_DEPTHS, 200: ("bottleneck", (3, 24, 36, 3))}
for _depth, (_block, _layers) in PREACT_IMAGENET.items():
    register_spec(
        f"preact_resnet{_depth}", family="resnet", block=_block, layers=_layers, placement="full_preact",
        description=f"pre-activation ResNet-{_depth} (He et al. 2016), ImageNet, fb.resnet.torch's layout",
    )


# --------------------------------------------------------------------------- the ResNet paper's layout, ResNet-D
# ResNet v1 as in He et al. 2015, Table 1 (the released Caffe models): the bottleneck strides in its first 1x1.
# Its MACs are Table 1's FLOPs (3.8, 7.6, 11.3 x 10^9); torchvision's "v1.5" (stride in the 3x3) has more.
# ResNet-18/34 have no such variant: a basic block's first conv is its 3x3.
for _depth in (50, 101, 152):
    register_spec(
        f"resnet{_depth}_v1", family="resnet", block="bottleneck", layers=IMAGENET_DEPTHS[_depth][1],
        stride_in_1x1=True, description=f"ResNet-{_depth} v1 (He et al. 2015, Table 1): stride in the first 1x1",
    )
# ResNet-D (He et al. 2019, "Bag of Tricks", Fig. 2c) as timm's resnet50d: a deep stem of three 3x3 convs
# (32, 32, 64) and average-pool downsampling shortcuts.
register_spec(
    "resnet50d", family="resnet", block="bottleneck", layers=IMAGENET_DEPTHS[50][1], stem="deep", avg_down=True,
    description="ResNet-50-D (He et al. 2019): deep 3x3 stem, avg-pool shortcuts, timm layout",
)


# --------------------------------------------------------------------------- ResNeXt on CIFAR
# Xie et al. 2017 §5.3: ResNeXt-29 = 3 stages of 3 bottleneck blocks (9 x 3 + 2 layers), a 3x3/64 stem,
# stage outputs 256, 512, 1024 and the grouped 3x3 C x d wide in stage 1, doubling per stage.
for _c in (8, 16):
    register_spec(
        f"resnext29_{_c}x64d", family="resnet", block="bottleneck", layers=(3, 3, 3), widths=(64, 128, 256),
        strides=(1, 2, 2), stem="cifar", stem_width=64, groups=_c, width_per_group=64, shortcut="B",
        num_classes=10, input_size=32,
        description=f"ResNeXt-29 {_c}x64d (Xie et al. 2017 §5.3), CIFAR",
    )


# --------------------------------------------------------------------------- Wide ResNets
def wrn_spec(depth: int, k: int, name: str | None = None) -> ArchSpec:
    """WRN-d-k (Zagoruyko & Komodakis 2016): 3 stages of n = (d - 4)/6 pre-activation basic blocks of
    16k, 32k, 64k filters after a 3x3/16 conv; 1x1 conv shortcuts where the shape changes. Dropout between
    the convolutions with ``dropout`` (the paper uses 0.3).

    The name counts convolutions the paper's way: 6n conv layers in blocks + conv1 + the three 1x1 shortcut
    convs = 6n + 4; so does ``spec.depth`` for these nets (He et al.'s longest-path count would give 6n + 2)."""
    if depth < 10 or (depth - 4) % 6:
        raise SpecError(f"Wide ResNets have 6n+4 layers: {depth} is not 6n+4 for a whole n >= 1 "
                        f"(try {6 * max(1, round((depth - 4) / 6)) + 4})")
    if k < 1:
        raise SpecError("the widening factor k must be at least 1")
    n = (depth - 4) // 6
    return ArchSpec(
        name=name or f"wrn{depth}_{k}", family="resnet", block="basic", layers=(n, n, n),
        widths=(16 * k, 32 * k, 64 * k), strides=(1, 2, 2), stem="cifar", stem_width=16, shortcut="B",
        placement="full_preact", num_classes=10, input_size=32,
        description=f"WRN-{depth}-{k} (Zagoruyko & Komodakis 2016), CIFAR: {n} pre-activation blocks per stage, "
                    f"{16 * k}/{32 * k}/{64 * k} filters",
    )


for _depth, _k in ((28, 10), (40, 4), (16, 8)):
    register(f"wrn{_depth}_{_k}")(partial(wrn_spec, _depth, _k))


@register_parametric(r"wrn(\d+)_(\d+)", "wrn<depth>_<k>", "any Wide ResNet WRN-d-k (d = 6n+4), CIFAR")
def _parse_wrn(m: re.Match[str]) -> ArchSpec:
    return wrn_spec(int(m.group(1)), int(m.group(2)))


# --------------------------------------------------------------------------- highway networks
def highway_spec(depth: int, name: str | None = None) -> ArchSpec:
    """A highway net (Srivastava et al. 2015) in the CIFAR 6n+2 layout: every block is
    ``T(x) * H(x) + (1 - T(x)) * x`` with H = conv-BN-ReLU-conv-BN-ReLU and the transform gate
    T = sigmoid(1x1 conv(x) + b_T), b_T = -2 (the paper's negative initial bias, so blocks start by carrying).
    Where the shape changes the carry path is option A (subsample, zero-pad)."""
    spec = cifar_spec(depth, name=name or f"highway{depth}")
    return dataclasses.replace(
        spec, family="highway", placement="relu_before_add", shortcut_mode="exclusive_gating", gate_bias=-2.0,
        description=f"highway net, {depth} layers (Srivastava et al. 2015): gated CIFAR ResNet-{depth} layout",
    )


register("highway110")(partial(highway_spec, 110))


@register_parametric(r"highway(\d+)", "highway<depth>", "a highway net in the 6n+2 CIFAR layout (gated shortcuts)")
def _parse_highway(m: re.Match[str]) -> ArchSpec:
    return highway_spec(int(m.group(1)))
