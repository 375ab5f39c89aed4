"""``export``: every family's network as ONNX computes what the torch module computes (onnxruntime at two batch
sizes: the batch dimension is dynamic), named images -> logits, at the opset asked for; the real akamaster
ResNet-20 from ../shared/real exported and run on the 500 real CIFAR-10 test images scores as torch does; bad
paths, a missing onnx extra and options a checkpoint cannot take are one line and exit 2, and nothing is written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import one_line_error, run, run_json
from deterministic import deterministic_weights

from resnet_cli import build_model, get_spec
from resnet_cli.checkpoint import load_checkpoint
from resnet_cli.onnx_export import DEFAULT_OPSET, export_onnx
from resnet_cli.render.params import fmt_bytes
from resnet_cli.spec import ArchSpec

pytest.importorskip("onnxscript", reason="export needs the onnx extra (onnx, onnxscript): pip install -e '.[test]'")
ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "real"
NO_REAL = "../shared/real (akamaster's trained ResNets and 500 real CIFAR-10 test images) is absent in this clone"
AKAMASTER = REAL / "resnet20-12fca82f.th"


def onnx_logits(path: Path, images: torch.Tensor) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime", reason="running the exported files needs onnxruntime (the test "
                                                    "extra)")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (given,), (made,) = session.get_inputs(), session.get_outputs()
    assert (given.name, made.name) == ("images", "logits")
    assert given.shape[0] == "batch" and made.shape[0] == "batch"
    return session.run(None, {"images": images.numpy()})[0]


def assert_same_logits(path: Path, model: torch.nn.Module, spec, batches=(1, 3)) -> None:
    """onnxruntime's logits equal torch's at each batch size (batches other than the export's example of 2)."""
    height, width = spec.input_hw
    for batch in batches:
        images = torch.randn(batch, spec.in_channels, height, width)
        with torch.no_grad():
            expected = model(images).numpy()
        got = onnx_logits(path, images)
        assert got.shape == (batch, spec.num_classes)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


# A network of every family in the family table (resnet, highway, keras, densenet; vgg below) and of the ResNet
# variants that change the graph (stems, pre-activation, groups, widening), each small enough to export in seconds;
# the CIFAR ResNet itself goes through the CLI below. Variants marked slow: SE with ResNet-D's shortcut, gates.
SLOW = pytest.mark.slow
FAMILY_CASES = [
    pytest.param("resnet18", dict(input_size=32, layers="1,1,1,1", widths="8,16,32,64", stem_width=8),
                 id="resnet_imagenet_stem"),
    pytest.param("preact_resnet110", dict(layers="1,1,1"), id="preact"),
    pytest.param("resnext29_8x64d", dict(layers="1,1,1", widths="8,16,32"), id="resnext"),
    pytest.param("wrn16_2", dict(layers="1,1,1", dropout=0.3), id="wide_resnet"),
    pytest.param("densenet40_12", dict(layers="2,2,2"), id="densenet"),
    pytest.param("keras_minimodel", dict(layers="1,1,1,1", widths="8,16,32,64", stem_width=8), id="keras_minimodel"),
    pytest.param("highway110", dict(layers="1,1,1"), id="highway"),
    pytest.param("seresnet50", dict(layers="1,1,1,1", widths="8,16,32,64", stem_width=8, input_size=32, avg_down=True),
                 id="se_resnet_d", marks=SLOW),
    pytest.param("resnet20", dict(layers="2,1,1", shortcut_mode="exclusive_gating", stochastic_depth=0.5),
                 id="gates_stochastic_depth", marks=SLOW),
]


@pytest.mark.parametrize(("name", "overrides"), FAMILY_CASES)
def test_every_family_exports_what_torch_computes(name, overrides, tmp_path):
    spec = get_spec(name, **overrides)
    model = build_model(spec)
    deterministic_weights(model)  # batch-norm statistics and gate biases that are not a fresh build's
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = export_onnx(model, spec, tmp_path / "m.onnx")
    assert (report.input_shape, report.output_shape) == (["batch", spec.in_channels, *spec.input_hw],
                                                         ["batch", spec.num_classes])
    assert report.opset == DEFAULT_OPSET and report.bytes == (tmp_path / "m.onnx").stat().st_size
    assert not model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert_same_logits(tmp_path / "m.onnx", model, spec)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file, no external weights file


@pytest.mark.slow
def test_vgg_exports_what_torch_computes(tmp_path):
    # VGG's classifier has two 4096-wide layers whatever the convs' widths: 75 MB of weights at the least
    spec = get_spec("vgg11_bn", input_size=32, widths="8,8,8,8,8", num_classes=10)
    model = build_model(spec)
    deterministic_weights(model)
    export_onnx(model, spec, tmp_path / "vgg.onnx")
    assert_same_logits(tmp_path / "vgg.onnx", model, spec)


def test_the_cli_writes_the_cifar_resnet_it_names_and_says_what_it_wrote(tmp_path):
    import onnx

    out = tmp_path / "nets" / "r.onnx"  # a missing folder is made, as for every output of resnet-cli
    doc = run_json("export", "resnet20", "-o", out, "--set", "layers=1,1,1", "--num-classes", "7",
                   "--input-size", "24x40", "--opset", "18", "-q")
    spec = get_spec("resnet20", layers="1,1,1", num_classes=7, input_size=24, input_width=40)
    assert doc == {"output": str(out), "arch": "resnet20",
                   "label": "resnet20 (input_size=24x40, layers=1,1,1, num_classes=7)",
                   "overrides": {"input_size": 24, "layers": [1, 1, 1], "num_classes": 7, "input_width": 40},
                   "weights": "initialised", "opset": 18,
                   "bytes": out.stat().st_size, "input_name": "images", "input_shape": ["batch", 3, 24, 40],
                   "output_name": "logits", "output_shape": ["batch", 7], "normalization": None,
                   "seconds": doc["seconds"]}  # untrained weights: no normalisation to speak of
    saved = onnx.load(str(out))
    assert {o.domain: o.version for o in saved.opset_import}[""] == 18
    meta = {p.key: p.value for p in saved.metadata_props}
    assert ArchSpec.from_json(meta["resnet_cli.spec"]) == spec and meta["resnet_cli.weights"].startswith("init")
    assert meta["resnet_cli.label"] == doc["label"] and "resnet_cli.normalization" not in meta
    torch.manual_seed(0)  # conftest's seed, with which the command built its network: the same weights
    assert_same_logits(out, build_model(spec).eval(), spec, batches=(5,))


@pytest.mark.skipif(not AKAMASTER.is_file(), reason=NO_REAL)
def test_the_real_akamaster_resnet20_exported_scores_the_real_images_as_torch(tmp_path):
    doc = run_json("export", AKAMASTER, "-o", tmp_path / "aka.onnx", "-q")
    assert (doc["arch"], doc["weights"], doc["inferred_arch"]["name"]) == ("resnet20", str(AKAMASTER), "resnet20")
    ckpt = load_checkpoint(AKAMASTER)
    data, _ = ckpt.load_data(dataset="cifar10", data_dir=REAL)
    images, labels = data.get_batch(torch.arange(len(data)))
    with torch.no_grad():
        expected = ckpt.build_model()(images).numpy()
    got = onnx_logits(tmp_path / "aka.onnx", images)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # 45 of the 500 wrong, as test_foreign_checkpoints measures the torch module (akamaster: 8.27% of 10,000)
    assert int((torch.from_numpy(got).argmax(1) != labels).sum()) == 45


@pytest.mark.skipif(not AKAMASTER.is_file(), reason=NO_REAL)
def test_a_bare_state_dict_says_the_normalisation_eval_uses_and_a_runtime_must_apply(tmp_path):
    """akamaster's file was exported with 'normalization: null' and nothing in the metadata: fed [0, 1] images
    its ONNX gets 302 of the 500 real images wrong. Export records what eval uses for the file (ImageNet's, the
    default for a bare state dict, as akamaster trained), in JSON, the metadata and the table; with it the same
    ONNX gets the 45 wrong that torch does. --normalize overrides, as in eval."""
    import onnx

    out = tmp_path / "aka.onnx"
    doc = run_json("export", AKAMASTER, "-o", out, "-q")
    imagenet = {"name": "imagenet", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                "source": "default for a bare state dict"}
    assert doc["normalization"] == imagenet
    evaluated = run_json("eval", AKAMASTER, "--dataset", "cifar10", "--data-dir", REAL, "--limit", "10", "-q")
    assert evaluated["normalization"] == imagenet  # one rule: eval's
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    stored = json.loads(meta["resnet_cli.normalization"])
    assert stored == imagenet
    data, _ = load_checkpoint(AKAMASTER).load_data(dataset="cifar10", data_dir=REAL, normalize="none")
    pixels, labels = data.get_batch(torch.arange(len(data)))  # in [0, 1], as a runtime reads an image
    assert float(pixels.min()) >= 0 and float(pixels.max()) <= 1

    def wrong(images: torch.Tensor) -> int:
        return int((torch.from_numpy(onnx_logits(out, images)).argmax(1) != labels).sum())

    mean, std = (torch.tensor(stored[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    assert (wrong(pixels), wrong((pixels - mean) / std)) == (302, 45)
    table = " ".join(run("export", AKAMASTER, "-o", out, "-q").stdout.split())
    assert "normalised: imagenet (mean 0.485, 0.456, 0.406; std 0.229, 0.224, 0.225; default for a bare state dict)" \
        in table
    doc = run_json("export", AKAMASTER, "-o", out, "-q", "--normalize", "cifar10")
    assert (doc["normalization"]["name"], doc["normalization"]["source"]) == ("cifar10", "--normalize")
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["resnet_cli.normalization"])["mean"] == [0.4914, 0.4822, 0.4465]


def test_an_arch_name_has_no_normalisation_unless_asked_and_a_bad_one_is_one_line(tmp_path):
    out = tmp_path / "r.onnx"
    table = run("export", "cifar_resnet8", "-o", out, "-q").stdout
    assert "normalised" not in table
    doc = run_json("export", "cifar_resnet8", "-o", out, "-q", "--normalize", "0.5:0.25")
    assert doc["normalization"] == {"name": "custom", "mean": [0.5] * 3, "std": [0.25] * 3, "source": "--normalize"}
    out.unlink()
    one_line_error(run("export", "cifar_resnet8", "-o", out, "--normalize", "imagenot"), "--normalize", "imagenot")
    assert not out.exists()


def test_the_title_json_csv_and_metadata_name_what_was_built(tmp_path):
    """export printed 'resnet20' for resnet20 --shortcut-mode conv, and 'cifar_resnet8' for a checkpoint trained
    with stochastic depth, where compare and eval say 'resnet20 (shortcut_mode=conv)'; JSON had no label or
    overrides. And its CSV named a column 'input' that JSON calls 'input_name'."""
    import onnx

    from resnet_cli.checkpoint import save_checkpoint
    from resnet_cli.data import DatasetInfo

    out = tmp_path / "sc.onnx"
    result = run("export", "resnet20", "--shortcut-mode", "conv", "-o", out)
    assert result.exit_code == 0, result.output
    assert ": resnet20 (shortcut_mode=conv), images batch x 3 x 32 x 32" in " ".join(result.stdout.split())
    assert "exporting resnet20 (shortcut_mode=conv) with torch.onnx" in result.stderr
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert (meta["resnet_cli.arch"], meta["resnet_cli.label"]) == ("resnet20", "resnet20 (shortcut_mode=conv)")
    assert json.loads(meta["resnet_cli.overrides"]) == {"shortcut_mode": "conv"}
    doc = run_json("export", "resnet20", "--shortcut-mode", "conv", "-o", out, "-q")
    assert (doc["label"], doc["overrides"]) == ("resnet20 (shortcut_mode=conv)", {"shortcut_mode": "conv"})
    header, row = run("export", "resnet20", "--shortcut-mode", "conv", "-o", out, "-q", "-f", "csv"
                      ).stdout.splitlines()
    assert set(header.split(",")) <= set(doc) and "input_name" in header.split(",")  # JSON's names, every one
    assert dict(zip(header.split(","), row.split(",")))["label"] == "resnet20 (shortcut_mode=conv)"

    spec = get_spec("cifar_resnet8", stochastic_depth=0.5)
    info = DatasetInfo("synthetic", 10, 32, 3, (0.5,), (0.25,))
    save_checkpoint(tmp_path / "sd.pt", spec=spec, state_dict=build_model(spec).state_dict(), dataset=info,
                    record=[])
    doc = run_json("export", tmp_path / "sd.pt", "-o", out, "-q")
    assert (doc["label"], doc["overrides"]) == ("cifar_resnet8 (stochastic_depth=0.5)", {"stochastic_depth": 0.5})


def test_an_existing_file_is_read_as_a_checkpoint_not_looked_up_as_an_architecture(tmp_path, monkeypatch):
    (tmp_path / "README.md").write_text("# notes\n")
    monkeypatch.chdir(tmp_path)
    one_line_error(run("export", "README.md", "-o", "a.onnx"), "README.md is a text file", "not a torch checkpoint")
    assert not (tmp_path / "a.onnx").exists()


def test_a_checkpoint_of_ours_exports_quietly_is_reported_and_carries_its_dataset_into_the_metadata(tmp_path):
    import onnx
    from image_folders import tiny_net

    from resnet_cli.checkpoint import save_checkpoint
    from resnet_cli.data import DatasetInfo

    spec, model = tiny_net()
    info = DatasetInfo("imagefolder", 3, 32, 3, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26), source="/home/me/data")
    save_checkpoint(tmp_path / "t.pt", spec=spec, state_dict=model.state_dict(), dataset=info, record=[])
    # A fresh interpreter, as a user runs it: the exporter's own warnings and log lines (which go to the stderr
    # the process started with) must not reach the terminal; one status line does.
    proc = subprocess.run([sys.executable, "-m", "resnet_cli", "export", str(tmp_path / "t.pt"), "-o",
                           str(tmp_path / "t.onnx")], cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    label = "cifar_resnet14 (widths=4,8,16, stem_width=4, num_classes=3)"  # tiny_net's overrides
    assert proc.stderr == f"exporting {label} with torch.onnx (opset 20; a few seconds)\n"
    table = " ".join(proc.stdout.split())  # rich folds the lines at the terminal's width
    assert table.startswith(f"wrote {tmp_path / 't.onnx'} ({fmt_bytes((tmp_path / 't.onnx').stat().st_size)}, ONNX "
                            f"opset 20): {label}, images batch x 3 x 32 x 32 -> logits batch x 3 weights from "
                            f"{tmp_path / 't.pt'};")
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "t.onnx")).metadata_props}
    assert meta["resnet_cli.weights"] == "t.pt"
    dataset = json.loads(meta["resnet_cli.dataset"])
    assert (dataset["mean"], dataset["std"]) == ([0.49, 0.48, 0.45], [0.25, 0.24, 0.26]) and "source" not in dataset
    # the runtime's normalisation is the checkpoint's own, as eval uses on its dataset
    assert json.loads(meta["resnet_cli.normalization"]) == {"name": "custom", "mean": [0.49, 0.48, 0.45],
                                                             "std": [0.25, 0.24, 0.26], "source": "the checkpoint's"}
    assert "normalised: custom (mean 0.49, 0.48, 0.45; std 0.25, 0.24, 0.26; the checkpoint's)" in table
    assert_same_logits(tmp_path / "t.onnx", model, spec, batches=(2,))


# --------------------------------------------------------------------------- refusals: one line, exit 2
def test_a_name_not_ending_in_onnx_is_refused(tmp_path):
    one_line_error(run("export", "resnet20", "-o", tmp_path / "m.pt"), "--output", "ends in .onnx")
    assert not list(tmp_path.iterdir())


def test_a_folder_or_a_file_in_the_folders_place_is_refused(tmp_path):
    (tmp_path / "m.onnx").mkdir()
    one_line_error(run("export", "resnet20", "-o", tmp_path / "m.onnx"), "is a folder, not a file")
    (tmp_path / "notes").write_text("x")
    one_line_error(run("export", "resnet20", "-o", tmp_path / "notes" / "m.onnx"), "is a file, not a folder")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_that_cannot_be_written_is_refused(tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o555)
    one_line_error(run("export", "resnet20", "-o", locked / "m.onnx"), "cannot write there")


def test_without_the_onnx_extra_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # ``import onnxscript`` raises ImportError
    line = one_line_error(run("export", "resnet20", "-o", tmp_path / "m.onnx"), "onnxscript is not installed")
    assert line.endswith("pip install 'resnet-cli[onnx]'")
    assert not list(tmp_path.iterdir())


def test_options_that_do_not_fit_the_network_are_refused(tmp_path):
    out = tmp_path / "m.onnx"
    one_line_error(run("export", "resnet20", "-o", out, "--arch", "resnet20"), "--arch", "not a checkpoint file")
    one_line_error(run("export", "resnet20", "-o", out, "--opset", "17"), "--opset")
    one_line_error(run("export", "resnt20", "-o", out), "did you mean resnet20")
    one_line_error(run("export", tmp_path / "none.pt", "-o", out), "none.pt")
    assert not out.exists()


@pytest.mark.skipif(not AKAMASTER.is_file(), reason=NO_REAL)
def test_a_checkpoint_takes_no_option_that_changes_its_network(tmp_path):
    one_line_error(run("export", AKAMASTER, "-o", tmp_path / "m.onnx", "--num-classes", "5"), "--num-classes",
                   "not with a checkpoint")
