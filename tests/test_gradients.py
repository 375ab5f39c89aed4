"""Gradient flow by path length (Veit et al. 2016, Fig. 6) on networks whose path gradients are known by hand."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from cli_runner import run
from lesion_nets import LinearNet, digits, one_thread, trained, write_checkpoint

from resnet_cli.analysis.gradients import (
    gated_forward,
    gradient_flow,
    length_shares,
    log_comb,
    path_gradient_norms,
    shortest_range,
)
from resnet_cli.errors import ResnetCliError


def head_gradient_norms(model, x, y, prefactor):
    """|prefactor| * ||W^T (softmax(z) - onehot(y))|| per image: the gradient at the input of a path whose
    Jacobian is ``prefactor`` times the identity (cross-entropy summed over images)."""
    with torch.no_grad():
        z = model(x)
        g = (F.softmax(z, dim=1) - F.one_hot(y, z.shape[1]).float()) @ model.fc.weight
    return abs(prefactor) * g.norm(dim=1)


@pytest.fixture
def linear_data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g)


def test_one_path_of_length_k_carries_a_to_the_k(linear_data):
    """Blocks y = x + a x with equal a: any path through k branches has Jacobian 2 a^k (the 2 is the non-block
    module between blocks 0 and 1), so m(k) = 2 a^k G exactly, and length k's share of the total gradient is
    C(n,k) a^k / (1+a)^n: a Binomial(n, a/(1+a))."""
    n, a = 6, 0.5
    model = LinearNet([a] * n)
    x, y = linear_data
    G = head_gradient_norms(model, x, y, 1.0).mean().item()
    result = gradient_flow(model, x, y, samples=3, batch_size=5, loss_fn=lambda z, t: F.cross_entropy(
        z, t, reduction="sum"))
    for row in result.rows:
        assert row.measured and row.paths == math.comb(n, row.k)
        assert row.magnitude == pytest.approx(2 * a**row.k * G, rel=1e-5)
        assert row.share == pytest.approx(math.comb(n, row.k) * a**row.k / (1 + a) ** n, rel=1e-5)
    # Binomial(6, 1/3) = (64, 192, 240, 160, 60, 12, 1) / 729. Four lengths never reach 90% (0-3: 656/729 =
    # 89.99%); of the five-length ranges 0-4 (716/729) holds more than 1-5 (664/729).
    assert result.effective_range == (0, 4)
    assert result.images == 8


def test_distinct_scales_longest_and_shortest_path(linear_data):
    scales = [0.5, 2.0, -1.0, 3.0]
    model = LinearNet(scales)
    x, y = linear_data
    G = head_gradient_norms(model, x, y, 1.0)
    norms_all = path_gradient_norms(model, x, y, {0, 1, 2, 3})
    norms_none = path_gradient_norms(model, x, y, set())
    norms_two = path_gradient_norms(model, x, y, {1, 3})
    assert torch.allclose(norms_all, 2 * 3.0 * G, rtol=1e-5)  # |2 * 0.5 * 2 * -1 * 3|
    assert torch.allclose(norms_none, 2 * G, rtol=1e-5)
    assert torch.allclose(norms_two, 2 * 6.0 * G, rtol=1e-5)


def _first_block(arch, **overrides):
    from resnet_cli import build_model

    model = build_model(arch, input_size=16, **overrides).eval()
    ref = model.residual_blocks()[1]  # a block that keeps its shape
    with torch.no_grad():
        h = model.forward_stem(torch.randn(2, 3, 16, 16))
        for module, r in model.sequence():
            if r is not None and r.index == ref.index:
                break
            h = module(h)
    return ref.module, h


# Blocks of every family whose merge is additive (nothing after the addition): the two routes split the gradient.
ADDITIVE = [
    ("preact_resnet110", {"layers": "2,1,1"}),
    ("resnet20", {"layers": "2,1,1", "placement": "full_preact", "shortcut_mode": "exclusive_gating"}),
    ("resnet20", {"layers": "2,1,1", "placement": "full_preact", "shortcut_mode": "scaling"}),
    ("resnet20", {"layers": "2,1,1", "placement": "relu_before_add", "stochastic_depth": 0.5}),
    ("highway20", {"layers": "2,1,1"}),
    ("densenet40_12", {"layers": "2,2,2"}),
]


@pytest.mark.parametrize("arch, overrides", ADDITIVE, ids=lambda v: v if isinstance(v, str) else "-".join(
    f"{k}={x}" for k, x in v.items()))
def test_routes_keep_the_value_and_split_the_gradient(arch, overrides):
    """``routed`` (what the measurement runs per block) keeps the block's output and, where the merge is additive,
    the branch route's gradient plus the shortcut route's gradient is the block's whole gradient."""
    block, h = _first_block(arch, **overrides)
    grads = []
    for forward in (block, lambda t: block.routed(t, True), lambda t: block.routed(t, False)):
        x = h.clone().requires_grad_(True)
        out = forward(x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append((out.detach(), x.grad))
    (full, g_full), (via_branch, g_branch), (via_shortcut, g_shortcut) = grads
    assert torch.allclose(via_branch, full, atol=1e-6) and torch.allclose(via_shortcut, full, atol=1e-6)
    assert torch.allclose(g_branch + g_shortcut, g_full, atol=1e-5)
    assert not torch.allclose(g_branch, g_full, atol=1e-5)  # the routes really differ


def test_route_through_the_post_activation_relu():
    """The original block, relu(h(x) + F(x)): both routes pass through the shared ReLU, so each route's gradient is
    masked where the sum is negative, and the two still add up to the whole."""
    block, h = _first_block("resnet20", layers="2,1,1")
    x = h.clone().requires_grad_(True)
    block.routed(x, False).sum().backward()
    with torch.no_grad():
        mask = (block(h) > 0).float()
    assert torch.allclose(x.grad, mask)  # identity shortcut: d/dx of relu(x + const) = mask


def test_gated_forward_keeps_the_values_and_the_model(linear_data):
    _, model, _ = trained("cifar_resnet14")
    x, y, _ = digits("test")
    x, y = x[:16], y[:16]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        assert torch.equal(gated_forward(model, x, {0, 3}), model(x))
    with one_thread():
        result = gradient_flow(model, x, y, lengths=[0, 3, 6], samples=1, batch_size=8)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert [r.measured for r in result.rows] == [True, False, False, True, False, False, True]
    assert sum(r.share for r in result.rows) == pytest.approx(1.0)
    assert all(r.magnitude > 0 for r in result.rows)


def test_plain_net_has_one_path():
    _, model, _ = trained("cifar_plain14")
    x, y, _ = digits("test")
    with pytest.raises(ResnetCliError, match="plain"):
        gradient_flow(model, x[:4], y[:4], samples=1)


def test_binomials_and_ranges_by_hand():
    assert math.exp(log_comb(54, 27)) == pytest.approx(math.comb(54, 27), rel=1e-9)
    assert log_comb(1202, 600) == pytest.approx(math.log(math.comb(1202, 600)), rel=1e-12)
    # equal magnitudes: the shares are the binomial distribution of path lengths, 1 3 3 1 over 8
    assert length_shares([0.0] * 4, 3) == pytest.approx([1 / 8, 3 / 8, 3 / 8, 1 / 8])
    assert length_shares([0.0, -math.inf, 0.0], 2) == pytest.approx([0.5, 0.0, 0.5])
    assert shortest_range([0.1, 0.5, 0.3, 0.1], 0.75) == (1, 2)
    assert shortest_range([0.2, 0.5, 0.2, 0.1], 0.85) == (0, 2)
    assert shortest_range([0.25] * 4, 1.0) == (0, 3)


def test_cli_gradients_json_and_plot(tmp_path):
    spec, model, info = trained("cifar_resnet14")
    ckpt = write_checkpoint(tmp_path / "r14.pt", spec, model, info)
    with one_thread():
        res = run("gradients", ckpt, "--limit", "8", "--samples", "1", "--step", "2",
                  "--format", "json", "--out", tmp_path / "g", "--device", "cpu")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["blocks"] == 6 and doc["images"] == 8
    assert [r["k"] for r in doc["lengths"]] == list(range(7))
    assert [r["measured"] for r in doc["lengths"]] == [True, False, True, False, True, False, True]
    assert [r["paths"] for r in doc["lengths"]] == [1, 6, 15, 20, 15, 6, 1]
    assert sum(r["share"] for r in doc["lengths"]) == pytest.approx(1.0)
    assert set(doc["effective_range"]) >= {"low", "high", "mass", "share", "fraction_of_paths"}
    assert (tmp_path / "g" / "gradients.json").exists() and (tmp_path / "g" / "gradients.png").stat().st_size
    # what was built is named as a lesion study names it: this small digits net is not the registered CIFAR one
    from resnet_cli.registry import spec_overrides

    assert doc["overrides"] == spec_overrides(spec) and doc["overrides"]["input_size"] == spec.input_size != 32


def test_gradient_figure_title_names_the_overrides(tmp_path, monkeypatch):
    from resnet_cli.analysis.gradients import GradientResult, LengthRow
    from resnet_cli.render import style
    from resnet_cli.render.lesion import gradients_plots

    titles = []
    real_title = style.title
    monkeypatch.setattr(style, "title", lambda *a, **k: titles.append(a[0]) or real_title(*a, **k))
    rows = [LengthRow(k, math.comb(2, k), True, 1.0 / (k + 1), 0.0, s) for k, s in enumerate([0.2, 0.5, 0.3])]
    result = GradientResult("cifar_resnet20", "digits", 2, 8, 1, 0.9, (0, 2), rows,
                            overrides={"input_size": 16, "in_channels": 1})
    gradients_plots(result, tmp_path)
    assert titles == ["cifar_resnet20 (input_size=16, in_channels=1)"]


def test_cli_gradients_refuses_a_plain_net(tmp_path):
    spec, model, info = trained("cifar_plain14")
    ckpt = write_checkpoint(tmp_path / "p14.pt", spec, model, info)
    res = run("gradients", ckpt, "--limit", "4")
    assert res.exit_code == 2 and "plain" in res.stderr
