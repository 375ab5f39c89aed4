"""``residual=False`` builds a net without shortcuts in every family that accepts it, proved by outputs: with the
last weighted layer of each block's branch zeroed (a conv or BN, weight and bias), a block with no shortcut
outputs a constant, whatever its input (its branch is all it has), while the same block of the residual net with
the same weights passes its input on through the shortcut. A family that cannot be plain (a highway net is its
gated shortcuts, a DenseNet its concatenations) refuses in one line. (Issue 20: ``keras_minimodel`` with
``residual=false`` computed the residual net's function.)"""

import pytest
import torch
from cli_runner import run
from plan_checks import check_plan_facts
from zoo_sets import LIGHT

from resnet_cli import build_model, get_spec
from resnet_cli.errors import SpecError
from resnet_cli.plan import plan_model
from resnet_cli.spec import PLACEMENTS

CANNOT_BE_PLAIN = ("highway", "densenet")


def zero_branch_ends(model: torch.nn.Module, spec) -> None:
    """Zero the last conv or BN of every block's branch (before a squeeze-and-excitation, which only scales)."""
    modules = dict(model.named_modules())
    for unit in plan_model(spec).blocks:
        last = [layer for layer in unit.role_layers("branch") if layer.kind in ("conv", "bn") and ".se." not in
                layer.name][-1]
        with torch.no_grad():
            for p in modules[last.name].parameters():
                p.zero_()


def block_inputs(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[torch.nn.Module, str, tuple[int, ...]]]:
    """(block, name, input shape) of every block in forward order."""
    out = []
    h = model.forward_stem(x)
    for module, ref in model.sequence():
        if ref is not None:
            out.append((module, ref.name, tuple(h.shape)))
        h = module(h)
    return out


def depends_on_input(module: torch.nn.Module, shape: tuple[int, ...]) -> bool:
    torch.manual_seed(1)
    a, b = torch.randn(shape), torch.randn(shape) * 3 + 1
    return not torch.allclose(module(a), module(b), atol=1e-6)


def twins(name: str, **overrides):
    """(plain spec, residual spec or None where the family is plain by definition), at 32x32."""
    spec = get_spec(name, input_size=32, **overrides)
    plain = spec.replace(residual=False)
    try:
        residual = spec.replace(residual=True)
    except SpecError:
        assert spec.family == "vgg", name  # the one family that is plain by definition
        residual = None
    return plain, residual


# Variants no registered name has: every placement, with squeeze-and-excitation and bottlenecks among them.
VARIANTS = [("resnet20", {"layers": "1,1,1", "placement": p}) for p in PLACEMENTS] + [
    ("resnet20", {"layers": "1,1,1", "se_reduction": 4}), ("resnet20", {"layers": "1,1,1", "block": "bottleneck"}),
    ("resnet20", {"layers": "1,1,1", "shortcut": "B", "shortcut_mode": "conv"})]


@pytest.mark.parametrize("name, overrides", [(n, {}) for n in LIGHT] + VARIANTS + [("vgg11", {})],
                         ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()))
def test_residual_false_has_no_shortcut(name, overrides):
    spec = get_spec(name, **overrides)
    if spec.family in CANNOT_BE_PLAIN:
        with pytest.raises(SpecError) as err:
            spec.replace(residual=False)
        assert "residual=false" in str(err.value) and "\n" not in str(err.value)
        return
    plain_spec, residual_spec = twins(name, **overrides)
    torch.manual_seed(0)
    plain = build_model(plain_spec).eval()
    if residual_spec is not None:
        residual = build_model(residual_spec).eval()
        # the same weights: the plain net's are the residual net's without its shortcut (and gate) layers
        result = plain.load_state_dict(residual.state_dict(), strict=False)
        assert not result.missing_keys
        shortcut_layers = {layer.name for u in plan_model(residual_spec).blocks for layer in u.layers
                           if layer.role in ("shortcut", "gate")}
        assert {k.rsplit(".", 1)[0] for k in result.unexpected_keys} <= shortcut_layers
        zero_branch_ends(residual, residual_spec)
    zero_branch_ends(plain, plain_spec)
    x = torch.randn(1, plain_spec.in_channels, 32, 32)
    with torch.no_grad():
        for block, block_name, shape in block_inputs(plain, x):
            assert not depends_on_input(block, shape), f"{block_name} of the plain net passes its input on"
            assert not block.has_shortcut
        if residual_spec is not None:
            for block, block_name, shape in block_inputs(residual, x):
                assert depends_on_input(block, shape), f"{block_name} of the residual net lost its shortcut"


def test_the_plain_minimodel_is_not_the_residual_one():
    """The bug as reported: the same weights gave the plain MiniModel the residual one's logits."""
    torch.manual_seed(0)
    residual = build_model(get_spec("keras_minimodel")).eval()
    plain = build_model(get_spec("keras_minimodel", residual=False)).eval()
    plain.load_state_dict(residual.state_dict(), strict=False)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(plain(x), residual(x))
    # its three 1x1 shortcut convs (32->64, 64->128, 128->256, with bias) are gone from the count
    shortcuts = (32 * 64 + 64) + (64 * 128 + 128) + (128 * 256 + 256)
    assert plan_model(get_spec("keras_minimodel", residual=False)).params == \
        plan_model(get_spec("keras_minimodel")).params - shortcuts


@pytest.mark.parametrize("name", ["keras_minimodel", "keras_resnet_v1", "keras_resnet_v2"])
def test_plain_keras_plans_equal_their_modules(name):
    check_plan_facts(name, residual=False)


@pytest.mark.parametrize("name, family", [("highway20", "highway"), ("densenet40_12", "DenseNet")])
def test_families_that_cannot_be_plain_refuse_in_one_line(name, family):
    res = run("params", "--arch", name, "--set", "residual=false")
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: a ") and family in lines[0]


@pytest.mark.parametrize("name", ["plain20", "vgg11", "keras_minimodel"])
def test_stochastic_depth_on_a_plain_net_is_refused(name):
    """A plain block ignores the survival probabilities (it has no shortcut to fall back on): the plan would claim
    expected training MACs that the net never saves."""
    with pytest.raises(SpecError, match="a plain net"):
        get_spec(name, residual=False, stochastic_depth=0.5)


def test_params_does_not_call_a_plain_nets_blocks_residual():
    res = run("params", "--arch", "vgg19")
    assert "16 blocks without shortcuts, depth 19" in " ".join(res.stdout.split())
    res = run("params", "--arch", "resnet34")
    assert "16 residual blocks, depth 34" in " ".join(res.stdout.split())
