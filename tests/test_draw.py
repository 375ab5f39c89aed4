"""``draw``: the drawing's data against the plan and the papers (He et al. 2015 Figs. 3 and 5, He et al. 2016
Fig. 4), and the command as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run

from resnet_cli.analysis.drawing import FOLD_ABOVE, block_drawing, network_column
from resnet_cli.plan import plan_model
from resnet_cli.plan.resnet import PLACEMENT_TABLE
from resnet_cli.registry import get_spec, list_archs
from resnet_cli.render.draw import column_rows

ROOT = Path(__file__).resolve().parents[1]
DRAWN_KINDS = {"conv": "conv", "pool": "pool", "linear": "fc"}


def main_path(plan):
    """The plan's layers that Figure 3 draws as boxes, in order: convs, pools and fc layers off the shortcuts
    (a squeeze-and-excitation module's layers are one box of their own; a pool that leaves its map as it is,
    none)."""
    out, shape = [], plan.units[0].in_shape
    for layer in plan.layers():
        if layer.role in ("shortcut", "gate"):
            continue
        unchanged, shape = layer.out_shape == shape, layer.out_shape
        if layer.kind in DRAWN_KINDS and ".se." not in layer.name and not (layer.kind == "pool" and unchanged):
            out.append(layer)
    return out


# --------------------------------------------------------------------------- He et al. 2015, Figure 3
def test_figure_3_resnet34_and_plain34():
    residual, plain = network_column(get_spec("resnet34")), network_column(get_spec("plain34"))
    for column in (residual, plain):
        assert column.count("conv") == 33 and column.count("fc") == 1  # 34 weighted layers
        assert [b.label for b in column.boxes][:4] == ["image", "7×7 conv, 64, /2", "pool, /2", "3×3 conv, 64"]
        assert [b.label for b in column.boxes][-2:] == ["avg pool", "fc 1000"]
        assert [b.label for b in column.boxes if b.label.endswith("/2")] == [
            "7×7 conv, 64, /2", "pool, /2", "3×3 conv, 128, /2", "3×3 conv, 256, /2", "3×3 conv, 512, /2"]
        assert [s.label for s in column.sizes] == ["112", "56", "28", "14", "7"]
        assert not column.folds
    assert plain.edges == []
    # option B: a projection (dotted) exactly where the shape changes, identity (solid) everywhere else
    assert get_spec("resnet34").shortcut == "B"
    assert len(residual.edges) == 16
    dotted = [e for e in residual.edges if e.style == "dotted"]
    assert [e.block for e in dotted] == ["layer2.0", "layer3.0", "layer4.0"]
    assert [e.detail for e in dotted] == ["1×1 conv, 128, /2", "1×1 conv, 256, /2", "1×1 conv, 512, /2"]
    assert {e.style for e in residual.edges} - {"dotted"} == {"solid"}
    # each shortcut spans its block's two convs
    for edge in residual.edges:
        spanned = residual.boxes[edge.source + 1:edge.target + 1]
        assert [b.block for b in spanned] == [edge.block] * 2


def test_figure_3_vgg19_beside_the_34_layer_nets():
    """The done-when of issue 20: 16 / 33 / 33 conv boxes (+ fc), dotted exactly where ResNet-34 projects."""
    vgg, plain, residual = (network_column(get_spec(n)) for n in ("vgg19", "plain34", "resnet34"))
    assert [c.count("conv") for c in (vgg, plain, residual)] == [16, 33, 33]
    assert [c.count("fc") for c in (vgg, plain, residual)] == [3, 1, 1]
    assert [b.label for b in vgg.boxes if b.kind in ("pool", "fc")] == ["pool, /2"] * 5 + ["fc 4096", "fc 4096",
                                                                                         "fc 1000"]
    assert [b.label for b in vgg.boxes if b.kind == "conv"] == (
        ["3×3 conv, 64"] * 2 + ["3×3 conv, 128"] * 2 + ["3×3 conv, 256"] * 4 + ["3×3 conv, 512"] * 8)
    assert [s.label for s in vgg.sizes] == ["224", "112", "56", "28", "14", "7"]
    assert vgg.edges == [] and plain.edges == []
    assert [e.block for e in residual.edges if e.style == "dotted"] == ["layer2.0", "layer3.0", "layer4.0"]
    assert f"{vgg.macs / 1e9:.1f}" == "19.6" and 3.6e9 <= residual.macs < 3.7e9  # Table 3: 19.6 and 3.6 billion
    # aligned as the paper aligns them: each stage's first box on one row in the three columns
    rows = column_rows([vgg, plain, residual])
    starts = [{span.label: r[span.first] for span in c.sizes} for c, r in zip((vgg, plain, residual), rows)]
    assert starts[0]["112"] == starts[1]["112"] and starts[0]["7"] == starts[1]["7"] == starts[2]["7"]


def test_option_a_shortcuts_are_dashed_zero_paddings_and_option_c_all_project():
    column = network_column(get_spec("resnet20"))
    assert [e.kind for e in column.edges].count("zero_pad") == 2
    assert {e.style for e in column.edges if e.kind == "zero_pad"} == {"dashed"}
    assert not [e for e in column.edges if e.style == "dotted"]
    every = network_column(get_spec("resnet34", shortcut="C"))
    assert [e.kind for e in every.edges] == ["projection"] * 16


@pytest.mark.parametrize("name", list_archs())
def test_every_registered_arch_is_its_plan(name):
    """Boxes = the plan's main-path layers (every repeat of a folded run), dotted edges = the blocks whose
    shortcut has a conv, conv labels = the plan's kernels, widths, groups and strides."""
    spec = get_spec(name)
    plan = plan_model(spec)
    for fold in (None, True):
        column = network_column(spec, fold)
        assert forward_layers(column) == [layer.name for layer in main_path(plan)]
        projecting = [u.name for u in plan.blocks
                      if any(layer.kind == "conv" for layer in u.role_layers("shortcut"))]
        assert [name for e in column.edges if e.style == "dotted" for name in _blocks_of(column, e)] == projecting
        if spec.residual:
            assert sum(e.times for e in column.edges) == len(plan.blocks)
        layers = {layer.name: layer for layer in plan.layers()}
        for box in column.boxes:
            if box.kind == "conv":
                layer = layers[box.layers[0]]
                label = f"{layer.kernel}×{layer.kernel} conv, {layer.out_shape[0]}"
                label += f", C={layer.groups}" if layer.groups > 1 else ""
                label += f", /{layer.stride}" if layer.stride > 1 else ""
                assert box.label == label
                assert {(layers[n].kernel, layers[n].out_shape[0], layers[n].stride) for n in box.layers} == \
                    {(layer.kernel, layer.out_shape[0], layer.stride)}  # a folded box stands for equal layers


def forward_layers(column):
    """The plan layers of the conv, pool and fc boxes in forward order: a folded run's boxes hold every repeat's
    layer, repeat by repeat."""
    out, i = [], 0
    folds = {f.first: f for f in column.folds}
    while i < len(column.boxes):
        fold = folds.get(i)
        run = column.boxes[i:fold.last + 1] if fold else [column.boxes[i]]
        for repeat in range(run[0].times):
            out += [b.layers[repeat] for b in run if b.kind in ("conv", "pool", "fc")]
        i += len(run)
    return out


def _blocks_of(column, edge):
    fold = next((f for f in column.folds if f.first == edge.source + 1), None)
    return list(fold.blocks) if fold else [edge.block]


def test_deep_nets_fold_into_times_n_and_unfold_on_request():
    r152 = network_column(get_spec("resnet152"))
    assert [f.times for f in r152.folds] == [2, 7, 35, 2]  # Table 1: 3, 8, 36, 3 blocks, the first apart
    assert len(r152.boxes) < FOLD_ABOVE
    assert sum(b.times for b in r152.boxes if b.kind == "conv") == 151
    unfolded = network_column(get_spec("resnet152"), fold=False)
    assert unfolded.count("conv") == 151 and not unfolded.folds
    r1202 = network_column(get_spec("resnet1202"))
    assert [f.times for f in r1202.folds] == [200, 199, 199]
    assert len(r1202.boxes) == 14  # image, conv, 3 stages of at most 2 blocks drawn, avg pool, fc
    assert network_column(get_spec("resnet34"), fold=True).folds[0].times == 3  # conv2_x: 3 blocks


def test_the_other_families_in_their_papers_manner():
    resnext = network_column(get_spec("resnext50_32x4d"))
    assert [b.label for b in resnext.boxes[3:6]] == ["1×1 conv, 128", "3×3 conv, 128, C=32", "1×1 conv, 256"]
    se = network_column(get_spec("seresnet50"))
    assert se.boxes[6].label == "SE: fc, [16, 256]" and se.boxes[6].kind == "se"  # Hu et al. Table 1
    dense = network_column(get_spec("densenet121"))
    assert [f.times for f in dense.folds] == [6, 12, 24, 16]  # Huang et al. Table 1
    assert {e.kind for e in dense.edges} == {"concat"}
    assert [b.label for b in dense.boxes if b.kind == "pool"] == ["pool, /2", "avg pool, /2", "avg pool, /2",
                                                                 "avg pool, /2", "avg pool"]
    assert dense.subtitle == "121-layer DenseNet-BC, k=32"
    wide = network_column(get_spec("wrn28_10", dropout=0.3))
    assert wide.boxes[2].label == "3×3 conv, 160"  # 16 × k
    assert wide.subtitle.endswith(", dropout 0.3")
    highway = network_column(get_spec("highway110"))
    assert {e.label for e in highway.edges} == {"1−g"}
    assert all(any(".gate" in n for n in e.layers) for e in highway.edges)


def test_pooling_kinds_are_the_built_modules():
    torch = pytest.importorskip("torch")
    from resnet_cli.models import build_model

    for name in ("densenet121", "resnet50", "densenet40_12"):
        spec = get_spec(name)
        modules = dict(build_model(spec).named_modules())
        for layer in plan_model(spec).layers():
            if layer.kind == "pool" and layer.name in modules:
                average = isinstance(modules[layer.name], (torch.nn.AvgPool2d, torch.nn.AdaptiveAvgPool2d))
                assert layer.detail.endswith("average") == average, layer.name


def test_columns_are_aligned_stage_by_stage():
    columns = [network_column(get_spec(n)) for n in ("resnet18", "plain34", "resnet34")]
    rows = column_rows(columns)
    for column, r in zip(columns, rows):
        assert r == sorted(set(r))  # top to bottom, one box a row
        first = {span.label: r[span.first] for span in column.sizes}
        assert first == {"112": 1, "56": 2, "28": 9, "14": 17, "7": 29}  # the 34-layer nets' rows set them
    # CIFAR and ImageNet sizes have nothing to align on: each column is stacked
    mixed = [network_column(get_spec(n)) for n in ("resnet20", "resnet18")]
    assert column_rows(mixed) == [list(range(len(c.boxes))) for c in mixed]


# --------------------------------------------------------------------------- blocks: Fig. 5, and Fig. 4 of 2016
def test_figure_5_weights_basic_against_bottleneck():
    basic, bottleneck = block_drawing(["basic", "bottleneck"], ["original"]).columns
    assert basic.params == 3 * 3 * 256 * 256 * 2 == 1_179_648  # REFERENCE.md
    assert bottleneck.params == 256 * 64 + 3 * 3 * 64 * 64 + 64 * 256 == 69_632
    assert [(b.label, b.weights) for b in bottleneck.boxes if b.kind == "conv"] == [
        ("1×1 conv, 64", 16_384), ("3×3 conv, 64", 36_864), ("1×1 conv, 256", 16_384)]
    assert [b.label for b in basic.boxes] == ["256-d", "3×3 conv, 256", "BN", "ReLU", "3×3 conv, 256", "BN",
                                              "addition", "ReLU"]
    edge, = basic.edges
    assert basic.boxes[edge.source].kind == "input" and basic.boxes[edge.target].kind == "add"


# He et al. 2016, Fig. 4 (a)-(e), read off the figure: weight = conv
FIGURE_4 = {
    "original": ["conv", "BN", "ReLU", "conv", "BN", "addition", "ReLU"],
    "bn_after_add": ["conv", "BN", "ReLU", "conv", "addition", "BN", "ReLU"],
    "relu_before_add": ["conv", "BN", "ReLU", "conv", "BN", "ReLU", "addition"],
    "relu_preact": ["ReLU", "conv", "BN", "ReLU", "conv", "BN", "addition"],
    "full_preact": ["BN", "ReLU", "conv", "BN", "ReLU", "conv", "addition"],
}


def test_figure_4_the_five_placements():
    drawing = block_drawing(["basic"], list(FIGURE_4))
    for column, (placement, steps) in zip(drawing.columns, FIGURE_4.items()):
        assert ["conv" if b.kind == "conv" else b.label for b in column.boxes[1:]] == steps, placement
    assert [c.subtitle for c in drawing.columns] == [
        "(a) original", "(b) BN after addition", "(c) ReLU before addition", "(d) ReLU-only pre-activation",
        "(e) full pre-activation"]
    # a bottleneck's steps follow the same rule over three convs, and each BN is the plan's
    before, after = PLACEMENT_TABLE["full_preact"].steps(3)
    assert before == ["bn1", "relu", "conv1", "bn2", "relu", "conv2", "bn3", "relu", "conv3"] and after == []


# --------------------------------------------------------------------------- the command
def test_draw_writes_the_figure_and_its_data(tmp_path):
    out = tmp_path / "fig3.png"
    result = run("draw", "vgg19", "plain34", "resnet34", "resnet34:shortcut=A", "-o", str(out), "--dpi", "60",
                 "-f", "json")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(result.stdout)
    assert doc["output"] == str(out)
    titles = [c["title"] for c in doc["columns"]]
    assert titles == ["vgg19", "plain34", "resnet34", "resnet34 (shortcut=A)"]
    assert [sum(b["kind"] == "conv" for b in c["boxes"]) for c in doc["columns"]] == [16, 33, 33, 33]
    styles = [[e["style"] for e in c["edges"]] for c in doc["columns"]]
    assert styles[0] == styles[1] == [] and styles[2].count("dotted") == 3 and styles[3].count("dashed") == 3


@pytest.mark.parametrize("suffix", ["svg", "pdf"])
def test_draw_blocks_as_vector_figures(tmp_path, suffix):
    out = tmp_path / f"fig4.{suffix}"
    result = run("draw", "--block", "basic", *[a for p in FIGURE_4 for a in ("--placement", p)], "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


def test_the_table_says_which_placement_each_block_column_is(tmp_path):
    result = run("draw", "--block", "bottleneck", "--placement", "original", "--placement", "full_preact", "-o",
                 str(tmp_path / "fig4.png"), "--dpi", "50")
    assert result.exit_code == 0, result.output
    rows = [line.split("   ")[0].strip() for line in result.stdout.splitlines() if "bottleneck, 256-d" in line]
    assert rows == ["bottleneck, 256-d, (a) original", "bottleneck, 256-d, (e) full pre-activation"]
    # at 80 columns the name wraps in its cell; no count is cut
    narrow = run("draw", "--block", "bottleneck", "--placement", "original", "--placement", "full_preact", "-o",
                 str(tmp_path / "fig4.png"), "--dpi", "50", env={"COLUMNS": "80"}).stdout
    assert "…" not in narrow and max(len(line) for line in narrow.splitlines()) <= 80


@pytest.mark.parametrize(("args", "message"), [
    (["resnet34", "-o", "x.txt"], "the file type follows the suffix"),
    (["nosuch", "-o", "x.png"], "unknown architecture 'nosuch'"),
    (["-o", "x.png"], "name one or more architectures"),
    (["resnet34", "--block", "basic", "-o", "x.png"], "not both"),
    (["--block", "bottleneck", "--channels", "6", "-o", "x.png"], "divisible by 4"),
    (["--block", "basic", "--unfold", "-o", "x.png"], "--unfold: not with --block"),
    (["resnet34", "--channels", "64", "-o", "x.png"], "--channels: only with --block"),
    (["resnet34", "--placement", "original", "--placement", "full_preact", "-o", "x.png"], "--placement once"),
    (["resnet34", "--placement", "sideways", "-o", "x.png"], "--placement must be one of"),
    (["resnet34:depth", "-o", "x.png"], "a column's overrides are NAME:FIELD=VALUE"),
    (["missing.pt", "-o", "x.png"], "missing.pt"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = run("draw", *[str(tmp_path / a) if a.startswith(("x.", "missing")) else a for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.output


def test_the_largest_nets_fold_and_an_unfolded_giant_is_refused_before_drawing(tmp_path):
    # 19,998 blocks (the limit is 20,000): folded, a column of 14 boxes
    result = run("draw", "cifar_resnet39998", "-o", str(tmp_path / "f.png"), "--dpi", "50", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith("cifar_resnet39998,39998-layer ResNet,13,11,5,0,2,")
    tall = run("draw", "cifar_resnet2000", "--unfold", "-o", str(tmp_path / "t.pdf"))
    assert tall.exit_code == 2 and "2,002 boxes tall" in tall.output and "--fold" in tall.output
    wide = run("draw", "resnet1202", "resnet1202", "resnet1202", "--unfold", "-o", str(tmp_path / "w.png"))
    assert wide.exit_code == 2 and "lower --dpi, or write .pdf or .svg" in wide.output
    assert not (tmp_path / "t.pdf").exists() and not (tmp_path / "w.png").exists()


def test_a_checkpoint_is_drawn_as_its_spec(tmp_path):
    pytest.importorskip("torch")
    from resnet_cli.checkpoint import save_checkpoint
    from resnet_cli.models import build_model

    spec = get_spec("resnet20", shortcut="B")
    path = save_checkpoint(tmp_path / "r20.pt", spec=spec, state_dict=build_model(spec).state_dict(), dataset=None,
                           record=[])
    result = run("draw", str(path), "resnet20", "-o", str(tmp_path / "c.png"), "--dpi", "60", "-f", "json")
    assert result.exit_code == 0, result.output
    mine, theirs = json.loads(result.stdout)["columns"]
    assert mine["title"] == "r20.pt (resnet20, shortcut=B)" and theirs["title"] == "resnet20"
    assert mine["arch"] == "resnet20" and mine["overrides"] == {"shortcut": "B"}
    assert [e["kind"] for e in mine["edges"]].count("projection") == 2
    assert [e["kind"] for e in theirs["edges"]].count("zero_pad") == 2
    # two checkpoints of one arch: two columns told apart by their files, in the table as in the figure
    twin = tmp_path / "twin.pt"
    twin.write_bytes(path.read_bytes())
    table = run("draw", str(path), str(twin), "-o", str(tmp_path / "c.png"), "--dpi", "50").stdout
    assert [line.split("   ")[0].strip() for line in table.splitlines() if ".pt (" in line] == [
        "r20.pt (resnet20, shortcut=B)", "twin.pt (resnet20, shortcut=B)"]
    refused = run("draw", str(path), "--set", "widths=8,16,32", "-o", str(tmp_path / "c.png"))
    assert refused.exit_code == 2 and "its weights fix the network" in refused.output
    refused = run("draw", str(path), "--placement", "full_preact", "-o", str(tmp_path / "c.png"))  # not ignored
    assert refused.exit_code == 2 and "--placement: not with a checkpoint" in refused.output


def test_draw_of_arch_names_does_not_import_torch(tmp_path):
    probe = ("import sys\nfrom resnet_cli.cli import main\n"
             f"sys.argv = ['resnet-cli', 'draw', 'resnet34', 'densenet121', '-o', {str(tmp_path / 'f.png')!r}, "
             "'--dpi', '50', '-f', 'json']\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print('torch' in sys.modules, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "False"
