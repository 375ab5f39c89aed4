"""VGG-11/13/16/19 with and without batch norm (Simonyan & Zisserman 2015), He et al.'s plain baseline: the
counts equal torchvision's, the MACs fvcore's, a module in torchvision's layout (built here from torchvision's
own code, copied, so the test needs no torchvision) loads strict and computes the same logits; a VGG has one
path, and a lesion deletes only the convs whose input and output shapes agree."""

import pytest
import torch
from cli_runner import run
from torch import nn

from resnet_cli import build_model, get_spec
from resnet_cli.analysis.drawing import network_drawing
from resnet_cli.analysis.fvcore_engine import count_with_fvcore
from resnet_cli.analysis.lesion import lesion_study
from resnet_cli.plan import plan_model

# torchvision/models/vgg.py's ``cfgs`` (A, B, D, E): conv widths, "M" a 2x2/2 max-pool
CFGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class TorchvisionVGG(nn.Module):
    """torchvision's ``VGG`` and ``make_layers``, as written there: the key names are the oracle."""

    def __init__(self, cfg, batch_norm: bool, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for v in cfg:
            if v == "M":
                layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
                if batch_norm:
                    layers += [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                else:
                    layers += [conv2d, nn.ReLU(inplace=True)]
                in_channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def by_hand(depth: int, batch_norm: bool) -> int:
    """Parameters of torchvision's layout: a 3x3 conv with bias per width, BN's weight and bias, the three fc."""
    params, cin = 0, 3
    for v in CFGS[depth]:
        if v != "M":
            params += 9 * cin * v + v + (2 * v if batch_norm else 0)
            cin = v
    return params + (25088 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)


# torchvision's documented counts (its weights' ``num_params``)
TORCHVISION = {"vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
               "vgg16_bn": 138_365_992, "vgg19_bn": 143_678_248}


@pytest.mark.parametrize("depth", sorted(CFGS))
@pytest.mark.parametrize("bn", [False, True], ids=["plain", "bn"])
def test_params_equal_torchvision(depth, bn):
    name = f"vgg{depth}{'_bn' if bn else ''}"
    plan = plan_model(get_spec(name))
    assert plan.params == by_hand(depth, bn) == TORCHVISION.get(name, by_hand(depth, bn))
    assert get_spec(name).depth == depth and len(plan.blocks) == depth - 3


def test_hand_arithmetic_gives_torchvisions_figures():
    assert {n: by_hand(int(n[3:5]), n.endswith("_bn")) for n in TORCHVISION} == TORCHVISION
    # the two torchvision does not print, from its layout: 5,504 and 5,888 BN parameters more than the plain nets
    assert (by_hand(11, True), by_hand(13, True)) == (132_868_840, 133_053_736)


def test_vgg19_is_19_6_billion_multiply_adds():
    """He et al. 2015, Table 3 and Fig. 3: VGG-19, 19.6 billion FLOPs (multiply-adds) at 224x224."""
    macs = plan_model(get_spec("vgg19")).macs
    assert macs == 19_632_062_464 and round(macs / 1e9, 1) == 19.6
    assert plan_model(get_spec("vgg19_bn")).macs == macs  # batch norm adds no multiply-adds


@pytest.mark.parametrize("name", ["vgg11_bn", "vgg19"])
def test_macs_equal_fvcore_on_the_built_module(name):
    spec = get_spec(name, input_size=32)
    report = count_with_fvcore(spec)
    assert report.fvcore["conv_linear"] == plan_model(spec).macs
    assert report.params == plan_model(spec).params


@pytest.mark.parametrize("bn", [False, True], ids=["vgg11", "vgg11_bn"])
def test_a_torchvision_state_dict_loads_strict_with_equal_logits(bn):
    torch.manual_seed(0)
    theirs = TorchvisionVGG(CFGS[11], bn).eval()
    for m in theirs.modules():  # running statistics that are not the initial ones
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    ours = build_model(get_spec("vgg11_bn" if bn else "vgg11", input_size=32)).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), rtol=0, atol=1e-6)


def test_one_path():
    res = run("paths", "--arch", "vgg19")
    assert res.exit_code == 0, res.output
    assert "16 blocks without shortcuts → 1 path" in res.stdout


def test_lesion_deletes_the_convs_that_keep_the_shape():
    """As for a plain twin: an identity stands in for a deleted conv, which only a conv from C to C channels
    allows (VGG-11: features.8, .13, .16, .18); the first conv of stages 1-4 widens the map and stays."""
    torch.manual_seed(0)
    model = build_model(get_spec("vgg11", input_size=32, num_classes=10)).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    study = lesion_study(model, x, y, max_k=1, samples=1, batch_size=4, device=torch.device("cpu")).to_dict()
    deleted = [row["block"] for row in study["single"]]
    assert deleted == ["features.8", "features.13", "features.16", "features.18"]
    # deleting features.16 (stage 5's first conv, 512 -> 512): torchvision's features without it and its ReLU
    with torch.no_grad():
        h = x
        for i, module in enumerate(model.features):
            if i not in (16, 17):
                h = module(h)
        expected = model.forward_head(h)
        got = x
        for module, ref in model.sequence():
            got = module.skip(got) if ref is not None and ref.name == "features.16" else module(got)
        assert torch.equal(model.forward_head(got), expected)


def test_drawing_is_figure_3s_vgg19_column():
    column = network_drawing([get_spec("vgg19")]).columns[0]
    # five max-pools: the adaptive pool keeps the 7x7 map of a 224-pixel image and is not drawn
    assert (column.count("conv"), column.count("pool"), column.count("fc")) == (16, 5, 3)
    convs = [b.label for b in column.boxes if b.kind == "conv"]
    assert convs[:3] == ["3×3 conv, 64", "3×3 conv, 64", "3×3 conv, 128"] and convs[-1] == "3×3 conv, 512"
    assert not column.edges  # no shortcuts


def test_residual_true_is_refused_in_one_line():
    res = run("params", "--arch", "vgg16", "--set", "residual=true")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        "Error: a VGG net has no shortcuts (residual=false is its definition); for a residual twin use a resnet "
        "arch"]


@pytest.mark.parametrize("depth,bn,classes", [(11, False, 1000), (16, True, 10), (19, False, 10)])
def test_checkpoint_inference_recognises_a_torchvision_vgg_state_dict(depth, bn, classes):
    """A bare state dict in torchvision's layout is named by its keys and shapes (on the meta device: only the
    shapes are read), its class count from ``classifier.6``."""
    from resnet_cli.checkpoint import infer_arch

    with torch.device("meta"):
        state = TorchvisionVGG(CFGS[depth], bn, num_classes=classes).state_dict()
    spec, note = infer_arch(state)
    assert (spec.name, spec.num_classes) == (f"vgg{depth}{'_bn' if bn else ''}", classes)
    assert (note.name, note.by) == (spec.name, "keys_and_shapes")
