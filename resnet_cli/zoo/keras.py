"""The Keras models of the ``keras`` family (plan/keras.py says where each comes from)."""

from __future__ import annotations

from ..registry import register_spec

register_spec(
    "keras_resnet_v1", family="keras", block="res_block_v1", layers=(1, 1), widths=(16, 32), strides=(1, 1),
    stem="cifar", stem_width=16, num_classes=10, input_size=32,
    description="Keras resnet_v1: conv16 -> res_block_v1(16,16) -> res_block_v1(16,32) -> flatten -> dense10 "
                "(the original unit of He et al. 2015)",
)
register_spec(
    "keras_resnet_v2", family="keras", block="res_block_v2", layers=(1, 1), widths=(16, 32), strides=(1, 1),
    stem="cifar", stem_width=16, num_classes=10, input_size=32,
    description="Keras resnet_v2: pre-activation res_block_v2 twice (He et al. 2016), BN, flatten, dense10",
)
register_spec(
    "keras_minimodel", family="keras", block="minimodel_unit", layers=(3, 3, 3, 3), widths=(32, 64, 128, 256),
    strides=(1, 2, 2, 2), stem="cifar", stem_width=32, dropout=0.25, num_classes=10, input_size=32,
    description="Keras MiniModel ('Understanding Residual Networks', Towards Data Science): conv32, 4 stages of 3 "
                "pre-activation Units (max-pool opens 2-4), BN-ReLU-dropout-avgpool4-dense10",
)
