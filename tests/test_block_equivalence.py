"""The ResNet blocks compute what they computed before their rewrite as explicit forward passes.

tests/data/block_outputs.json was recorded with ``python tests/test_block_equivalence.py`` on the interpreter-style
ResNetBlock (pre_ops/body_ops/post_ops name lists run by getattr; models/resnet.py at commit f1cca8e) that the
explicit forward passes replaced; each test recomputes its case with the current code. A case is a small net in
float64 whose weights and BN statistics are set from the state dict's key names (not the build order): every
placement x shortcut mode x residual on/off for both block kinds, then the other block options under each
placement. Per net: a hash of its plan (every layer with its role, block, shape and counts), the eval output and
three training steps' outputs (batch statistics, dropout, stochastic depth draws); per block: forward, skip,
shortcut, branch, gate, and the input gradient of each routed way.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from pathlib import Path

import pytest
import torch

from resnet_cli import build_model, get_spec
from resnet_cli.plan import plan_model
from resnet_cli.spec import PLACEMENTS, SHORTCUT_MODES

OUT = Path(__file__).with_name("data") / "block_outputs.json"

# (name of the case, arch, overrides): every placement x shortcut mode x residual on/off, for both block kinds,
# then the other shortcut and block options once each.
BASE = {"basic": ("resnet20", {"layers": "2,1,1"}),
        "bottleneck": ("preact_resnet164", {"layers": "2,1,1", "placement": "original"})}


def cases() -> list[tuple[str, str, dict]]:
    out = []
    for block, placement, mode, residual in itertools.product(BASE, PLACEMENTS, SHORTCUT_MODES, (True, False)):
        if not residual and mode != "identity":
            continue  # a plain net has no shortcut to vary
        arch, base = BASE[block]
        over = dict(base, placement=placement, shortcut_mode=mode, residual=residual,
                    shortcut_scale=0.3, gate_bias=-1.0, shortcut_dropout=0.25)
        out.append((f"{block}-{placement}-{mode}-{'residual' if residual else 'plain'}", arch, over))
    for block, placement in itertools.product(BASE, PLACEMENTS):
        arch, base = BASE[block]
        for label, extra in (("A", {"shortcut": "A"}), ("C", {"shortcut": "C"}), ("se", {"se_reduction": 4}),
                             ("dropout", {"dropout": 0.3}), ("stochastic", {"stochastic_depth": 0.5}),
                             ("avg_down", {"avg_down": True, "shortcut": "B"})):
            out.append((f"{block}-{placement}-{label}", arch, dict(base, placement=placement, **extra)))
        if block == "bottleneck":
            out.append((f"{block}-{placement}-stride_in_1x1-groups", arch,
                        dict(base, placement=placement, stride_in_1x1=True, groups=2, width_per_group=8)))
    for placement in PLACEMENTS:  # ImageNet stems: max-pool, the deep stem, a full_preact stem with BN-ReLU
        out.append((f"imagenet-{placement}", "resnet18", {"layers": "2,1", "widths": "8,16", "strides": "1,2",
                                                          "stem_width": 8, "input_size": 32, "placement": placement}))
    out.append(("imagenet-full_preact-stem_norm_false", "resnet18",
                {"layers": "2,1", "widths": "8,16", "strides": "1,2", "stem_width": 8, "input_size": 32,
                 "placement": "full_preact", "stem_norm": False}))
    out.append(("deep-stem", "resnet50d", {"layers": "1,1", "widths": "8,16", "strides": "1,2", "stem_width": 16,
                                           "input_size": 32}))
    out.append(("highway", "highway20", {"layers": "2,1,1"}))
    return out


def set_weights(model: torch.nn.Module) -> None:
    """Every float in the state dict from a generator seeded by its key: independent of the build order."""
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            continue
        g = torch.Generator().manual_seed(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16))
        if key.endswith("running_var"):
            value.copy_(torch.rand(value.shape, generator=g, dtype=value.dtype) + 0.5)
        else:
            value.copy_(torch.randn(value.shape, generator=g, dtype=value.dtype) * 0.5)


def digest(t: torch.Tensor | None) -> float | None:
    """One number that moves when any entry moves: a sum weighted by fixed random numbers (12 digits)."""
    if t is None:
        return None
    flat = t.detach().reshape(-1).double()
    w = torch.randn(flat.numel(), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    return float(f"{float((flat * w).sum()):.12g}")


def record_block(block, h: torch.Tensor) -> dict:
    h = h.detach()
    out = {"forward": digest(block(h)), "skip": None if block.changes_shape and not block.has_shortcut
           else digest(block.skip(h))}
    if block.has_shortcut:
        out["shortcut"] = digest(block.shortcut(h))
        out["branch"] = digest(block.branch(h))
        out["gate"] = digest(block.gate_of(h))
        for way in (True, False):
            x = h.clone().requires_grad_()
            block.zero_grad()
            block.routed(x, through_branch=way).pow(2).sum().backward()
            out[f"grad_{'branch' if way else 'shortcut'}"] = digest(x.grad)
    return out


def plan_digest(spec) -> str:
    """Every layer of the plan, its role, block, shape and counts included: any change changes the hash."""
    units = [[u.name, u.stage, u.in_shape, u.is_block, u.downsample, [sorted(vars(x).items()) for x in u.layers]]
             for u in plan_model(spec).units]
    return hashlib.sha256(json.dumps(units).encode()).hexdigest()[:16]


def record(arch: str, over: dict) -> dict:
    torch.manual_seed(0)
    spec = get_spec(arch, **over)
    model = build_model(spec).double()
    set_weights(model)
    model.eval()
    x = torch.randn(2, 3, spec.input_size, spec.input_size, generator=torch.Generator().manual_seed(3),
                    dtype=torch.float64)
    result = {"plan": plan_digest(spec), "eval": digest(model(x)), "blocks": {}}
    h = model.forward_stem(x)
    for module, ref in model.sequence():
        result["blocks"][ref.name] = record_block(module, h)
        h = module(h)
    model.train()  # batch statistics, dropout, stochastic depth: torch's generator, in the order the code draws
    torch.manual_seed(11)
    result["train"] = [digest(model(x)) for _ in range(3)]
    return result


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"blocks": {"layer1.0": {"skip": v}}} -> {"blocks/layer1.0/skip": v}: a failure names what differs."""
    out = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}{key}/") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


RECORDED = json.loads(OUT.read_text()) if OUT.exists() else {}


@pytest.mark.parametrize("name,arch,overrides", cases(), ids=[c[0] for c in cases()])
def test_the_block_computes_what_it_computed_before_the_rewrite(name, arch, overrides):
    expected = RECORDED[name]
    assert expected["overrides"] == overrides
    got = record(arch, overrides)
    assert got.keys() == expected.keys() - {"arch", "overrides"}
    want, have = flatten({k: expected[k] for k in got}), flatten(got)
    assert have.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, (list, float)):
            assert have[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
        else:
            assert have[key] == value, key  # the plan's hash, or None where there is nothing to compute


def main() -> None:
    torch.set_num_threads(1)
    data = {name: dict(arch=arch, overrides=over, **record(arch, over)) for name, arch, over in cases()}
    OUT.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"{len(data)} cases -> {OUT} ({OUT.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
