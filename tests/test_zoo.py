"""The whole zoo: every registered architecture builds, runs, and is counted the same by both engines; the papers'
published sizes; the structure of each BN/ReLU placement and shortcut variant; stochastic depth; DenseNet and
highway blocks for the path and lesion analyses; the small Keras models.
"""

import pytest
import torch
from zoo_sets import HEAVY, LIGHT

from resnet_cli import build_model, get_spec
from resnet_cli.analysis.counts import module_buffers
from resnet_cli.analysis.fvcore_engine import conv_linear_macs as fvcore_conv_linear_macs
from resnet_cli.errors import SpecError
from resnet_cli.plan import plan_model
from resnet_cli.spec import PLACEMENTS, SHORTCUT_MODES


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def small_size(spec) -> int:
    """The smallest input that keeps every stage's map at least 1x1: fast, and MACs scale exactly with it."""
    return 32




def _check_builds_and_runs(name: str) -> None:
    spec = get_spec(name, input_size=small_size(get_spec(name)))
    model = build_model(spec)
    plan = plan_model(spec)
    assert n_params(model) == plan.params
    assert module_buffers(model) == plan.buffers  # BN's running means and variances
    x = torch.randn(2, spec.in_channels, spec.input_size, spec.input_size)
    # Training mode: batch statistics, as in training. (At initialisation, eval mode's unit running variance
    # lets a 1000-layer pre-activation net's identity path grow without bound; that is not a bug of the net.)
    with torch.no_grad():
        y = model.train()(x)
    assert y.shape == (2, spec.num_classes)
    assert torch.isfinite(y).all()
    refs = model.residual_blocks()
    assert len(refs) == spec.num_blocks == len(plan.blocks)
    assert [r.downsample for r in refs] == [u.downsample for u in plan.blocks]
    assert [r.name for r in refs] == [u.name for u in plan.blocks]


@pytest.mark.parametrize("name", LIGHT)
def test_every_arch_builds_runs_and_has_the_planned_parameters(name):
    _check_builds_and_runs(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", HEAVY)
def test_every_heavy_arch_builds_runs_and_has_the_planned_parameters(name):
    _check_builds_and_runs(name)


# One spec per code path of the builders and planners, shrunk to a block or two per stage (fvcore's tracing is
# the slow part); the MACs then hold for any depth, since every block is counted by the same rule.
ENGINE_CASES = [
    ("resnet18", {"layers": "1,1,1,1"}),
    ("resnext50_32x4d", {"layers": "1,1,1,1"}),
    ("preact_resnet50", {"layers": "1,2,1,1"}),
    ("preact_resnet110", {"layers": "2,1,1"}),
    ("preact_resnet164", {"layers": "2,1,1"}),
    ("resnext29_8x64d", {"layers": "1,1,1"}),
    ("wrn16_8", {"dropout": 0.3}),
    ("highway20", {"layers": "2,1,1"}),
    ("densenet121", {"layers": "2,2,2,2"}),
    ("densenet161", {"layers": "1,1,1,1"}),
    ("densenet40_12", {"layers": "3,3,3"}),
    ("densenet_bc100_12", {"layers": "3,3,3"}),
    ("keras_resnet_v1", {}),
    ("keras_resnet_v2", {}),
    ("keras_minimodel", {}),
] + [("resnet20", {"layers": "1,1,1", "placement": p}) for p in PLACEMENTS] + [
    ("resnet20", {"layers": "1,1,1", "shortcut_mode": m, "shortcut": "B"}) for m in SHORTCUT_MODES
] + [("resnet50", {"layers": "1,1,1,1", "placement": p, "shortcut_mode": "shortcut_gating"}) for p in PLACEMENTS]


@pytest.mark.parametrize("name,overrides", ENGINE_CASES, ids=lambda v: v if isinstance(v, str) else
                         "-".join(f"{k}={x}" for k, x in v.items()) or "default")
def test_both_engines_agree(name, overrides):
    spec = get_spec(name, input_size=32, **overrides)
    model = build_model(spec).eval()
    plan = plan_model(spec)
    assert n_params(model) == plan.params
    assert module_buffers(model) == plan.buffers  # BN's running means and variances
    assert fvcore_conv_linear_macs(model, torch.randn(1, 3, 32, 32)) == plan.macs


# --------------------------------------------------------------------------- published sizes
# (exact integer this tool computes, the paper's rounded figure in millions, how the paper rounds it)
PUBLISHED = {
    "preact_resnet164": (1_703_258, 1.7),
    "resnext29_8x64d": (34_426_698, 34.4),
    "wrn28_10": (36_479_194, 36.5),
    "wrn40_4": (8_949_210, 8.9),
    "wrn16_8": (10_961_370, 11.0),
    "densenet40_12": (1_019_722, 1.0),
    "densenet_bc100_12": (769_162, 0.8),
    "densenet_bc250_24": (15_324_406, 15.3),
    "densenet_bc190_40": (25_624_430, 25.6),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_sizes_round_to_the_papers(name):
    exact, millions = PUBLISHED[name]
    assert plan_model(get_spec(name)).params == exact
    assert round(exact / 1e6, 1) == millions


def test_preact_resnet1001_paper_figure_leaves_out_batch_norm():
    """He et al. 2016 give 10.2M for ResNet-1001; with its 1,001 BN layers' scales and shifts it is 10.33M.
    The paper's figure is the conv and fc weights alone (10.18M)."""
    plan = plan_model(get_spec("preact_resnet1001"))
    assert plan.params == 10_327_706
    without_bn = sum(layer.params for layer in plan.layers() if layer.kind != "bn")
    assert without_bn == 10_178_490
    assert round(without_bn / 1e6, 1) == 10.2


def test_resnext29_16x64d_paper_truncates():
    """Xie et al. 2017 give 68.1M: 68,155,210 truncated (not rounded) to one decimal."""
    params = plan_model(get_spec("resnext29_16x64d")).params
    assert params == 68_155_210
    assert int(params / 1e5) / 10 == 68.1


TORCHVISION_DENSENETS = {  # documented num_params and GFLOPS (multiply-adds of conv + linear at 224x224)
    "densenet121": (7_978_856, 2.834),
    "densenet161": (28_681_000, 7.728),
    "densenet169": (14_149_480, 3.36),
    "densenet201": (20_013_928, 4.291),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_DENSENETS))
def test_densenet_params_and_macs_match_torchvision(name):
    params, gmacs = TORCHVISION_DENSENETS[name]
    plan = plan_model(get_spec(name))
    assert plan.params == params
    assert round(plan.macs / 1e9, len(str(gmacs).split(".")[1])) == gmacs


def test_big_new_nets_build_with_the_planned_parameters():
    for name in ("preact_resnet1001", "densenet264", "resnext29_16x64d"):
        assert n_params(build_model(name)) == plan_model(get_spec(name)).params


@pytest.mark.parametrize("name,depth,blocks", [
    ("preact_resnet110", 110, 54), ("preact_resnet164", 164, 54), ("preact_resnet1001", 1001, 333),
    ("preact_resnet200", 200, 66), ("resnext29_8x64d", 29, 9), ("densenet121", 121, 58),
    ("densenet40_12", 40, 36), ("densenet_bc100_12", 100, 48), ("densenet_bc190_40", 190, 93),
    ("highway110", 110, 54), ("keras_minimodel", 26, 12),
])
def test_depth_and_block_counts(name, depth, blocks):
    spec = get_spec(name)
    assert spec.depth == depth
    assert spec.num_blocks == blocks


def test_densenet264_is_265_layers_by_the_papers_own_count():
    # 2 x (6 + 12 + 64 + 48) dense-layer convs + conv0 + 3 transitions + fc: the name keeps the paper's 264.
    assert get_spec("densenet264").depth == 265


# --------------------------------------------------------------------------- parametric names
def test_parametric_names_equal_the_registered_ones():
    from resnet_cli.registry import _parse_parametric

    for name in ("wrn28_10", "wrn40_4", "densenet40_12", "densenet_bc100_12", "densenet_bc190_40", "highway110"):
        assert _parse_parametric(name) == get_spec(name)
    assert get_spec("densenet_bc100_12").layers == (16, 16, 16)
    assert get_spec("densenet_bc88_32").layers == (14, 14, 14)
    assert get_spec("densenet100_24").layers == (32, 32, 32)
    assert get_spec("wrn22_2").widths == (32, 64, 128) and get_spec("wrn22_2").layers == (3, 3, 3)
    assert get_spec("highway56").num_blocks == 27


@pytest.mark.parametrize("name,message", [
    ("wrn27_10", "6n+4"), ("densenet41_12", "3n+4"), ("densenet_bc101_12", "6n+4"), ("highway21", "6n+2"),
])
def test_bad_parametric_depths_say_why(name, message):
    with pytest.raises(SpecError, match=message.replace("+", r"\+")):
        get_spec(name)


def test_spec_fields_are_checked():
    with pytest.raises(SpecError, match="placement"):
        get_spec("resnet20", placement="preact")
    with pytest.raises(SpecError, match="shortcut_mode"):
        get_spec("resnet20", shortcut_mode="gated")
    with pytest.raises(SpecError, match="highway"):
        get_spec("highway20", shortcut_mode="identity")
    with pytest.raises(SpecError, match="DenseNet"):
        get_spec("densenet40_12", stochastic_depth=0.5)
    with pytest.raises(SpecError, match="block"):
        get_spec("densenet40_12", block="basic")


def test_new_fields_round_trip_through_json():
    from resnet_cli.spec import ArchSpec

    spec = get_spec("wrn28_10", dropout=0.3, shortcut_mode="scaling", shortcut_scale=0.25, stochastic_depth=0.5)
    assert ArchSpec.from_json(spec.to_json()) == spec


def test_the_examples_page_is_what_the_script_prints():
    """examples/zoo_tables.md carries the output of examples/zoo_tables.py: regenerate it when a count changes."""
    import contextlib
    import importlib.util
    import io
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("zoo_tables", root / "examples" / "zoo_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        module.main()
    assert out.getvalue().strip() in (root / "examples" / "zoo_tables.md").read_text()


@pytest.mark.parametrize("name, depth", [("wrn28_10", 28), ("wrn40_4", 40), ("wrn16_8", 16), ("resnet110", 110),
                                         ("preact_resnet164", 164), ("wide_resnet50_2", 50), ("densenet121", 121)])
def test_depth_is_the_number_in_the_name(name, depth):
    assert get_spec(name).depth == depth


@pytest.mark.parametrize("name, overrides, depth", [
    ("cifar_resnet56", {"widths": "32,64,128"}, 56),  # option A: no shortcut convs to count, He et al.'s 6n + 2
    ("cifar_resnet56", {"widths": "64,128,256", "placement": "full_preact"}, 56),
    ("cifar_resnet56", {"widths": "32,64,128", "shortcut": "B"}, 58),  # three 1x1 projections: counted as WRN's
    ("wrn28_10", {"placement": "original"}, 28),
    ("wrn40_4", {"shortcut": "A"}, 38),
])
def test_a_widened_cifar_net_counts_shortcut_convs_only_where_it_has_them(name, overrides, depth):
    """Zagoruyko & Komodakis count 6n + conv1 + the three 1x1 shortcut convs; He et al. 6n + conv1 + fc. A wider
    ResNet-56 with option A shortcuts has no shortcut convs: it is still 56 layers deep."""
    spec = get_spec(name, **overrides)
    assert spec.depth == depth
    convs_on_longest_path = 2 * spec.num_blocks + 1
    projections = 3 if spec.shortcut == "B" else 0
    assert depth in (convs_on_longest_path + 1, convs_on_longest_path + projections)
