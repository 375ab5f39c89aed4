"""DenseNets (Huang et al. 2017): torchvision's ImageNet models and the paper's CIFAR models (Table 2).

ImageNet: DenseNet-BC with k = 32 (48 for 161), a 2k-channel 7x7 stem, bn_size 4 and compression 0.5, as in
torchvision (same parameter counts and state-dict keys). CIFAR: 3 dense blocks after a 3x3 conv;
``densenet<L>_<k>`` is the plain DenseNet ((L - 4)/3 layers of BN-ReLU-conv3x3 per block, 16-channel stem, no
compression) and ``densenet_bc<L>_<k>`` DenseNet-BC ((L - 4)/6 bottleneck layers per block, a 2k stem,
compression 0.5).
"""

from __future__ import annotations

import re
from functools import partial

from ..errors import SpecError
from ..registry import register, register_parametric, register_spec
from ..spec import ArchSpec

IMAGENET = {
    121: ((6, 12, 24, 16), 32, 64),
    161: ((6, 12, 36, 24), 48, 96),
    169: ((6, 12, 32, 32), 32, 64),
    201: ((6, 12, 48, 32), 32, 64),
    264: ((6, 12, 64, 48), 32, 64),  # the paper's Table 1; not in torchvision
}
for _depth, (_layers, _k, _stem) in IMAGENET.items():
    register_spec(
        f"densenet{_depth}", family="densenet", block="dense", layers=_layers, widths=(_k,) * 4,
        strides=(1, 2, 2, 2), stem="imagenet", stem_width=_stem, growth_rate=_k, bn_size=4, compression=0.5,
        description=f"DenseNet-{_depth} (Huang et al. 2017, Table 1), k={_k}, torchvision layout",
    )


def cifar_densenet_spec(depth: int, k: int, bc: bool, name: str | None = None) -> ArchSpec:
    per = 6 if bc else 3
    if depth < 4 + per or (depth - 4) % per:
        kind = "DenseNet-BC" if bc else "DenseNet"
        raise SpecError(f"a CIFAR {kind} has {per}n+4 layers (3 dense blocks of n layers); {depth} is not")
    if k < 1:
        raise SpecError("the growth rate k must be at least 1")
    n = (depth - 4) // per
    return ArchSpec(
        name=name or (f"densenet_bc{depth}_{k}" if bc else f"densenet{depth}_{k}"), family="densenet",
        block="dense", layers=(n, n, n), widths=(k, k, k), strides=(1, 2, 2), stem="cifar",
        stem_width=2 * k if bc else 16, growth_rate=k, bn_size=4 if bc else 0, compression=0.5 if bc else 1.0,
        num_classes=10, input_size=32,
        description=(f"DenseNet{'-BC' if bc else ''} (L={depth}, k={k}) (Huang et al. 2017, Table 2), CIFAR, "
                     f"3 blocks of {n} layers"),
    )


for _depth, _k, _bc in ((40, 12, False), (100, 12, True), (250, 24, True), (190, 40, True)):
    _name = f"densenet_bc{_depth}_{_k}" if _bc else f"densenet{_depth}_{_k}"
    register(_name)(partial(cifar_densenet_spec, _depth, _k, _bc))


@register_parametric(r"densenet(\d+)_(\d+)", "densenet<L>_<k>", "a CIFAR DenseNet (L = 3n+4 layers, growth k)")
def _parse_densenet(m: re.Match[str]) -> ArchSpec:
    return cifar_densenet_spec(int(m.group(1)), int(m.group(2)), bc=False)


@register_parametric(r"densenet_bc(\d+)_(\d+)", "densenet_bc<L>_<k>", "a CIFAR DenseNet-BC (L = 6n+4, growth k)")
def _parse_densenet_bc(m: re.Match[str]) -> ArchSpec:
    return cifar_densenet_spec(int(m.group(1)), int(m.group(2)), bc=True)
