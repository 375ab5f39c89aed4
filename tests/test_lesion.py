"""The lesion study (Veit et al. 2016): the ResNet/plain contrast on trained nets, engine equality, resume, OOM,
the model left unchanged, and the CLI's JSON and files."""

import json
import math

import pytest
import torch
from cli_runner import run
from lesion_nets import LinearNet, digits, one_thread, trained, write_checkpoint

from resnet_cli.analysis.lesion import (
    Config,
    Layout,
    LesionInterrupted,
    build_tree,
    lesion_study,
    reorder_measurements,
    tree_op_counts,
)
from resnet_cli.errors import ResnetCliError
from resnet_cli.models import build_model
from resnet_cli.registry import get_spec


@pytest.fixture(scope="module")
def test_data():
    x, y, _ = digits("test")
    return x, y


@pytest.fixture(scope="module")
def resnet():
    return trained("cifar_resnet14")


@pytest.fixture(scope="module")
def plain():
    return trained("cifar_plain14")


def study(model, data, **kw):
    with one_thread():
        return lesion_study(model, *data, **kw)


def test_resnet_shrugs_off_a_deleted_block_but_its_plain_twin_collapses(resnet, plain, test_data):
    res = study(resnet[1], test_data, experiments=["single"])
    pl = study(plain[1], test_data, experiments=["single"])
    assert res.baseline_error < 0.1 and pl.baseline_error < 0.25  # both learnt the digits
    res_rise = sum(r.error for r in res.single) / len(res.single) - res.baseline_error
    pl_rise = sum(r.error for r in pl.single) / len(pl.single) - pl.baseline_error
    assert len(res.single) == 6  # every residual block can go (its shortcut stays)
    assert pl_rise > 0.5  # the plain net is close to chance (90% error) without one of its layers
    assert res_rise < pl_rise / 2
    # the plain layers that change the shape cannot be replaced by an identity: skipped, and said so
    assert {s["block"] for s in pl.skipped} == {"layer2.0", "layer3.0"}
    assert any("cannot be replaced" in n for n in pl.notes)
    assert [r.downsample for r in res.single] == [False, False, True, False, True, False]


@pytest.mark.parametrize("which", ["resnet", "plain"])
def test_cached_and_naive_engines_count_the_same(which, resnet, plain, test_data):
    model = (resnet if which == "resnet" else plain)[1]
    data = (test_data[0][:150], test_data[1][:150])
    kw = dict(max_k=3, samples=2, seed=3, batch_size=64)
    cached = study(model, data, engine="cached", **kw).to_dict()
    naive = study(model, data, engine="naive", **kw).to_dict()
    cached["settings"].pop("engine"), naive["settings"].pop("engine")
    assert cached == naive  # exactly: same kernels on the same tensors
    assert cached["multi"] and cached["reorder"]


def test_the_model_is_left_unchanged(resnet, test_data):
    model = resnet[1]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()  # the study switches to eval and must restore the flags
    try:
        study(model, (test_data[0][:40], test_data[1][:40]), max_k=2, samples=1)
        assert all(m.training for m in model.modules())
    finally:
        model.eval()
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    for m in model.modules():
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks)
    assert all(p.grad is None for p in model.parameters())


def test_interrupted_study_resumes_to_the_same_result(resnet, test_data, tmp_path):
    data = (test_data[0][:96], test_data[1][:96])
    kw = dict(max_k=2, samples=2, seed=1, batch_size=16)
    whole = study(resnet[1], data, **kw).to_dict()
    state = tmp_path / "measurements.json"
    calls = {"n": 0}

    def stop_midway(event):
        calls["n"] += 1
        if calls["n"] == 9:  # the 3rd batch of the second chunk (multi k=1)
            raise KeyboardInterrupt  # (reported after the batch was counted)

    with pytest.raises(LesionInterrupted, match="resume the study"):  # the CLI names --resume (tested below)
        study(resnet[1], data, state_path=state, save_every=1e9, progress=stop_midway, **kw)
    kept = json.loads(state.read_text())
    assert "single/0" in kept["done"] and "baseline" in kept["done"]  # the finished chunk
    assert kept["partial"]["chunk"] == "multi/k=1" and kept["partial"]["images_done"] == 48
    with pytest.raises(ResnetCliError, match="already holds a lesion study"):
        study(resnet[1], data, state_path=state, **kw)  # never overwrite a study silently
    with pytest.raises(ResnetCliError, match="seed"):
        study(resnet[1], data, state_path=state, resume=True, **{**kw, "seed": 2})
    seen = []
    resumed = study(resnet[1], data, state_path=state, resume=True, progress=lambda e: seen.append(e.advance), **kw)
    assert resumed.to_dict() == whole
    assert sum(seen) == 96 * 4  # progress covers single, multi k=1 and 2, reorder k=1, whether kept or rerun
    assert json.loads(state.read_text())["partial"] is None


class Wrapped(torch.nn.Module):
    """A network that behaves as ``inner`` except where a test overrides a method (to make it fail on cue)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)


def test_out_of_memory_halves_the_batch(resnet, test_data):
    model = resnet[1]
    data = (test_data[0][:64], test_data[1][:64])
    expected = study(model, data, experiments=["single"], batch_size=64)

    class Greedy(Wrapped):  # the same network, failing like CUDA does on batches over 16 images
        def forward_stem(self, x):
            if x.shape[0] > 16:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return self.inner.forward_stem(x)

    got = study(Greedy(model), data, experiments=["single"], batch_size=64)
    assert [r.error for r in got.single] == [r.error for r in expected.single]
    assert got.baseline_error == expected.baseline_error
    assert any("halved to 16" in n for n in got.notes)


def test_prefix_tree_runs_each_shared_prefix_once():
    """Single deletions of n blocks: the unaltered trunk runs n blocks; deleting block p adds its skip and the
    n-1-p blocks after it. Total n + n(n-1)/2 block runs, against n(n+1) for a full pass per configuration."""
    n = 7
    base = tuple(("run", p) for p in range(n))
    ops = [base] + [base[:p] + (("skip", p),) + base[p + 1:] for p in range(n)]
    counts = tree_op_counts(build_tree(ops))
    assert counts == {"run": n + n * (n - 1) // 2, "skip": n, "head": n + 1}


def test_layout_ops_for_deletions_and_swaps():
    model = LinearNet([0.5, 0.25, 2.0, 3.0])  # sequence: block0, double, block1, block2, block3
    layout = Layout(model)
    assert layout.ops(Config()) == (("run", 0), ("run", 1), ("run", 2), ("run", 3), ("run", 4))
    assert layout.ops(Config(deleted=(2,))) == (("run", 0), ("run", 1), ("run", 2), ("skip", 3), ("run", 4))
    assert layout.ops(Config(swaps=((1, 3),))) == (("run", 0), ("run", 1), ("run", 4), ("run", 3), ("run", 2))
    layout.probe(torch.ones(1, 5))
    assert [b.position for b in layout.blocks] == [0, 2, 3, 4]


def test_reorder_swaps_only_blocks_of_equal_shape(resnet):
    model = resnet[1]
    layout = Layout(model)
    layout.probe(torch.zeros(1, 1, 8, 8))
    ms = reorder_measurements(layout.blocks, max_k=5, samples=20, seed=0)
    stage = {b.index: b.stage for b in layout.blocks}
    downsample = {b.index for b in layout.blocks if b.downsample}
    # ResNet-14: stage 1 has 2 swappable blocks, stages 2 and 3 one each (their first block downsamples)
    assert {m.k for m in ms} == {1}
    for m in ms:
        for a, b in m.config.swaps:
            assert stage[a] == stage[b] and not {a, b} & downsample
    assert ms == reorder_measurements(layout.blocks, max_k=5, samples=20, seed=0)  # same seed, same samples


def test_the_reorder_note_says_why_it_stops():
    from resnet_cli.analysis.lesion import BlockInfo, plan_chunks

    def blocks(*shapes):
        return [BlockInfo(index=i, name=f"b{i}", stage=i, position=i, downsample=False, in_shape=s, out_shape=s,
                          removable=True) for i, s in enumerate(shapes)]

    # one block of each shape (cifar_resnet8: one block per stage): no swap at all, not "stops at k=0"
    chunks, notes = plan_chunks(blocks((16,), (32,), (64,)), ["reorder"], max_k=3, samples=2, seed=0)
    assert notes == ["reorder: no two blocks of equal shape to swap (a downsampling block is never swapped)"]
    assert [c.name for c in chunks] == ["baseline"]
    # two pairs of equal shape: two disjoint swaps at most
    _, notes = plan_chunks(blocks((16,), (16,), (32,), (32,), (64,)), ["reorder"], max_k=3, samples=2, seed=0)
    assert notes == ["reorder stops at k=2: no more disjoint pairs of equal-shaped blocks"]
    _, notes = plan_chunks(blocks((16,), (16,), (32,), (32,)), ["reorder"], max_k=2, samples=2, seed=0)
    assert notes == []


def test_multi_samples_follow_the_seed(resnet, test_data):
    data = (test_data[0][:32], test_data[1][:32])
    a = study(resnet[1], data, experiments=["multi"], max_k=3, samples=3, seed=5)
    b = study(resnet[1], data, experiments=["multi"], max_k=3, samples=3, seed=5)
    c = study(resnet[1], data, experiments=["multi"], max_k=3, samples=3, seed=6)
    assert a.to_dict() == b.to_dict()
    assert [r.configs for r in a.multi] != [r.configs for r in c.multi]
    assert [r.k for r in a.multi] == [1, 2, 3]
    assert all(len(set(cfg)) == r.k for r in a.multi for cfg in r.configs)


# --------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def resnet_ckpt(resnet, tmp_path_factory):
    spec, model, info = resnet
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "resnet14.pt", spec, model, info)


def test_cli_json_schema(resnet_ckpt):
    with one_thread():
        res = run("lesion", resnet_ckpt, "--limit", "60", "--max-k", "2", "--samples",
                  "2", "--format", "json", "--device", "cpu")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["dataset"] == "digits" and doc["images"] == 60
    assert 0 <= doc["baseline_error"] <= 1
    assert [set(r) >= {"block", "index", "downsample", "shape_change", "error"} for r in doc["single"]] == [True] * 6
    # ResNet-14 on CIFAR: stages 2 and 3 open with a block that halves the map (and widens it)
    assert [r["shape_change"] for r in doc["single"]] == [None, None, "downsampling", None, "downsampling", None]
    assert [r["k"] for r in doc["multi"]] == [1, 2] and all(len(r["errors"]) == 2 for r in doc["multi"])
    assert [r["k"] for r in doc["reorder"]] == [1]
    assert math.isclose(doc["baseline_error"] * 60, round(doc["baseline_error"] * 60), abs_tol=1e-9)


def test_cli_out_dir_and_resume(resnet_ckpt, tmp_path):
    out = tmp_path / "study"
    args = ["lesion", str(resnet_ckpt), "--limit", "40", "--experiments", "single,multi", "--max-k", "2",
            "--samples", "1", "--out", str(out), "--device", "cpu", "-q"]
    with one_thread():
        first = run(*args)
        assert first.exit_code == 0, first.output
        for name in ("lesion.json", "measurements.json", "measurements.csv", "single.png", "multi.png"):
            assert (out / name).stat().st_size > 0, name
        again = run(*args)
        assert again.exit_code == 2 and "--resume" in again.stderr
        resumed = run(*args, "--resume", "--format", "json")
    assert resumed.exit_code == 0
    assert json.loads(resumed.stdout)["single"] == json.loads((out / "lesion.json").read_text())["single"]
    assert "holds no study yet" not in resumed.stderr


def test_cli_resume_of_a_folder_without_a_study_says_it_starts_afresh(resnet_ckpt, tmp_path):
    """A typo in --out with --resume would otherwise repeat hours of work without a word."""
    typo = tmp_path / "studdy"
    with one_thread():
        res = run("lesion", resnet_ckpt, "--limit", "20", "--experiments", "single",
                  "--out", typo, "--resume", "--device", "cpu")
    assert res.exit_code == 0, res.output
    note = [line for line in res.stderr.splitlines() if line.startswith("note: --resume")]
    assert len(note) == 1 and f"{typo} holds no study yet" in note[0] and "from the beginning" in note[0]
    assert "wrote lesion.json, measurements.json, measurements.csv and" in res.stderr
    assert (typo / "measurements.json").exists()


@pytest.mark.parametrize("args, message", [
    (["--experiments", "single,shuffle"], "--experiments"),
    (["--resume"], "--out"),
    (["--engine", "fast"], "--engine"),
])


def test_cli_bad_input_is_one_line(resnet_ckpt, args, message):
    res = run("lesion", resnet_ckpt, *args)
    assert res.exit_code == 2
    assert message in res.stderr and "Traceback" not in res.stderr


def test_cli_missing_checkpoint(tmp_path):
    res = run("lesion", tmp_path / "nope.pt")
    assert res.exit_code == 2 and "no such checkpoint" in res.stderr


def test_cli_checks_the_checkpoint_path_once(resnet_ckpt, monkeypatch):
    """One check of the path (its kind, size and name, before torch reads the file: load_checkpoint's), not one
    more in lesion and another in the file's reader."""
    import resnet_cli.checkpoint as checkpoint_package
    from resnet_cli.checkpoint import format as checkpoint_format
    from resnet_cli.checkpoint import safety

    checked, real = [], safety.check_checkpoint_path

    def counted(path):
        checked.append(str(path))
        return real(path)

    for module in (checkpoint_package, checkpoint_format, safety):  # every name it is called by
        monkeypatch.setattr(module, "check_checkpoint_path", counted)
    with one_thread():
        res = run("lesion", resnet_ckpt, "--limit", "20", "--experiments", "single",
                  "--device", "cpu", "-q", "--format", "json")
    assert res.exit_code == 0, res.output
    assert checked == [str(resnet_ckpt)]


def test_random_resnet56_engines_agree_on_a_few_images():
    """The benchmark's network: every block of a ResNet-56 deleted in turn, both engines, the same counts."""
    torch.manual_seed(0)
    model = build_model(get_spec("resnet56")).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    a = study(model, (x, y), experiments=["single"], engine="cached")
    b = study(model, (x, y), experiments=["single"], engine="naive")
    assert [r.error for r in a.single] == [r.error for r in b.single] and len(a.single) == 27


def test_channels_last_copy_agrees_and_leaves_the_model_alone(resnet, test_data):
    """The CUDA set-up (a channels_last copy of the model, NHWC batches), exercised on the CPU: the same errors
    within one image (other kernels may round differently), and the caller's weights keep their layout."""
    model = resnet[1]
    data = (test_data[0][:100], test_data[1][:100])
    plain_run = study(model, data, experiments=["single"])
    nhwc = study(model, data, experiments=["single"], channels_last=True)
    assert nhwc.settings["channels_last"] is True
    assert abs(nhwc.baseline_error - plain_run.baseline_error) <= 0.01 + 1e-9
    assert all(abs(a.error - b.error) <= 0.01 + 1e-9 for a, b in zip(nhwc.single, plain_run.single))
    assert model.conv1.weight.is_contiguous()  # not converted in place


def test_benchmark_smoke(tmp_path):
    """benchmarks/bench_lesion.py on a tiny run: identical errors, and the cached engine runs less work."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_lesion.py"
    spec = importlib.util.spec_from_file_location("bench_lesion", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with one_thread():
        doc = bench.main(["--arch", "resnet20", "--images", "8", "--batch-size", "8", "--repeats", "1",
                          "--out", str(tmp_path / "b.json")])
    assert doc["errors_identical"] and doc["configurations"] == 10
    # ResNet-20 (9 blocks, 3 per stage): naive runs 10 full passes; cached runs the trunk once plus, for each
    # deleted block, the blocks after it: far less, and the saved work is visible in the MAC count
    assert doc["work_ratio_naive_over_cached"] > 1.5
    assert json.loads((tmp_path / "b.json").read_text())["rows"][0]["run"] == "inference"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_cuda_agree_within_tolerance(resnet, test_data):
    """bf16/fp16 autocast and NHWC kernels round differently: a few images may flip, no more."""
    model = resnet[1]
    cpu = study(model, test_data, max_k=3, samples=3)
    gpu = study(model, test_data, max_k=3, samples=3, device="cuda")
    assert gpu.settings["autocast"] in ("bfloat16", "float16") and gpu.settings["channels_last"]
    assert abs(gpu.baseline_error - cpu.baseline_error) <= 0.02
    assert all(abs(a.error - b.error) <= 0.03 for a, b in zip(gpu.single, cpu.single))
    for g, c in zip(gpu.multi + gpu.reorder, cpu.multi + cpu.reorder):
        assert g.configs == c.configs and abs(g.mean - c.mean) <= 0.03
    assert next(model.parameters()).device.type == "cpu"


def test_ctrl_c_inside_a_batch_drops_only_that_batch(resnet, test_data, tmp_path):
    """A KeyboardInterrupt in the middle of a forward pass: the counts kept are those of whole batches, and the
    resumed study equals the uninterrupted one."""
    model = resnet[1]
    data = (test_data[0][:64], test_data[1][:64])
    kw = dict(experiments=["single"], batch_size=16)
    whole = study(model, data, **kw)

    class Fragile(Wrapped):
        calls = 0

        def forward_stem(self, x):
            self.calls += 1
            if self.calls == 4:  # the probe is call 1, so this is the third batch
                raise KeyboardInterrupt
            return self.inner.forward_stem(x)

    state = tmp_path / "m.json"
    with pytest.raises(LesionInterrupted):
        study(Fragile(model), data, state_path=state, **kw)
    assert json.loads(state.read_text())["partial"]["images_done"] == 32
    assert study(model, data, state_path=state, resume=True, **kw).to_dict() == whole.to_dict()


def test_engines_agree_on_a_network_with_a_module_between_blocks():
    """Only the model interface is used: a module that is not a block (as a DenseNet transition) runs in place,
    and linear blocks let every error be checked against the naive engine."""
    torch.manual_seed(0)
    model = LinearNet([0.5, -1.0, 0.25, 2.0, -0.5, 1.5])
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    a = study(model, (x, y), max_k=3, samples=4, batch_size=16, engine="cached").to_dict()
    b = study(model, (x, y), max_k=3, samples=4, batch_size=16, engine="naive").to_dict()
    a["settings"].pop("engine"), b["settings"].pop("engine")
    assert a == b and len(a["single"]) == 6 and [r["k"] for r in a["reorder"]] == [1, 2, 3]


def test_cli_csv(resnet_ckpt):
    with one_thread():
        res = run("lesion", resnet_ckpt, "--limit", "20", "--experiments", "single",
                  "--format", "csv", "--device", "cpu")
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "experiment,k,block,index,shape_change,sample,error" and len(lines) == 1 + 1 + 6


# Every family of the zoo goes through the same engine (models/base.py: sequence, residual_blocks, skip).


FAMILIES = [
    ("densenet40_12", {"layers": "2,2,2"}),
    ("highway20", {}),
    ("preact_resnet110", {"layers": "2,2,2"}),
    ("resnet20", {"stochastic_depth": 0.5}),
    ("resnet20", {"shortcut_mode": "exclusive_gating", "shortcut": "B"}),
    ("keras_resnet_v2", {}),
]


@pytest.mark.parametrize("arch, overrides", FAMILIES, ids=lambda v: v if isinstance(v, str) else "-".join(
    f"{k}={x}" for k, x in v.items()))


def test_cached_equals_naive_on_every_family(arch, overrides):
    import resnet_cli

    torch.manual_seed(0)
    model = resnet_cli.build_model(arch, input_size=16, num_classes=10, **overrides).eval()
    x, y = torch.randn(12, 3, 16, 16), torch.randint(0, 10, (12,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cached, naive = (lesion_study(model, x, y, engine=e, max_k=2, samples=2, batch_size=8,
                                  device=torch.device("cpu")).to_dict() for e in ("cached", "naive"))
    for key in ("baseline_error", "single", "multi", "reorder"):
        assert cached[key] == naive[key]
    assert len(cached["single"]) == len(model.residual_blocks())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_single_table_says_what_a_deletion_is_for_resnet_and_plain(resnet, plain, test_data):
    """A plain net has no shortcut: its table must not say 'shortcut kept'."""
    from rich.console import Console

    from resnet_cli.render.lesion import lesion_table

    data = (test_data[0][:64], test_data[1][:64])
    titles = {}
    for which, model in (("resnet", resnet[1]), ("plain", plain[1])):
        console = Console(record=True, width=200)
        lesion_table(study(model, data, experiments=["single"]), console)
        titles[which] = " ".join(console.export_text().split())  # rich wraps the title to the table
    assert "residual branch removed, shortcut kept" in titles["resnet"]
    assert "shortcut" not in titles["plain"] and "layer replaced by an identity" in titles["plain"]


def test_multi_deletions_never_repeat_a_set():
    """With 9 blocks there are only C(9, 8) = 9 ways to delete 8 and one to delete all 9: the study measures each
    once instead of the same set 10 times (which would report a spread of 0 over 10 'samples')."""
    import random

    from resnet_cli.analysis.lesion import BlockInfo, distinct_subsets, multi_measurements

    blocks = [BlockInfo(index=i, name=f"b{i}", stage=1, position=i, downsample=False, in_shape=(4,),
                        out_shape=(4,), removable=True) for i in range(9)]
    by_k = {}
    for m in multi_measurements(blocks, max_k=9, samples=10, seed=0):
        by_k.setdefault(m.k, []).append(m.config.deleted)
    assert {k: len(v) for k, v in by_k.items()} == {1: 9, 2: 10, 3: 10, 4: 10, 5: 10, 6: 10, 7: 10, 8: 9, 9: 1}
    assert all(len(set(v)) == len(v) for v in by_k.values())
    # four swappable blocks: C(4, 2) = 6 single swaps and 3 ways to swap two disjoint pairs
    from resnet_cli.analysis.lesion import reorder_measurements

    swaps_by_k = {}
    for m in reorder_measurements(blocks[:4], max_k=2, samples=10, seed=0):
        swaps_by_k.setdefault(m.k, []).append(m.config.swaps)
    assert {k: len(set(v)) for k, v in swaps_by_k.items()} == {1: 6, 2: 3}
    assert all(len(set(v)) == len(v) for v in swaps_by_k.values())
    big = distinct_subsets(random.Random(0), range(600), 3, 50)
    assert len(set(big)) == 50 and all(len(s) == 3 and list(s) == sorted(s) for s in big)


@pytest.mark.parametrize("which", ["resnet", "plain"])
def test_stacked_engine_counts_what_the_cached_one_does(which, resnet, plain, test_data):
    """Branches stacked into one batch: on the CPU each image's logits do not depend on its batch-mates, so the
    counts are the cached engine's exactly (deletions, swaps and the plain net's skipped layers alike)."""
    model = (resnet if which == "resnet" else plain)[1]
    data = (test_data[0][:100], test_data[1][:100])
    kw = dict(max_k=3, samples=2, seed=5, batch_size=32)
    cached = study(model, data, engine="cached", **kw).to_dict()
    stacked = study(model, data, engine="stacked", **kw).to_dict()
    assert stacked["settings"].pop("engine") == "stacked"
    cached["settings"].pop("engine")
    assert stacked == cached and stacked["multi"] and stacked["reorder"]


def test_k1_of_multi_is_the_mean_of_the_single_deletions_when_every_set_fits_in_the_samples():
    """With C(n, 1) = n <= --samples, multi runs every one-block set once: its k = 1 mean is the single table's mean
    (the README's lesion_digits paragraph quotes it as such)."""
    import torch

    from resnet_cli.analysis.lesion import lesion_study
    from resnet_cli.models import build_model
    from resnet_cli.registry import get_spec

    torch.manual_seed(0)
    model = build_model(get_spec("cifar_resnet14", input_size=8, widths="4,8,16", stem_width=4)).eval()
    x, y = torch.randn(40, 3, 8, 8), torch.randint(0, 10, (40,))
    result = lesion_study(model, x, y, experiments=["single", "multi"], max_k=1, samples=10)
    single = sorted(r.error for r in result.single)
    assert len(single) == 6 and sorted(result.multi[0].errors) == single
    assert result.multi[0].mean == pytest.approx(sum(single) / 6)
