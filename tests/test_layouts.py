"""Layouts as the authors' code has them: the ResNet paper's v1 bottleneck (Table 1), ResNet-D (timm's resnet50d),
and the pre-activation nets of He et al. 2016 (their CIFAR code, KaimingHe/resnet-1k-layers' resnet-pre-act.lua,
and fb.resnet.torch's preresnet.lua for ImageNet).

The oracles are ports, written here with the authors' structure: their modules are built, our modules load their
weights (strict, or by creation order where the Lua code has no names), and the logits must be equal.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from cli_runner import run
from timm_nets import TimmResNetD, randomise
from torch import nn

from resnet_cli import build_model, get_spec
from resnet_cli.analysis.fvcore_engine import conv_linear_macs
from resnet_cli.errors import SpecError
from resnet_cli.plan import plan_model


def _load_by_order(ours, theirs):
    """Copy ``theirs``' state into ``ours`` entry by entry, in creation order, checking every shape."""
    mine, other = ours.state_dict(), theirs.state_dict()
    assert len(mine) == len(other)
    for (k, v), (k2, v2) in zip(mine.items(), other.items()):
        assert v.shape == v2.shape, (k, k2)
    ours.load_state_dict(dict(zip(mine, other.values())), strict=True)


# --------------------------------------------------------------------------- ResNet v1: He et al. 2015, Table 1
V1 = {"resnet50_v1": 3_857_973_248, "resnet101_v1": 7_570_194_432, "resnet152_v1": 11_282_415_616}


@pytest.mark.parametrize("name", sorted(V1))
def test_v1_macs_are_table_1s_flops(name):
    plan = plan_model(get_spec(name))
    assert plan.macs == V1[name]
    # Table 1: 3.8, 7.6, 11.3 x 10^9 FLOPs (multiply-adds; the paper truncates 3.858 and rounds the others);
    # torchvision's v1.5 (4.089, 7.801, 11.514) is off by 0.2 or more. The same parameters as v1.5.
    paper = {"resnet50_v1": 3.8, "resnet101_v1": 7.6, "resnet152_v1": 11.3}[name]
    v15 = plan_model(get_spec(name.removesuffix("_v1")))
    assert abs(plan.macs / 1e9 - paper) < 0.06 < 0.2 <= abs(v15.macs / 1e9 - paper)
    assert plan.params == v15.params


def test_compare_shows_the_v1_figures():
    result = run("compare", "resnet50_v1", "resnet101_v1", "resnet152_v1", "-f", "json")
    assert result.exit_code == 0, result.output
    macs = [a["macs"] for a in json.loads(result.stdout)["archs"]]
    assert macs == list(V1.values())
    assert [round(m / 1e6) for m in macs] == [3858, 7570, 11282]


def test_v1_bottleneck_strides_in_the_first_1x1():
    block = build_model("resnet50_v1").layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    with pytest.raises(SpecError, match="stride_in_1x1"):
        get_spec("resnet18", stride_in_1x1=True)


# ------------------------------------------------------------ ResNet-D: timm's resnet50d, ported in tests/timm_nets.py
def test_resnet50d_loads_timm_keys_strict_with_equal_logits():
    theirs = randomise(TimmResNetD())
    ours = build_model("resnet50d")
    assert sum(p.numel() for p in theirs.parameters()) == 25_576_264 == plan_model(get_spec("resnet50d")).params
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 65, 65)  # odd: the ceil-mode pool and the strided convs must agree on sizes
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), rtol=1e-4, atol=1e-4)


def test_resnet50d_by_hand_and_both_engines():
    deep_stem = 3 * 32 * 9 + 64 + 32 * 32 * 9 + 64 + 32 * 64 * 9 + 128
    assert plan_model(get_spec("resnet50d")).params == 25_557_032 - (3 * 64 * 49 + 128) + deep_stem
    for overrides in ({"layers": "1,1,1,1"}, {"layers": "1,1,1,1", "placement": "full_preact"}):
        spec = get_spec("resnet50d", input_size=33, **overrides)
        model = build_model(spec).eval()
        assert sum(p.numel() for p in model.parameters()) == plan_model(spec).params
        assert conv_linear_macs(model, torch.randn(1, 3, 33, 33)) == plan_model(spec).macs


# --------------------------------------------------------------------------- He et al.'s CIFAR pre-activation code
class LuaPreActBottleneck(nn.Module):
    """resnet-pre-act.lua's ``bottleneck(nInputPlane, nOutputPlane, stride)``, module for module."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        mid = cout // 4
        self.increasing = cin != cout
        self.block = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU()) if self.increasing else nn.Identity()
        first = [] if self.increasing else [nn.BatchNorm2d(cin), nn.ReLU()]
        self.convs = nn.Sequential(*first, nn.Conv2d(cin, mid, 1, stride, 0, bias=False),
                                   nn.BatchNorm2d(mid), nn.ReLU(), nn.Conv2d(mid, mid, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(mid), nn.ReLU(), nn.Conv2d(mid, cout, 1, 1, 0, bias=False))
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False) if self.increasing else nn.Identity()

    def forward(self, x):
        x = self.block(x)
        return self.convs(x) + self.shortcut(x)


class LuaPreActCifar(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        blocks, cin = [], 16
        for cout, stride in ((64, 1), (128, 2), (256, 2)):
            for j in range(n):
                blocks.append(LuaPreActBottleneck(cin, cout, stride if j == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(256)
        self.linear = nn.Linear(256, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.blocks(self.conv(x))))
        return self.linear(F.avg_pool2d(x, 8).flatten(1))


def test_preact_resnet164_is_the_authors_cifar_code():
    theirs = LuaPreActCifar(n=2)
    randomise(theirs)
    spec = get_spec("preact_resnet164", layers="2,2,2")
    ours = build_model(spec)
    _load_by_order(ours, theirs)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), rtol=1e-4, atol=1e-4)
    assert conv_linear_macs(theirs.eval(), x[:1]) == plan_model(spec).macs


def test_preact_cifar_counts():
    # ResNet-164: the stride in the first 1x1 saves 3,145,728 MACs against the 3x3 (v1.5) placement
    v15 = plan_model(get_spec("preact_resnet164", stride_in_1x1=False)).macs
    assert v15 - plan_model(get_spec("preact_resnet164")).macs == 3_145_728
    assert plan_model(get_spec("preact_resnet164")).params == 1_703_258  # 1.7M in He et al. 2016
    # ResNet-110: fb.resnet.torch's CIFAR default, option A (zero-padding): no projection weights
    spec = get_spec("preact_resnet110")
    assert spec.shortcut == "A"
    assert plan_model(spec).params == plan_model(get_spec("preact_resnet110", shortcut="B")).params - (
        16 * 32 + 32 * 64) == 1_727_962


# --------------------------------------------------------------------------- fb.resnet.torch preresnet.lua (ImageNet)
@pytest.mark.parametrize("name, params", [("preact_resnet18", 11_687_720), ("preact_resnet50", 25_549_352),
                                          ("preact_resnet200", 64_666_152)])
def test_imagenet_preact_counts_are_fb_and_timm_resnetv2(name, params):
    assert plan_model(get_spec(name)).params == params
    assert plan_model(get_spec(name, stem_norm=False)).params == params  # timm's resnetv2 layout


class FbPreActBasic(nn.Module):
    """preresnet.lua's ``basicblock(n, stride, type)``: 'no_preact' (first block), 'both_preact', 'preact'."""

    def __init__(self, cin, n, stride, kind):
        super().__init__()
        self.kind = kind
        if kind != "no_preact":
            self.bn0 = nn.BatchNorm2d(cin)
        self.c1 = nn.Conv2d(cin, n, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(n)
        self.c2 = nn.Conv2d(n, n, 3, 1, 1, bias=False)
        self.sc = nn.Conv2d(cin, n, 1, stride, bias=False) if cin != n else None  # shortcut type B

    def forward(self, x):
        if self.kind == "both_preact":
            x = F.relu(self.bn0(x))
            s = x
        else:
            s = x
            if self.kind == "preact":
                x = F.relu(self.bn0(x))
        out = self.c2(F.relu(self.b1(self.c1(x))))
        return out + (s if self.sc is None else self.sc(s))


def test_preact_resnet18_is_fb_resnet_torch():
    """ImageNet: conv-BN-ReLU-maxpool, the first block without pre-activation, later stages 'both_preact'."""
    stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    blocks, cin = [], 64
    for i, n in enumerate((64, 128, 256, 512)):
        blocks.append(FbPreActBasic(cin, n, 1 if i == 0 else 2, "no_preact" if i == 0 else "both_preact"))
        blocks.append(FbPreActBasic(n, n, 1, "preact"))
        cin = n
    theirs = nn.Sequential(*stem, *blocks, nn.BatchNorm2d(512), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                           nn.Linear(512, 1000))
    randomise(theirs)
    ours = build_model("preact_resnet18")
    assert not hasattr(ours.layer1[0], "bn1") and hasattr(ours.layer2[0], "bn1")
    _load_by_order(ours, theirs)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), rtol=1e-4, atol=1e-4)


def test_stem_norm_false_is_timm_resnetv2_order():
    """timm's resnetv2: conv, max-pool, then the first block's own BN-ReLU (shared with its projection)."""
    model = build_model("preact_resnet50", stem_norm=False)
    assert not hasattr(model, "bn1") and hasattr(model.layer1[0], "bn1")
    with pytest.raises(SpecError, match="full_preact"):
        get_spec("resnet50", stem_norm=False)


def test_a_bare_resnet50_state_dict_is_read_in_torchvisions_layout():
    """resnet50 and resnet50_v1 have equal state dicts: inference takes torchvision's and says what it set aside."""
    from resnet_cli.checkpoint import infer_arch

    spec, note = infer_arch(build_model("resnet50").state_dict())
    assert spec.name == "resnet50" and not spec.stride_in_1x1
    assert [s.archs for s in note.set_aside] == [("resnet50_v1",)]
