"""VGG-11/13/16/19 (Simonyan & Zisserman 2015, Table 1: configurations A, B, D, E), with and without batch norm,
in torchvision's layout (``vgg16``, ``vgg16_bn``: the same parameter counts and state-dict keys)."""

from __future__ import annotations

from ..registry import register_spec

CONFIGS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
for _depth, _layers in CONFIGS.items():
    for _bn in (False, True):
        register_spec(
            f"vgg{_depth}{'_bn' if _bn else ''}", family="vgg", block="conv_bn" if _bn else "conv", layers=_layers,
            widths=(64, 128, 256, 512, 512), strides=(2, 2, 2, 2, 2), residual=False, dropout=0.5,
            description=f"VGG-{_depth} (Simonyan & Zisserman 2015, Table 1){' with batch norm' if _bn else ''}, "
                        "the plain baseline of He et al. 2015 (Table 3, Fig. 3), torchvision layout",
        )
