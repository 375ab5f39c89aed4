"""What each BN/ReLU placement, shortcut variant, highway block, dense layer and seed block computes, written out
by hand from the papers and checked against the module; stochastic depth; the analysis contracts per family."""

import pytest
import torch
import torch.nn.functional as F
from cli_runner import run
from torch.overrides import TorchFunctionMode

from resnet_cli import build_model, get_spec
from resnet_cli.models.base import ResidualNetwork
from resnet_cli.models.resnet import BLOCK_CLASSES, SHORTCUT_VARIANTS
from resnet_cli.plan import plan_model
from resnet_cli.plan.resnet import PLACEMENT_TABLE
from resnet_cli.spec import PLACEMENTS, SHORTCUT_MODES


def randomize_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Give every BN non-trivial statistics and affine weights, so that where a BN sits changes the output."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=g))
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.3)
    return model.eval()


def inner_block(**overrides):
    """A shape-preserving block that is not the net's first one (layer1.1 of a CIFAR net), in eval mode."""
    model = randomize_bn(build_model(get_spec("resnet20", layers="2,1,1", **overrides)))
    return model.layer1[1]


X = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(0))


def close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- the five placements (He et al. 2016)
@torch.no_grad()
def test_original_placement():
    b = inner_block(placement="original")
    close(b(X), F.relu(X + b.bn2(b.conv2(F.relu(b.bn1(b.conv1(X)))))))


@torch.no_grad()
def test_bn_after_addition():
    b = inner_block(placement="bn_after_add")
    close(b(X), F.relu(b.bn2(X + b.conv2(F.relu(b.bn1(b.conv1(X)))))))


@torch.no_grad()
def test_relu_before_addition():
    b = inner_block(placement="relu_before_add")
    close(b(X), X + F.relu(b.bn2(b.conv2(F.relu(b.bn1(b.conv1(X)))))))


@torch.no_grad()
def test_relu_only_preactivation():
    b = inner_block(placement="relu_preact")
    close(b(X), X + b.bn2(b.conv2(F.relu(b.bn1(b.conv1(F.relu(X)))))))


@torch.no_grad()
def test_full_preactivation_has_nothing_after_the_addition():
    b = inner_block(placement="full_preact")
    close(b(X), X + b.conv2(F.relu(b.bn2(b.conv1(F.relu(b.bn1(X)))))))
    residual = torch.randn(X.shape, generator=torch.Generator().manual_seed(5))
    close(b.merge(X, residual), X + residual)  # the addition is the block's last step
    assert b.bn1.num_features == b.in_channels  # BN before the first conv, on the block's input


@torch.no_grad()
def test_full_preact_net_has_a_bare_stem_and_a_final_bn_relu():
    model = randomize_bn(build_model("preact_resnet110"))
    assert not hasattr(model, "bn1") and model.head_bn is not None
    first, inner = model.layer1[0], model.layer1[1]
    # the first unit pre-activates before splitting (He et al. 2016 §4.1): its shortcut is BN-ReLU of x, an inner
    # unit's the raw x
    close(first.shortcut(X), F.relu(first.bn1(X)))
    close(inner.shortcut(X), X)
    spec = get_spec("preact_resnet164")
    proj = build_model(spec).layer1[0].downsample
    assert len(proj) == 1 and isinstance(proj[0], torch.nn.Conv2d)  # a bare 1x1 conv, no BN


class StepRecorder(TorchFunctionMode):
    """The steps a block runs, in order: its conv and BN modules by name (forward pre-hooks), ``relu`` for each
    F.relu and ``add`` for each tensor addition (torch function calls)."""

    def __init__(self, block: torch.nn.Module) -> None:
        super().__init__()
        self.steps: list[str] = []
        self.handles = [m.register_forward_pre_hook(lambda *_, name=name: self.steps.append(name))
                        for name, m in block.named_children() if name.startswith(("conv", "bn"))]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name == "relu":
            self.steps.append("relu")
        elif name in ("add", "__add__"):
            self.steps.append("add")
        return func(*args, **(kwargs or {}))

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        return super().__exit__(*exc)


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
@pytest.mark.parametrize("placement", PLACEMENTS)
@torch.no_grad()
def test_each_block_class_runs_its_placements_steps_from_the_table(block, placement):
    """Every block class's explicit forward runs the steps PLACEMENT_TABLE gives its placement (the plan and
    the drawing read the same table), in order: BN and ReLU before or after each conv, then the addition, then
    what follows it."""
    name = "resnet20" if block == "basic" else "preact_resnet164"
    model = build_model(get_spec(name, layers="2,1,1", placement=placement)).eval()
    b = model.layer1[1]  # shape-preserving, not the net's first: the unit of Fig. 4
    assert type(b) is BLOCK_CLASSES[placement, block]
    convs = 2 if block == "basic" else 3
    before, after = PLACEMENT_TABLE[placement].steps(convs)
    with StepRecorder(b) as recorder:
        b(torch.randn(1, b.in_channels, 8, 8))
    assert recorder.steps == [*before, "add", *after]


def test_one_block_class_per_placement_and_kind_and_one_variant_per_shortcut_mode():
    assert tuple(PLACEMENT_TABLE) == PLACEMENTS
    assert set(BLOCK_CLASSES) == {(p, k) for p in PLACEMENTS for k in ("basic", "bottleneck")}
    assert tuple(SHORTCUT_VARIANTS) == SHORTCUT_MODES


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_placements_keep_the_parameter_count_except_full_preact(block):
    name = "resnet20" if block == "basic" else "preact_resnet164"
    counts = {p: plan_model(get_spec(name, placement=p, shortcut="B")).params
              for p in ("original", "bn_after_add", "relu_before_add", "relu_preact")}
    assert len(set(counts.values())) == 1  # the same layers, moved


# --------------------------------------------------------------------------- shortcut variants (He et al. 2016 §3)
def preact_block(**overrides):
    return inner_block(placement="full_preact", **overrides)


@torch.no_grad()
def test_identity_and_constant_scaling():
    b = preact_block()
    close(b(X), X + b.branch(X))
    b = preact_block(shortcut_mode="scaling", shortcut_scale=0.3)
    close(b(X), 0.3 * X + 0.7 * b.branch(X))


@torch.no_grad()
def test_exclusive_gating():
    b = preact_block(shortcut_mode="exclusive_gating")
    assert torch.all(b.gate.bias == -6.0)  # b_g
    g = torch.sigmoid(b.gate(X))
    close(b(X), (1 - g) * X + g * b.branch(X))
    close(b(X), b.merge(b.shortcut(X), b.branch(X), b.gate_of(X)))
    with pytest.raises(ValueError, match="gate"):
        b.merge(b.shortcut(X), b.branch(X))


@torch.no_grad()
def test_shortcut_only_gating():
    b = preact_block(shortcut_mode="shortcut_gating", gate_bias=0.0)
    assert torch.all(b.gate.bias == 0.0)
    g = torch.sigmoid(b.gate(X))
    close(b(X), (1 - g) * X + b.branch(X))


@torch.no_grad()
def test_conv_shortcut_on_every_block():
    model = build_model(get_spec("resnet20", shortcut_mode="conv"))
    assert all(r.module.downsample is not None for r in model.residual_blocks())
    b = randomize_bn(model).layer1[1]
    close(b(X), F.relu(b.downsample(X) + b.branch(X)))
    base, conv = plan_model(get_spec("resnet20", shortcut="B")), plan_model(get_spec("resnet20", shortcut_mode="conv"))
    # A 1x1 conv + BN on the 7 shape-preserving blocks that option B leaves bare (3 in stage 1, 2 in each other).
    assert conv.params - base.params == (16 * 16 + 32) * 3 + (32 * 32 + 64) * 2 + (64 * 64 + 128) * 2


def test_dropout_shortcut_drops_only_in_training():
    b = preact_block(shortcut_mode="dropout", shortcut_dropout=0.5)
    with torch.no_grad():
        close(b(X), X + b.branch(X))
        b.train()
        torch.manual_seed(0)
        s = b.shortcut(X)
    dropped = (s == 0).float().mean().item()
    assert 0.4 < dropped < 0.6
    kept = s != 0
    close(s[kept], 2 * X[kept])  # inverted dropout: survivors scaled by 1 / (1 - 0.5)


@pytest.mark.parametrize("mode,extra", [("identity", 0), ("scaling", 0), ("dropout", 0),
                                        ("exclusive_gating", 1), ("shortcut_gating", 1)])
def test_gates_add_one_1x1_conv_with_bias_per_block(mode, extra):
    base = plan_model(get_spec("resnet20")).params
    gated = plan_model(get_spec("resnet20", shortcut_mode=mode)).params
    per_stage = [(16, 16, 3), (16, 32, 1), (32, 32, 2), (32, 64, 1), (64, 64, 2)]
    assert gated - base == extra * sum(n * (cin * cout + cout) for cin, cout, n in per_stage)


# --------------------------------------------------------------------------- highway nets
@torch.no_grad()
def test_highway_block_is_transform_gate_times_h_plus_carry():
    model = randomize_bn(build_model("highway20"))
    b = model.layer1[1]
    t = torch.sigmoid(b.gate(X))
    h = F.relu(b.bn2(b.conv2(F.relu(b.bn1(b.conv1(X))))))
    close(b(X), t * h + (1 - t) * X)
    assert torch.all(b.gate.bias == -2.0)
    close(b.skip(X), (1 - t) * X)  # deleting the block keeps the carry path, gate included


# --------------------------------------------------------------------------- stochastic depth (Huang et al. 2016)
def test_expected_depth_of_resnet110():
    spec = get_spec("resnet110", stochastic_depth=0.5)
    assert spec.expected_depth == pytest.approx((3 * 54 - 1) / 4) == pytest.approx(40.25)
    model = build_model(spec)
    assert [r.module.survival for r in model.residual_blocks()] == list(spec.survival_probabilities())
    assert model.residual_blocks()[-1].module.survival == 0.5


@torch.no_grad()
def test_stochastic_depth_scales_the_branch_at_test_time():
    model = randomize_bn(build_model(get_spec("resnet20", layers="2,1,1", stochastic_depth=0.5)))
    b = model.layer1[1]
    p = b.survival
    assert p == pytest.approx(1 - (2 / 4) * 0.5)
    close(b(X), F.relu(X + p * b.branch(X)))


def test_stochastic_depth_drops_whole_blocks_in_training():
    model = build_model(get_spec("resnet20", layers="2,1,1", stochastic_depth=0.5)).train()
    b = model.layer1[1]
    b.survival = 0.5
    torch.manual_seed(0)
    with torch.no_grad():
        outs = [b(X) for _ in range(200)]
        skipped = b.skip(X)
    dropped = sum(torch.equal(o, skipped) for o in outs)
    assert 70 < dropped < 130  # Binomial(200, 0.5): well inside 5 standard deviations
    # A dropped block's branch gets no gradient.
    b.survival = 1e-12
    b.zero_grad()
    b(X.clone().requires_grad_()).sum().backward()
    assert b.conv1.weight.grad is None


def test_stochastic_depth_works_on_every_residual_family():
    for name in ("preact_resnet110", "highway20", "wrn16_8", "keras_minimodel"):
        model = build_model(get_spec(name, stochastic_depth=0.5)).train()
        y = model(torch.randn(2, 3, 32, 32))
        assert torch.isfinite(y).all()


# --------------------------------------------------------------------------- the analyses' contract, per family
CONTRACT_CASES = ["resnet20", "plain20", "preact_resnet164", "highway20", "wrn16_8",
                  "densenet40_12", "densenet_bc100_12", "keras_resnet_v1", "keras_resnet_v2", "keras_minimodel",
                  "resnext29_8x64d"]


@pytest.mark.parametrize("name", CONTRACT_CASES)
@torch.no_grad()
def test_sequence_folds_to_forward_and_every_block_can_be_skipped(name):
    overrides = {"layers": "1,1,1"} if name == "resnext29_8x64d" else {}
    model = randomize_bn(build_model(get_spec(name, **overrides)))
    assert isinstance(model, ResidualNetwork)
    x = torch.randn(2, 3, 32, 32)
    h = model.forward_stem(x)
    seen = []
    for module, ref in model.sequence():
        if ref is not None:
            seen.append(ref)
            assert ref.module is module
            if not (name.startswith("plain") and ref.downsample):
                assert module.skip(h).shape == module(h).shape
        h = module(h)
    close(model.forward_head(h), model(x))
    assert [r.index for r in seen] == list(range(len(model.residual_blocks())))
    assert [r.name for r in seen] == [r.name for r in model.residual_blocks()]


@torch.no_grad()
def test_a_dense_layer_deleted_zeroes_its_new_maps():
    model = randomize_bn(build_model("densenet_bc100_12"))
    refs = model.residual_blocks()
    assert refs[0].name == "features.denseblock1.denselayer1" and refs[0].stage == 1
    assert not any(r.downsample for r in refs)
    layer = refs[0].module
    x = torch.randn(2, 24, 8, 8)
    y = layer(x)
    assert y.shape == (2, 36, 8, 8)
    close(y[:, :24], x)  # the input passes through unchanged: the concatenation is the "shortcut"
    close(layer.skip(x), torch.cat([x, torch.zeros(2, 12, 8, 8)], 1))
    transitions = [m for m, ref in model.sequence() if ref is None]
    assert len(transitions) == 2


# --------------------------------------------------------------------------- the Keras models
def test_keras_resnet_v1_v2_parameters_by_hand():
    stem = 3 * 16 * 9 + 16
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731  (Keras convs carry a bias)
    block_16_16 = 2 * conv(16, 16, 3) + 2 * 2 * 16
    v1_block_16_32 = conv(16, 32, 3) + conv(32, 32, 3) + 2 * 2 * 32 + conv(16, 32, 1)
    v2_block_16_32 = conv(16, 32, 3) + conv(32, 32, 3) + 2 * 16 + 2 * 32 + conv(16, 32, 1)  # BN before each conv
    dense = 32 * 32 * 32 * 10 + 10  # Flatten of the whole 32x32x32 map
    assert plan_model(get_spec("keras_resnet_v1")).params == stem + block_16_16 + v1_block_16_32 + dense == 347_402
    assert (plan_model(get_spec("keras_resnet_v2")).params
            == stem + block_16_16 + v2_block_16_32 + 2 * 32 + dense == 347_434)  # + the final BN


def test_keras_minimodel_structure():
    model = build_model("keras_minimodel").eval()
    refs = model.residual_blocks()
    assert [r.stage for r in refs] == [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3
    openers = [r for r in refs if r.downsample]
    assert [r.name for r in openers] == ["layer2.0", "layer3.0", "layer4.0"]
    for r in openers:
        assert isinstance(r.module.pool, torch.nn.MaxPool2d)
        assert r.module.shortcut_conv.stride == (2, 2) and r.module.shortcut_conv.kernel_size == (1, 1)
    assert model.fc.in_features == 256  # 32 -> 16 -> 8 -> 4, then the 4x4 average pool
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


# --------------------------------------------------------------------------- CLI
def test_archs_shows_the_new_families():
    import json

    result = run("archs", "-f", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    families = {r["family"] for r in data["archs"]}
    assert {"resnet", "highway", "densenet", "keras"} <= families
    templates = {p["template"] for p in data["parametric"]}
    assert {"wrn<depth>_<k>", "densenet<L>_<k>", "densenet_bc<L>_<k>", "highway<depth>"} <= templates


def test_params_and_compare_accept_new_names_and_fields():
    import json

    result = run("params", "-a", "wrn28_10", "-f", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["params"] == 36_479_194
    result = run("params", "-a", "resnet110", "--placement", "full-preact", "--shortcut-mode", "shortcut_gating",
                 "--stochastic-depth", "0.5", "-f", "json")
    assert result.exit_code == 0
    spec = json.loads(result.stdout)["spec"]
    assert (spec["placement"], spec["shortcut_mode"], spec["stochastic_depth"]) == ("full_preact",
                                                                                     "shortcut_gating", 0.5)
    result = run("compare", "preact_resnet164", "preact_resnet1001", "densenet_bc100_12", "-f", "json")
    assert result.exit_code == 0
    assert [a["params"] for a in json.loads(result.stdout)["archs"]] == [1_703_258, 10_327_706, 769_162]


@pytest.mark.parametrize("args,message", [
    (["params", "-a", "resnet20", "--placement", "sideways"], "placement must be one of"),
    (["params", "-a", "resnet20", "--shortcut-mode", "gate"], "shortcut_mode must be one of"),
    (["params", "-a", "wrn27_10"], "6n+4"),
])
def test_bad_fields_are_one_line_errors(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
