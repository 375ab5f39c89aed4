"""Analytic plan of the ``densenet`` family (models/densenet.py builds the same layers with the same names).

Layout (Huang et al. 2017; torchvision ``models/densenet.py`` for the ImageNet nets):

- stem: ImageNet ``features.conv0`` 7x7/2 -> ``norm0`` -> ReLU -> ``pool0`` 3x3/2 max; CIFAR ``features.conv0``
  3x3 alone (the first dense layer's BN-ReLU follows it), 2k channels for DenseNet-BC, 16 otherwise;
- dense block i: ``layers[i]`` dense layers, each BN-ReLU-conv1x1(bn_size*k)-BN-ReLU-conv3x3(k) with
  ``bn_size`` > 0 (the "B" of BC), or BN-ReLU-conv3x3(k) without; each adds k channels;
- transition i (between blocks): BN-ReLU-conv1x1(floor(theta*m))-avgpool 2x2 (theta = compression, the "C");
- head: ``features.norm5`` -> ReLU -> global average pool -> ``classifier``.
"""

from __future__ import annotations

from ..errors import SpecError
from ..families import Family, Shapes, StateDictKeys
from ..spec import ArchSpec
from .layers import LayerCount, bn, conv, global_pool, linear, pool
from .model import ModelPlan, UnitPlan
from .resnet import stem_plan


def transition_width(spec: ArchSpec, channels: int) -> int:
    """Channels after a transition: floor(theta * m) (torchvision: ``num_features // 2`` for theta = 0.5)."""
    return int(channels * spec.compression)


def plan_densenet(spec: ArchSpec) -> ModelPlan:
    # CIFAR DenseNets start with the conv alone: each dense layer begins with its own BN-ReLU
    stem = stem_plan(spec, ("features.conv0", "features.norm0", "features.pool0"), norm=spec.stem == "imagenet")
    units = [stem]
    shape = stem.out_shape
    k = spec.growth_rate
    for i, n_layers in enumerate(spec.layers, start=1):
        stage = f"denseblock{i}"
        for j in range(1, n_layers + 1):
            name = f"features.{stage}.denselayer{j}"
            unit = UnitPlan(name, stage, shape, is_block=True, downsample=False)
            if spec.bn_size:
                c1 = conv(f"{name}.conv1", shape, spec.bn_size * k, 1, padding=0)
                unit.add("branch", bn(f"{name}.norm1", shape), c1, bn(f"{name}.norm2", c1.out_shape),
                         conv(f"{name}.conv2", c1.out_shape, k, 3))
            else:
                unit.add("branch", bn(f"{name}.norm1", shape), conv(f"{name}.conv1", shape, k, 3))
            shape = (shape[0] + k, shape[1], shape[2])
            # The layer outputs its input and its k new maps, concatenated (free, like the residual addition):
            # the input is the dense layer's shortcut, what stays when the layer is deleted.
            unit.add("shortcut", LayerCount(f"{name}.concat", "concat", 0, 0, shape, f"input + {k} new maps"))
            units.append(unit)
        if i < len(spec.layers):
            name = f"features.transition{i}"
            t = UnitPlan(name, f"transition{i}", shape)
            c = conv(f"{name}.conv", shape, transition_width(spec, shape[0]), 1, padding=0)
            t.add("transition", bn(f"{name}.norm", shape), c, pool(f"{name}.pool", c.out_shape, 2, 2, average=True))
            units.append(t)
            shape = t.out_shape
    head = UnitPlan("head", "head", shape)
    head.add("head", bn("features.norm5", shape), global_pool("avgpool", shape),
             linear("classifier", shape[0], spec.num_classes))
    units.append(head)
    return ModelPlan(spec, units, head.out_shape)


def check_densenet(spec: ArchSpec) -> None:
    if spec.stem == "deep":
        raise SpecError("the deep stem is ResNet-D's; a DenseNet's stem is imagenet or cifar")
    if not spec.residual:
        raise SpecError("a DenseNet's layers pass their input on beside their new maps: that is the net, it has "
                        "no plain form (residual=false); for a plain net use plain<depth> or vgg<depth>")
    if spec.stochastic_depth is not None:
        raise SpecError("stochastic depth drops residual blocks; a DenseNet has none (use a resnet family)")
    if spec.growth_rate < 1 or spec.bn_size < 0:
        raise SpecError("growth_rate must be positive and bn_size at least 0")
    if not 0.0 < spec.compression <= 1.0:
        raise SpecError(f"compression (theta) must be in (0, 1], not {spec.compression}")


def densenet_depth(spec: ArchSpec) -> int:
    """Huang et al. 2017 also count the transition convs: L = 40, 100, 121, ..."""
    per_layer = 2 if spec.bn_size else 1
    return per_layer * spec.num_blocks + (len(spec.layers) - 1) + 2


def densenet_kind(spec: ArchSpec) -> str:
    return "DenseNet-BC" if spec.bn_size and spec.compression < 1 else "DenseNet"


def densenet_could_fit(spec: ArchSpec, shapes: Shapes) -> bool:
    """torchvision's DenseNets keep everything before the classifier under ``features.``, opened by ``conv0``
    (a VGG's ``features`` opens with ``features.0``)."""
    return "features.conv0.weight" in shapes


DENSENET_KEYS = StateDictKeys(head="classifier.weight", stem="features.conv0.weight", could_fit=densenet_could_fit)
FAMILIES = (
    Family("densenet", ("dense",), plan_densenet, builder="resnet_cli.models.densenet:DenseNet",
           zoo="resnet_cli.zoo.densenets", kind=densenet_kind, check=check_densenet, depth=densenet_depth,
           fields=("growth_rate", "bn_size", "compression"), state_dicts=DENSENET_KEYS),
)
