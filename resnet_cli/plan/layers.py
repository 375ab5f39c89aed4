"""Counting rules for single layers, by arithmetic (no torch).

Conventions (the ResNet paper's and torchvision's): a *MAC* is one multiply-add, the papers' "FLOP".
Only convolutions and linear layers are charged MACs; a bias adds parameters but no MACs; batch norm adds
2 parameters per channel (weight and bias; running statistics are buffers, not parameters) and no MACs;
pooling, ReLU, zero-padding and the residual addition are free. This is what fvcore counts for conv and
linear layers, and what torchvision's documented GFLOPS are.
"""

from __future__ import annotations

from dataclasses import dataclass

Shape = tuple[int, int, int]  # (channels, height, width) of one image

#: How a block changes the shape it is given, as the tables, JSON and figures name it: a *downsampling* block
#: shrinks the map (a stride of 2: ResNet-50's layer2.0, 56x56 -> 28x28); a *projection* block keeps the map and
#: changes the width, its shortcut projecting to it (ResNet-50's layer1.0: 64 -> 256 channels at 56x56).
SHAPE_CHANGES = ("downsampling", "projection")


def shape_change(in_shape: tuple[int, ...], out_shape: tuple[int, ...], projects: bool) -> str | None:
    """"downsampling", "projection" or None for a block from ``in_shape`` to ``out_shape``, each (channels, height,
    width) of one image; ``projects``: its shortcut is a projection (a 1x1 conv, or one that carries a change of
    width). A DenseNet layer, which adds maps by concatenation, and a plain layer, which has no shortcut, are
    neither, unless the map shrinks."""
    if tuple(in_shape[1:]) != tuple(out_shape[1:]):
        return "downsampling"
    return "projection" if projects else None


# What a layer is for in the network: the planners set it, and every analysis asks it instead of guessing from
# names. ``branch`` layers are the residual function F of a block (what a lesion or stochastic depth deletes);
# ``shortcut`` and ``gate`` layers stay when the branch is deleted, and so do ``merge`` layers, which follow the
# addition (the BN of the bn_after_add placement); ``transition`` layers sit between DenseNet blocks; ``stem`` and
# ``head`` open and close the network.
ROLES = ("stem", "branch", "shortcut", "gate", "merge", "transition", "head")


@dataclass(frozen=True)
class LayerCount:
    name: str  # the module's state-dict prefix, e.g. "layer1.0.conv1"
    kind: str  # conv | bn | linear | pool | shortcut | concat | flatten
    params: int
    macs: int
    out_shape: Shape
    detail: str = ""  # "3x3/2 64->128", for per-layer tables
    role: str = ""  # one of ROLES (set by UnitPlan.add)
    block: str = ""  # the residual block it belongs to ("layer1.0"); "" outside blocks
    # Geometry of convs and pools (0 kernel for layers without one): what receptive fields and strides need.
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    groups: int = 1

    def placed(self, role: str, block: str, name: str | None = None) -> LayerCount:
        """This layer with its role and block (and ``name``, if given): ``dataclasses.replace(self, role=role,
        block=block)`` at a seventh of its cost (a plan places thousands of layers, and ``resnet-cli archs`` plans
        every registered net)."""
        layer = object.__new__(LayerCount)
        # a frozen dataclass, so not setattr
        layer.__dict__.update(self.__dict__, role=role, block=block, name=self.name if name is None else name)
        return layer


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def conv(name: str, shape: Shape, out_channels: int, kernel: int, stride: int = 1, padding: int | None = None,
         groups: int = 1, bias: bool = False) -> LayerCount:
    """A 2-D convolution; padding defaults to kernel // 2 ('same' for odd kernels at stride 1)."""
    cin, h, w = shape
    if cin % groups or out_channels % groups:
        raise ValueError(f"{name}: {cin}->{out_channels} channels do not split into {groups} groups")
    pad = kernel // 2 if padding is None else padding
    oh, ow = conv_out(h, kernel, stride, pad), conv_out(w, kernel, stride, pad)
    weights = out_channels * (cin // groups) * kernel * kernel
    detail = f"{kernel}x{kernel}/{stride} {cin}->{out_channels}" + (f" g{groups}" if groups > 1 else "")
    return LayerCount(name, "conv", weights + (out_channels if bias else 0), weights * oh * ow,
                      (out_channels, oh, ow), detail, kernel=kernel, stride=stride, padding=pad, groups=groups)


def bn(name: str, shape: Shape) -> LayerCount:
    return LayerCount(name, "bn", 2 * shape[0], 0, shape, f"{shape[0]}")


def bn_statistics(layer: LayerCount) -> int:
    """The running mean and variance a batch norm layer keeps per channel (buffers, not parameters); 0 for other
    layers."""
    return 2 * layer.out_shape[0] if layer.kind == "bn" else 0


def linear(name: str, in_features: int, out_features: int, bias: bool = True) -> LayerCount:
    return LayerCount(name, "linear", in_features * out_features + (out_features if bias else 0),
                      in_features * out_features, (out_features, 1, 1), f"{in_features}->{out_features}")


def pool(name: str, shape: Shape, kernel: int, stride: int, padding: int = 0, average: bool = False) -> LayerCount:
    """Max pooling, or average pooling where ``average`` (its detail then ends in "average", as the ResNet-D
    shortcut's pool does): ``draw`` labels them apart, as the DenseNet paper's Table 1 does."""
    c, h, w = shape
    out = (c, conv_out(h, kernel, stride, padding), conv_out(w, kernel, stride, padding))
    detail = f"{kernel}x{kernel}/{stride}" + (" average" if average else "")
    return LayerCount(name, "pool", 0, 0, out, detail, kernel=kernel, stride=stride, padding=padding)


def global_pool(name: str, shape: Shape) -> LayerCount:
    return LayerCount(name, "pool", 0, 0, (shape[0], 1, 1), "global average", kernel=shape[1], stride=shape[1])
