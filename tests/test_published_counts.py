"""Published numbers as oracles: torchvision's documented parameter counts and GFLOPS, He et al. 2015 Table 6."""

import pytest

from resnet_cli import get_spec
from resnet_cli.analysis.counts import count_block
from resnet_cli.plan import plan_model

# torchvision's documented num_params and GFLOPS (multiply-adds of conv + linear, 224x224, 1000 classes).
IMAGENET = {
    "resnet18": (11_689_512, 1.814),
    "resnet34": (21_797_672, 3.664),
    "resnet50": (25_557_032, 4.089),
    "resnet101": (44_549_160, 7.801),
    "resnet152": (60_192_808, 11.514),
    "resnext50_32x4d": (25_028_904, 4.23),
    "resnext101_32x8d": (88_791_336, 16.414),
    "resnext101_64x4d": (83_455_272, 15.46),
    "wide_resnet50_2": (68_883_240, 11.398),
    "wide_resnet101_2": (126_886_696, 22.753),
}

# He et al. 2015 Table 6 (option A), exact integers of the architecture.
CIFAR = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
}


@pytest.mark.parametrize("arch", sorted(IMAGENET))
def test_imagenet_params_and_macs_match_torchvision(arch):
    params, gmacs = IMAGENET[arch]
    plan = plan_model(get_spec(arch))
    assert plan.params == params
    assert round(plan.macs / 1e9, 3 if len(str(gmacs).split(".")[1]) == 3 else 2) == gmacs


def test_resnet50_macs_exact():
    assert plan_model(get_spec("resnet50")).macs == 4_089_184_256


@pytest.mark.parametrize("arch", sorted(CIFAR))
def test_cifar_params_match_table6(arch):
    assert plan_model(get_spec(arch)).params == CIFAR[arch]


@pytest.mark.parametrize("arch,blocks", [("resnet20", 9), ("resnet56", 27), ("resnet110", 54), ("resnet1202", 600),
                                         ("resnet50", 16), ("resnet18", 8)])
def test_residual_block_counts(arch, blocks):
    assert get_spec(arch).num_blocks == blocks
    assert len(plan_model(get_spec(arch)).blocks) == blocks


def test_seed_basic_vs_bottleneck_17x():
    basic = count_block("basic", 256)
    bottleneck = count_block("bottleneck", 256)
    assert basic.conv_params == 3 * 3 * 256 * 256 * 2 == 1_179_648
    assert bottleneck.conv_params == 256 * 64 + 3 * 3 * 64 * 64 + 64 * 256 == 69_632
    assert basic.bn_params == 2 * 2 * 256
    assert bottleneck.bn_params == 2 * (64 + 64 + 256)
    assert round(basic.conv_params / bottleneck.conv_params) == 17
    # MACs at a 56x56 map: every weight is used once per output pixel (stride 1, 'same' padding).
    assert basic.macs == basic.conv_params * 56 * 56
