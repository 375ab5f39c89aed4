"""The ``keras`` family: small residual nets written in Keras, ported layer for layer (models/keras.py builds
the same layers with the same names). Keras convs and dense layers carry a bias.

- ``keras_resnet_v1`` / ``keras_resnet_v2``: the two-block ``resnet_v1`` / ``resnet_v2`` Keras models of a study
  note on He et al. 2015 ("Deep Residual Learning for Image Recognition") and He et al. 2016 ("Identity
  Mappings in Deep Residual Networks"), built of ``res_block_v1`` / ``res_block_v2`` units;
- ``keras_minimodel``: ``MiniModel`` of "Understanding Residual Networks" (Towards Data Science,
  https://towardsdatascience.com/understanding-residual-networks-9add4b664b03), built of pre-activation ``Unit``s.
"""

from __future__ import annotations

from ..families import Family, StateDictKeys
from ..spec import ArchSpec, check_stage_lengths
from .layers import LayerCount, Shape, bn, conv, linear, pool
from .model import ModelPlan, UnitPlan
from .resnet import layers_could_fit


def keras_blocks(spec: ArchSpec) -> list[tuple[str, str, int, int]]:
    """(name, stage, width, stride) of every block in forward order: stage i has layers[i] blocks of
    widths[i] filters, the first at strides[i] (a 2x2 max-pool on the branch, a strided 1x1 on the shortcut)."""
    out = []
    for i, (n, width, stride) in enumerate(zip(spec.layers, spec.widths, spec.strides)):
        out += [(f"layer{i + 1}.{j}", f"layer{i + 1}", width, stride if j == 0 else 1) for j in range(n)]
    return out


def head_features(spec: ArchSpec, shape: Shape) -> int:
    """Inputs of the dense layer after Flatten: MiniModel average-pools 4x4 first, resnet_v1/v2 flatten the map."""
    c, h, w = shape
    if spec.block == "minimodel_unit":
        h, w = h // 4, w // 4
    return c * h * w


def plan_keras(spec: ArchSpec) -> ModelPlan:
    shape: Shape = (spec.in_channels, *spec.input_hw)
    stem = UnitPlan("stem", "stem", shape)
    stem.add("stem", conv("conv1", shape, spec.stem_width, 3, bias=True))
    units = [stem]
    shape = stem.out_shape
    preact = spec.block in ("res_block_v2", "minimodel_unit")
    for name, stage, width, stride in keras_blocks(spec):
        changes_shape = stride != 1 or shape[0] != width
        unit = UnitPlan(name, stage, shape, is_block=True, downsample=changes_shape)
        current = shape
        if stride != 1:
            current = unit.add("branch", pool(f"{name}.pool", current, 2, 2)).out_shape
        for i in (1, 2):
            if preact:
                unit.add("branch", bn(f"{name}.bn{i}", current))
            current = unit.add("branch", conv(f"{name}.conv{i}", current, width, 3, bias=True)).out_shape
            if not preact:
                unit.add("branch", bn(f"{name}.bn{i}", current))
        if changes_shape and spec.residual:
            unit.add("shortcut", conv(f"{name}.shortcut_conv", shape, width, 1, stride, padding=0, bias=True))
        units.append(unit)
        shape = current
    head = UnitPlan("head", "head", shape)
    if spec.block != "res_block_v1":
        head.add("head", bn("head_bn", shape))
    if spec.block == "minimodel_unit":
        head.add("head", pool("avgpool", shape, 4, 4, average=True))
    head.add("head", LayerCount("flatten", "flatten", 0, 0, (head_features(spec, shape), 1, 1), "Flatten"),
             linear("fc", head_features(spec, shape), spec.num_classes))
    units.append(head)
    return ModelPlan(spec, units, head.out_shape)


def keras_kind(spec: ArchSpec) -> str:
    kind = "Keras MiniModel" if spec.block == "minimodel_unit" else f"Keras {spec.block.replace('res_block', 'resnet')}"
    return kind if spec.residual else f"{kind}, plain"


FAMILIES = (
    Family("keras", ("res_block_v1", "res_block_v2", "minimodel_unit"), plan_keras,
           builder="resnet_cli.models.keras:KerasNet", zoo="resnet_cli.zoo.keras", kind=keras_kind,
           check=check_stage_lengths, state_dicts=StateDictKeys(could_fit=layers_could_fit)),
)
