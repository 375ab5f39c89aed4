"""The ``vgg`` family: Simonyan & Zisserman 2015 ("Very Deep Convolutional Networks for Large-Scale Image
Recognition"), the plain baseline of He et al. 2015 (Table 3, Figure 3), in torchvision's layout and key names
(models/vgg.py builds the same layers with the same names).

torchvision's ``features`` is one flat Sequential: each 3x3 conv (with bias) is followed by BN (``_bn``
nets only) and ReLU, each stage by a 2x2/2 max-pool; the indices count every one of those modules, so
``features.0`` is the first conv, ``features.1`` its BN (or ReLU). Then ``avgpool`` (adaptive average to 7x7,
the identity at 224x224) and ``classifier.0``/``.3``/``.6``: fc 4096, fc 4096, fc num_classes (ReLU and
dropout at the indices between).

How the spec says it: ``layers[i]`` convs of ``widths[i]`` channels in stage i, closed by a max-pool where
``strides[i]`` is 2; ``block`` is ``conv`` (VGG-11/13/16/19) or ``conv_bn`` (the ``_bn`` nets). A VGG is plain:
``residual`` is False. For the lesion analysis each conv (with its BN and ReLU) is a *block* without a
shortcut, as a plain twin's blocks are: deleting one puts an identity in its place, which only a conv whose
input and output shapes agree allows. The pools are not blocks.
"""

from __future__ import annotations

from ..errors import SpecError
from ..families import Family, Shapes, StateDictKeys
from ..spec import ArchSpec, check_stage_lengths
from .layers import LayerCount, Shape, bn, conv, linear, pool
from .model import ModelPlan, UnitPlan

BLOCKS = ("conv", "conv_bn")
HIDDEN = 4096  # the classifier's two hidden fully connected layers
POOLED = 7  # torchvision's AdaptiveAvgPool2d((7, 7)) before the classifier


def feature_modules(spec: ArchSpec) -> list[tuple[str, int, int]]:
    """torchvision's ``features`` in order: (kind, stage index, width) with kind ``conv``, ``bn``, ``relu`` or
    ``pool``; a module's position in the list is its index in ``features.N``."""
    out: list[tuple[str, int, int]] = []
    for i, (n, width, stride) in enumerate(zip(spec.layers, spec.widths, spec.strides)):
        for _ in range(n):
            out.append(("conv", i, width))
            if spec.block == "conv_bn":
                out.append(("bn", i, width))
            out.append(("relu", i, width))
        if stride == 2:
            out.append(("pool", i, width))
    return out


def pooled_kernel(size: int) -> int:
    """The window that adaptive average pooling to 7 uses on a ``size``-pixel map, for the receptive field (1
    where it copies or keeps pixels: at 224x224 the map is 7x7 already)."""
    return max(1, size // POOLED)


def plan_vgg(spec: ArchSpec) -> ModelPlan:
    shape: Shape = (spec.in_channels, *spec.input_hw)
    units: list[UnitPlan] = []
    unit: UnitPlan | None = None
    for index, (kind, stage, width) in enumerate(feature_modules(spec)):
        name, stage_name = f"features.{index}", f"conv{stage + 1}"
        if kind == "conv":
            unit = UnitPlan(name, stage_name, shape, is_block=True, downsample=shape[0] != width)
            shape = unit.add("branch", conv(name, shape, width, 3, bias=True)).out_shape
            units.append(unit)
        elif kind == "bn" and unit is not None:
            unit.add("branch", bn(name, shape))
        elif kind == "pool":
            # between blocks, as a DenseNet's transitions are: it is not deleted with a conv
            down = UnitPlan(name, stage_name, shape)
            shape = down.add("transition", pool(name, shape, 2, 2)).out_shape
            units.append(down)
    head = UnitPlan("head", "head", shape)
    k = pooled_kernel(shape[1])
    pooled = (shape[0], POOLED, POOLED)
    head.add("head", LayerCount("avgpool", "pool", 0, 0, pooled, f"adaptive {POOLED}x{POOLED} average",
                                kernel=k, stride=k))
    features = shape[0] * POOLED * POOLED
    head.add("head", LayerCount("flatten", "flatten", 0, 0, (features, 1, 1), "Flatten"),
             linear("classifier.0", features, HIDDEN), linear("classifier.3", HIDDEN, HIDDEN),
             linear("classifier.6", HIDDEN, spec.num_classes))
    units.append(head)
    return ModelPlan(spec, units, head.out_shape)


def check_vgg(spec: ArchSpec) -> None:
    check_stage_lengths(spec)
    if spec.residual:
        raise SpecError("a VGG net has no shortcuts (residual=false is its definition); for a residual twin "
                        "use a resnet arch")
    if spec.groups != 1 or spec.width_per_group != 64:
        raise SpecError("a VGG net's convs are not grouped (groups=1, width_per_group=64)")
    halvings = sum(1 for s in spec.strides if s == 2)
    if min(spec.input_hw) < 2 ** halvings:
        raise SpecError(f"this VGG halves the map {halvings} times: the input must be at least {2 ** halvings} "
                        f"pixels a side (got {min(spec.input_hw)})")


def vgg_depth(spec: ArchSpec) -> int:
    """Simonyan & Zisserman's count, the number in the name: the convs and the three fc layers."""
    return spec.num_blocks + 3


def vgg_kind(spec: ArchSpec) -> str:
    return "VGG with BN" if spec.block == "conv_bn" else "VGG"


def vgg_could_fit(spec: ArchSpec, shapes: Shapes) -> bool:
    """torchvision's ``features`` opens with ``features.0`` (a DenseNet's with ``features.conv0``) and holds one
    4-d weight per conv."""
    convs = sum(1 for key, shape in shapes.items()
                if key.startswith("features.") and key.endswith(".weight") and len(shape) == 4)
    return "features.0.weight" in shapes and convs == sum(spec.layers)


VGG_KEYS = StateDictKeys(head="classifier.6.weight", stem="features.0.weight", could_fit=vgg_could_fit)
FAMILIES = (
    Family("vgg", BLOCKS, plan_vgg, builder="resnet_cli.models.vgg:VGG", zoo="resnet_cli.zoo.vgg", kind=vgg_kind,
           check=check_vgg, depth=vgg_depth, state_dicts=VGG_KEYS),
)
