"""Reproduce the papers' tables of model sizes with resnet-cli's analytic counter (no torch needed).

    python examples/zoo_tables.py            # markdown tables on stdout (examples/zoo_tables.md is its output)

Each row: the exact parameter count the tool computes, the paper's rounded figure, and whether the exact count
rounds to it. Where it does not, the note says why (see also tests/test_zoo.py, which checks every row).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from resnet_cli import get_spec
from resnet_cli.plan import plan_model

WRN_NOTE = "depth as the paper counts it: 6n convs in blocks + conv1 + 3 shortcut convs"
TABLES = [
    ("He et al. 2015, Table 6 — CIFAR-10 ResNets (option A shortcuts)", [
        ("resnet20", "0.27M", ""), ("resnet32", "0.46M", ""), ("resnet44", "0.66M", ""),
        ("resnet56", "0.85M", ""), ("resnet110", "1.7M", ""), ("resnet1202", "19.4M", ""),
    ]),
    ("He et al. 2016 (identity mappings) — pre-activation ResNets, CIFAR-10", [
        ("preact_resnet110", "1.7M", "fb.resnet.torch preresnet.lua, its CIFAR default: option A"),
        ("preact_resnet164", "1.7M", "KaimingHe/resnet-1k-layers: the stride in the first 1x1"),
        ("preact_resnet1001", "10.2M", "the paper leaves out BN's scales and shifts: 10,178,490 without them"),
    ]),
    ("Xie et al. 2017, Table 7 — ResNeXt-29 on CIFAR", [
        ("resnext29_8x64d", "34.4M", ""),
        ("resnext29_16x64d", "68.1M", "the paper truncates 68.155M to one decimal"),
    ]),
    ("Zagoruyko & Komodakis 2016 — Wide ResNets on CIFAR", [
        ("wrn40_4", "8.9M", WRN_NOTE), ("wrn16_8", "11.0M", WRN_NOTE), ("wrn28_10", "36.5M", WRN_NOTE),
    ]),
    ("He et al. 2015 Table 1, He et al. 2019, Hu et al. 2018 — ImageNet layouts as the authors' code has them", [
        ("resnet50_v1", "25,557,032", "stride in the first 1x1; MACs = Table 1's 3.8 GFLOPs"),
        ("resnet101_v1", "44,549,160", "MACs = Table 1's 7.6 GFLOPs"),
        ("resnet152_v1", "60,192,808", "MACs = Table 1's 11.3 GFLOPs"),
        ("resnet50d", "25,576,264", "timm resnet50d"),
        ("seresnet50", "28,088,024", "timm seresnet50"),
        ("seresnext50_32x4d", "27,559,896", "timm seresnext50_32x4d"),
        ("preact_resnet18", "11,687,720", "fb.resnet.torch preresnet.lua; timm resnetv2 count"),
        ("preact_resnet50", "25,549,352", "fb.resnet.torch preresnet.lua; timm resnetv2_50"),
        ("preact_resnet200", "64,666,152", "fb.resnet.torch preresnet.lua (the paper's ResNet-200)"),
    ]),
    ("Huang et al. 2017, Table 2 — DenseNets on CIFAR", [
        ("densenet40_12", "1.0M", "the paper's 16-channel stem (the authors' code: 2k = 24, 1,059,298)"),
        ("densenet_bc100_12", "0.8M", ""),
        ("densenet_bc250_24", "15.3M", ""), ("densenet_bc190_40", "25.6M", ""),
    ]),
    ("torchvision — DenseNets on ImageNet (documented num_params)", [
        ("densenet121", "7,978,856", ""), ("densenet161", "28,681,000", ""),
        ("densenet169", "14,149,480", ""), ("densenet201", "20,013,928", ""),
        ("densenet264", "—", "the paper's Table 1 model; not in torchvision"),
    ]),
]


def rounds_to(exact: int, published: str) -> str:
    if published in ("—", ""):
        return ""
    if published.endswith("M"):
        figure = published[:-1]
        decimals = len(figure.split(".")[1]) if "." in figure else 0
        return "yes" if f"{exact / 1e6:.{decimals}f}" == figure else "no"
    return "yes" if f"{exact:,}" == published else "no"


def main() -> None:
    for title, rows in TABLES:
        print(f"### {title}\n")
        print("| model | depth | blocks | params (exact) | paper | rounds to it | MACs | note |")
        print("|---|---:|---:|---:|---:|:-:|---:|---|")
        for name, published, note in rows:
            spec = get_spec(name)
            plan = plan_model(spec)
            print(f"| `{name}` | {spec.depth} | {spec.num_blocks} | {plan.params:,} | {published} | "
                  f"{rounds_to(plan.params, published)} | {plan.macs / 1e9:.3f} G | {note} |")
        print()

    print("### He et al. 2016, Fig. 4 — the five BN/ReLU placements "
          "(parameters of ResNet-110 and ResNet-164, option B)\n")
    print("| placement | ResNet-110 | ResNet-164 |")
    print("|---|---:|---:|")
    for placement in ("original", "bn_after_add", "relu_before_add", "relu_preact", "full_preact"):
        r110 = plan_model(get_spec("preact_resnet110", placement=placement, shortcut="B")).params
        r164 = plan_model(get_spec("preact_resnet164", placement=placement)).params
        print(f"| {placement} | {r110:,} | {r164:,} |")
    print()

    print("### He et al. 2016, Table 1 — shortcut variants on ResNet-110 (original units, option B)\n")
    print("| shortcut_mode | params | MACs |")
    print("|---|---:|---:|")
    for mode in ("identity", "scaling", "exclusive_gating", "shortcut_gating", "conv", "dropout"):
        plan = plan_model(get_spec("resnet110", shortcut="B", shortcut_mode=mode))
        print(f"| {mode} | {plan.params:,} | {plan.macs / 1e6:.1f} M |")
    print()

    spec = get_spec("resnet110", stochastic_depth=0.5)
    print("### Huang et al. 2016 — stochastic depth on ResNet-110 (p_L = 0.5)\n")
    print(f"expected blocks per training step: {spec.expected_depth:.2f} of {spec.num_blocks} "
          f"(= (3L - 1)/4 = {(3 * spec.num_blocks - 1) / 4:.2f})\n")

    print("### Small Keras models, in PyTorch (resnet_v1/resnet_v2 of He et al.'s units; MiniModel)\n")
    print("| model | params | MACs |")
    print("|---|---:|---:|")
    for name in ("keras_resnet_v1", "keras_resnet_v2", "keras_minimodel"):
        plan = plan_model(get_spec(name))
        print(f"| `{name}` | {plan.params:,} | {plan.macs / 1e6:.1f} M |")


if __name__ == "__main__":
    main()
