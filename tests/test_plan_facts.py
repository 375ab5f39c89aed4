"""The analytic plan is the one source of architecture facts: for every registered arch, what it says about the
residual blocks (their names, which layers form the branch a lesion deletes, what stochastic depth saves) is
what the built module and the lesion engine do.

The module side is measured, not asked: forward hooks record which submodules run in a block's forward and in
its ``skip`` (what a lesion puts in place of the block); the difference is what a lesion deletes, and its MACs
are counted from the shapes the convolutions and linear layers actually see.
"""

import pytest
import torch
from plan_checks import check_plan_facts
from zoo_sets import HEAVY, LIGHT

from resnet_cli import build_model, get_spec
from resnet_cli.analysis.counts import count_params
from resnet_cli.plan import plan_model
from resnet_cli.spec import PLACEMENTS, SHORTCUT_MODES


@pytest.mark.parametrize("name", LIGHT)
def test_plan_facts_equal_the_module(name):
    check_plan_facts(name)


# Variants no registered name has: every placement and shortcut variant, on a three-block CIFAR net.
VARIANTS = [{"placement": p} for p in PLACEMENTS] + [{"shortcut_mode": m, "shortcut": "B"} for m in SHORTCUT_MODES] + [
    {"placement": p, "shortcut_mode": "shortcut_gating", "block": "bottleneck"} for p in PLACEMENTS]


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_plan_facts_of_every_variant(overrides):
    check_plan_facts("resnet20", layers="1,1,1", **overrides)


@pytest.mark.slow
@pytest.mark.parametrize("name", HEAVY)
def test_plan_facts_equal_the_module_heavy(name):
    check_plan_facts(name)


def test_minimodel_expected_stochastic_depth_macs():
    """Its shortcut convs always run: 157,583,872 MACs expected at p_L = 0.5 (157,125,120 when they were
    counted as part of the branch, from a copy that looked for ``.downsample.`` in the names)."""
    report = count_params(get_spec("keras_minimodel", stochastic_depth=0.5))
    assert report.stochastic_depth["expected_training_macs"] == 157_583_872


def test_every_layer_has_a_role_and_geometry():
    plan = plan_model(get_spec("resnet50"))
    assert {layer.role for layer in plan.layers()} == {"stem", "branch", "shortcut", "head"}
    conv1 = plan.layers()[0]
    assert (conv1.role, conv1.kernel, conv1.stride, conv1.padding, conv1.groups) == ("stem", 7, 2, 3, 1)
    c2 = next(lc for lc in plan.layers() if lc.name == "layer2.0.conv2")
    assert (c2.role, c2.block, c2.kernel, c2.stride, c2.padding) == ("branch", "layer2.0", 3, 2, 1)
    ds = next(lc for lc in plan.layers() if lc.name == "layer2.0.downsample.0")
    assert (ds.role, ds.kernel, ds.stride) == ("shortcut", 1, 2)
    g = next(lc for lc in plan_model(get_spec("resnext50_32x4d")).layers() if lc.name == "layer1.0.conv2")
    assert g.groups == 32
    dense = plan_model(get_spec("densenet121"))
    assert {lc.role for lc in dense.layers()} == {"stem", "branch", "shortcut", "transition", "head"}
    assert {lc.role for lc in plan_model(get_spec("highway20")).layers()} >= {"gate"}


def _planned_block_by_block(spec):
    """plan_resnet's units as block_plan gives each block, none copied from the block before it."""
    from resnet_cli.plan.resnet import block_plan, head_plan, stem_plan

    units = [stem_plan(spec)]
    for i, (n_blocks, planes, stride) in enumerate(zip(spec.layers, spec.widths, spec.strides)):
        for j in range(n_blocks):
            units.append(block_plan(spec, f"layer{i + 1}.{j}", f"layer{i + 1}", units[-1].out_shape, planes,
                                    stride if j == 0 else 1, first=len(units) == 1))
    return [*units, head_plan(spec, units[-1].out_shape)]


@pytest.mark.parametrize("name", [n for n in LIGHT + HEAVY if get_spec(n).family in ("resnet", "highway")]
                         + [f"variant-{i}" for i in range(len(VARIANTS))])
def test_copied_blocks_are_the_blocks_planned(name):
    # plan_resnet copies a stage's third and later blocks from the one before, renamed (archs plans every net);
    # each must be exactly what block_plan gives for it, every layer named inside its block.
    if name.startswith("variant-"):
        spec = get_spec("resnet20", layers="3,3,3", **VARIANTS[int(name.removeprefix("variant-"))])
    else:
        spec = get_spec(name)
    plan = plan_model(spec)
    assert plan.units == _planned_block_by_block(spec)
    assert all(layer.name.startswith(f"{u.name}.") and layer.block == u.name for u in plan.blocks for layer in u.layers)


@pytest.mark.parametrize("name, projection, downsampling", [
    ("resnet50", ["layer1.0"], ["layer2.0", "layer3.0", "layer4.0"]),  # layer1.0: 64 -> 256 at 56x56
    ("resnet18", [], ["layer2.0", "layer3.0", "layer4.0"]),  # basic blocks keep 64 in layer1
    ("cifar_resnet20", [], ["layer2.0", "layer3.0"]),
    ("wrn28_10", ["layer1.0"], ["layer2.0", "layer3.0"]),  # 16 -> 160 at 32x32, on a 1x1 projection
    ("densenet121", [], []),  # a dense layer adds maps by concatenation: no shortcut carries a change of width
])
def test_blocks_are_named_for_how_they_change_the_shape(name, projection, downsampling):
    """One rule (plan/layers.py shape_change) for the plan's table and the traced module's (params --engine)."""
    from resnet_cli import summarize

    def named(rows):
        return {kind: [r.name for r in rows if r.detail == kind] for kind in ("projection", "downsampling")}

    expected = {"projection": projection, "downsampling": downsampling}
    assert named(count_params(get_spec(name), detail=2).rows) == expected
    spec = get_spec(name)
    assert named(summarize(build_model(spec), spec.input_size, detail=2).rows) == expected


@pytest.mark.parametrize("name, overrides", [
    ("cifar_resnet20", {}), ("cifar_resnet20", {"shortcut_mode": "conv"}), ("cifar_resnet20", {"shortcut": "C"}),
    ("wrn16_8", {"shortcut": "A"}), ("resnet50", {}), ("densenet121", {}), ("keras_minimodel", {}),
    ("cifar_plain20", {}), ("highway20", {}),
])
def test_the_plan_the_traced_module_and_the_lesion_name_each_block_alike(name, overrides):
    """One rule (plan/layers.py shape_change) read three ways: the plan's units (params), the traced module
    (params --engine, summarize) and the lesion's probe. A block whose 1x1 conv shortcut keeps its shape
    (shortcut_mode=conv, option C) is a projection block in all three; option A's zero-padding into more
    channels at stride 1 (wrn16_8:shortcut=A's layer1.0) is one too."""
    from resnet_cli import summarize
    from resnet_cli.analysis.lesion import Layout

    spec = get_spec(name, **overrides)
    planned = {r.name: r.detail for r in count_params(spec, detail=2).rows if r.kind == "block"}
    model = build_model(spec).eval()
    traced = {r.name: r.detail for r in summarize(model, spec.input_size, detail=2).rows if r.kind == "block"}
    layout = Layout(model)
    layout.probe(torch.zeros(1, spec.in_channels, spec.input_size, spec.input_size))
    probed = {b.name: b.shape_change or "" for b in layout.blocks}
    assert planned == traced == probed
    if overrides.get("shortcut_mode") == "conv" or overrides.get("shortcut") == "C":
        assert set(planned.values()) == {"projection", "downsampling"}
