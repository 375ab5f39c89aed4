"""The Python API and the spec: plain data that round-trips through JSON, overrides by name, lazy imports."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import resnet_cli
from resnet_cli.errors import SpecError, UnknownArchError
from resnet_cli.spec import ArchSpec

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("arch", resnet_cli.list_archs())
def test_every_spec_round_trips_through_json(arch):
    spec = resnet_cli.get_spec(arch)
    again = ArchSpec.from_json(spec.to_json())
    assert again == spec
    assert json.loads(again.to_json()) == json.loads(spec.to_json())


def test_list_archs_sorts_naturally_and_filters():
    names = resnet_cli.list_archs("resnet*")
    assert names.index("resnet18") < names.index("resnet34") < names.index("resnet101")
    assert resnet_cli.list_archs("wide_*") == ["wide_resnet50_2", "wide_resnet101_2"]
    assert resnet_cli.list_archs("zzz*") == []


def test_build_model_overrides():
    model = resnet_cli.build_model("resnet20", num_classes=100, shortcut="B", widths=(8, 16, 32))
    assert model.fc.out_features == 100 and model.fc.in_features == 32
    assert model.layer2[0].downsample is not None  # option B projects where the shape changes
    out = model.eval()(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 100)


def test_spec_overrides_are_coerced_and_validated():
    spec = resnet_cli.get_spec("resnet56", layers="2,2,2", num_classes="100")
    assert spec.layers == (2, 2, 2) and spec.num_classes == 100 and spec.num_blocks == 6
    with pytest.raises(SpecError, match="one entry per stage"):
        resnet_cli.get_spec("resnet56", layers="2,2")
    with pytest.raises(SpecError, match="unknown spec field 'widht'.*widths"):
        resnet_cli.get_spec("resnet56", widht=3)
    with pytest.raises(UnknownArchError):
        resnet_cli.get_spec("resnet57")


@pytest.mark.parametrize("depth, ok", [(8, True), (20, True), (21, False), (1202, True), (2, False)])
def test_cifar_depth_must_be_6n_plus_2(depth, ok):
    if ok:
        assert resnet_cli.get_spec(f"cifar_resnet{depth}").num_blocks == 3 * (depth - 2) // 6
    else:
        with pytest.raises(SpecError, match="6n\\+2"):
            resnet_cli.get_spec(f"cifar_resnet{depth}")


def test_plain_twins_have_the_same_layers_minus_the_shortcuts():
    res, plain = resnet_cli.build_model("resnet56"), resnet_cli.build_model("plain56")
    # option A shortcuts have no parameters, so the twins have exactly the same weights
    assert sum(p.numel() for p in res.parameters()) == sum(p.numel() for p in plain.parameters())
    assert all(not ref.module.has_shortcut for ref in plain.residual_blocks())
    r34 = resnet_cli.get_spec("resnet34")
    p34 = resnet_cli.get_spec("plain34")
    assert (r34.layers, r34.widths) == (p34.layers, p34.widths) and p34.residual is False


def test_sequence_folds_to_forward():
    model = resnet_cli.build_model("resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    h = model.forward_stem(x)
    for module, _ref in model.sequence():
        h = module(h)
    assert torch.equal(model.forward_head(h), model(x))
    assert [ref.index for _m, ref in model.sequence()] == list(range(9))


def test_import_is_lazy():
    code = "import resnet_cli, sys; resnet_cli.get_spec('resnet50'); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False, capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip() == "False"
