"""Every registered architecture: the analytic engine and fvcore agree on it, and fvcore's report is sound.

The analytic engine counts from the spec without building anything; these tests build the module and check
the arithmetic against it: parameters against ``module.parameters()`` exactly, and MACs against fvcore's
conv+linear count exactly. Large ImageNet nets are traced at a smaller input (MACs scale with the feature maps,
so agreement at 64x64 checks the same per-layer arithmetic; the 224x224 totals are checked against the
published figures in test_published_counts.py). Nets over 30M parameters or 200 blocks run in the slow tests;
test_zoo.py checks their MACs on cut-down copies that take every code path.
"""

import math

import pytest
from zoo_sets import HEAVY, LIGHT

from resnet_cli import get_spec
from resnet_cli.analysis.counts import count_params
from resnet_cli.analysis.fvcore_engine import count_with_fvcore, summarize_unsupported


def small_spec(arch):
    spec = get_spec(arch)
    return spec.replace(input_size=min(spec.input_size, 64))


# (test_zoo.py builds and runs every arch and checks its parameters against the module; here: the MACs.)
@pytest.mark.parametrize("arch", LIGHT)
def test_analytic_macs_equal_fvcore_conv_linear(arch):
    report = count_with_fvcore(small_spec(arch))
    analytic = count_params(small_spec(arch))
    assert report.fvcore["conv_linear"] == analytic.macs
    assert report.params == analytic.params
    # fvcore's own total adds batch norm and pooling on top: never less than the conv+linear part
    assert report.fvcore["total"] >= report.fvcore["conv_linear"]


@pytest.mark.slow
@pytest.mark.parametrize("arch", HEAVY)
def test_heavy_archs_agree(arch):
    report = count_with_fvcore(small_spec(arch))
    assert report.fvcore["conv_linear"] == count_params(small_spec(arch)).macs


def test_fvcore_report_resnet18_at_224():
    # torchvision documents 1.814 GFLOPS (multiply-adds) for resnet18; fvcore's conv+linear is the exact MACs.
    report = count_with_fvcore(get_spec("resnet18"), detail=2)
    fv = report.fvcore
    assert fv["conv_linear"] == report.macs == 1_814_073_344
    assert math.isclose(fv["conv_linear"] / 1e9, 1.814, abs_tol=5e-4)
    # by operator: conv + linear (addmm/linear) add up to the conv+linear part; batch norm is charged too
    assert fv["by_operator"].get("batch_norm", 0) > 0
    assert fv["total"] == sum(fv["by_operator"].values())
    # the per-module rows: the network's children then the eight blocks, their params summing to the total
    top = [r for r in fv["modules"] if r["level"] == 1]
    assert sum(r["params"] for r in top) == report.params == 11_689_512
    blocks = [r["module"] for r in fv["modules"] if r["level"] == 2]
    assert blocks == [f"layer{s}.{j}" for s in range(1, 5) for j in range(2)]
    assert sum(r["conv_linear"] for r in top) == fv["conv_linear"]
    # what fvcore skipped: the 8 residual additions and the max-pool, in one line
    assert "\n" not in fv["not_counted"]
    assert "aten::add x8" in fv["not_counted"] and "max_pool2d" in fv["not_counted"]


def test_summarize_unsupported_is_one_sorted_line():
    line = summarize_unsupported({"aten::relu_": 3, "aten::add": 16, "aten::pad": 3})
    assert line.startswith("aten::add x16, aten::pad x3, aten::relu_ x3")
    assert summarize_unsupported({}) == ""


def test_fvcore_agrees_on_a_non_square_input():
    # the plan carries height and width apart: fvcore traces a 64x96 input through the built module
    spec = get_spec("resnet50", input_size=64, input_width=96)
    report = count_with_fvcore(spec)
    assert report.fvcore["conv_linear"] == count_params(spec).macs
    assert report.fvcore["conv_linear"] != count_params(get_spec("resnet50", input_size=64)).macs
