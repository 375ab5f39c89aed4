"""Squeeze-and-excitation (Hu et al. 2018) as a spec field of ResNet and ResNeXt blocks.

The oracle is a port of timm's SE ResNet (``timm/models/resnet.py``: ``Bottleneck`` with ``attn_layer='se'``,
``timm/layers/squeeze_excite.py``: ``SEModule``), written here with timm's module and key names: its state dict
must load into ours with ``strict=True`` and give the same logits. Counts: timm's published ``seresnet50``
28,088,024 and ``seresnext50_32x4d`` 27,559,896 parameters, and the same by hand.
"""

import pytest
import torch
import torch.nn.functional as F
from timm_nets import randomise
from torch import nn

from resnet_cli import build_model, get_spec
from resnet_cli.analysis.counts import count_params
from resnet_cli.analysis.fvcore_engine import conv_linear_macs
from resnet_cli.analysis.paths import block_names
from resnet_cli.errors import SpecError
from resnet_cli.plan import plan_model


# --------------------------------------------------------------------------- timm's layout, ported
def make_divisible(v, divisor=8, min_value=None, round_limit=0.9):
    """timm.layers.helpers.make_divisible."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


class SEModule(nn.Module):
    """timm's SEModule with its defaults: rd_ratio 1/16, rd_divisor 8, round_limit 0, bias, ReLU, sigmoid."""

    def __init__(self, channels, rd_ratio=1 / 16, rd_divisor=8):
        super().__init__()
        rd_channels = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)
        self.fc1 = nn.Conv2d(channels, rd_channels, kernel_size=1, bias=True)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=True)

    def forward(self, x):
        x_se = x.mean((2, 3), keepdim=True)
        x_se = self.fc2(self.act(self.bn(self.fc1(x_se))))
        return x * x_se.sigmoid()


class TimmBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, cardinality=1, base_width=64):
        super().__init__()
        width = int(planes * (base_width / 64)) * cardinality
        outplanes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, outplanes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.se = SEModule(outplanes)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.se(self.bn3(self.conv3(x)))
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return F.relu(x + shortcut)


class TimmSEResNet(nn.Module):
    """timm.models.resnet.ResNet(Bottleneck, [3, 4, 6, 3], block_args=dict(attn_layer='se'), ...)."""

    def __init__(self, layers=(3, 4, 6, 3), cardinality=1, base_width=64, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for i, (n, planes) in enumerate(zip(layers, (64, 128, 256, 512))):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                downsample = None
                if j == 0 and (stride != 1 or inplanes != planes * 4):
                    downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                               nn.BatchNorm2d(planes * 4))
                blocks.append(TimmBottleneck(inplanes, planes, stride if j == 0 else 1, downsample, cardinality,
                                             base_width))
                inplanes = planes * 4
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.global_pool(x), 1))


# --------------------------------------------------------------------------- the tests
TIMM = {"seresnet50": (1, 64, 28_088_024), "seresnext50_32x4d": (32, 4, 27_559_896)}


def se_params_by_hand() -> int:
    """Per bottleneck of C output channels: fc1 C*(C/16) + C/16, fc2 (C/16)*C + C; 3, 4, 6, 3 blocks."""
    return sum(n * (2 * c * (c // 16) + c // 16 + c) for n, c in zip((3, 4, 6, 3), (256, 512, 1024, 2048)))


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_state_dict_loads_strict_with_equal_logits(name):
    groups, width, published = TIMM[name]
    timm_model = TimmSEResNet(cardinality=groups, base_width=width)
    randomise(timm_model)
    ours = build_model(name)
    assert sum(p.numel() for p in timm_model.parameters()) == published == plan_model(get_spec(name)).params
    ours.load_state_dict(timm_model.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = timm_model.eval()(x), ours.eval()(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_published_counts_by_hand():
    assert se_params_by_hand() == 2_530_992
    assert plan_model(get_spec("seresnet50")).params == 25_557_032 + se_params_by_hand() == 28_088_024
    assert plan_model(get_spec("seresnext50_32x4d")).params == 25_028_904 + se_params_by_hand() == 27_559_896
    # MACs: the two 1x1 convs on the squeezed 1x1 map, C * C/16 each
    se_macs = sum(n * 2 * c * (c // 16) for n, c in zip((3, 4, 6, 3), (256, 512, 1024, 2048)))
    assert plan_model(get_spec("seresnet50")).macs == 4_089_184_256 + se_macs == 4_091_699_200


@pytest.mark.parametrize("name, overrides", [("seresnet50", {"layers": "1,1,1,1"}),
                                             ("seresnext50_32x4d", {"layers": "1,1,1,1"}),
                                             ("se_resnet20", {}),
                                             ("resnet20", {"se_reduction": 4, "placement": "full_preact"}),
                                             ("resnet20", {"se_reduction": 8, "placement": "bn_after_add"})])
def test_both_engines_agree(name, overrides):
    spec = get_spec(name, input_size=32, **overrides)
    model = build_model(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == plan_model(spec).params
    assert conv_linear_macs(model, torch.randn(1, 3, 32, 32)) == plan_model(spec).macs


def test_cifar_se_resnet_widths_are_c_over_r():
    """Hu et al.'s C / r without timm's rounding to 8: hidden widths 1, 2, 4 in the 16/32/64-channel stages."""
    spec = get_spec("se_resnet20")
    model = build_model(spec)
    assert [r.module.se.fc1.out_channels for r in model.residual_blocks()] == [1] * 3 + [2] * 3 + [4] * 3
    assert plan_model(spec).params == plan_model(get_spec("resnet20")).params + 3 * (49 + 162 + 580)
    assert spec.kind == "SE-ResNet" and get_spec("seresnext50_32x4d").kind == "SE-ResNeXt"


def test_paths_and_lesion_work_unchanged():
    from resnet_cli.analysis.lesion import lesion_study

    spec = get_spec("se_resnet20")
    assert block_names(spec) == [r.name for r in build_model(spec).residual_blocks()]
    torch.manual_seed(0)
    model = build_model(spec, input_size=16).eval()
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    cached, naive = (lesion_study(model, x, y, engine=e, max_k=2, samples=2, batch_size=8,
                                  device=torch.device("cpu")).to_dict() for e in ("cached", "naive"))
    assert cached["single"] == naive["single"] and len(cached["single"]) == 9
    # stochastic depth drops the SE module with its branch
    report = count_params(get_spec("se_resnet20", stochastic_depth=0.5))
    assert report.stochastic_depth["expected_training_macs"] < report.macs


def test_se_fields_are_checked():
    with pytest.raises(SpecError, match="se_reduction"):
        get_spec("resnet20", se_reduction=-1)
    with pytest.raises(SpecError, match="se_reduction applies to resnet and highway nets, not to densenet"):
        get_spec("densenet121", se_reduction=16)
