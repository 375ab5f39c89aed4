"""Checkpoints that other code saved: each built here from a module with the foreign key names (akamaster's CIFAR
ResNet, DataParallel, torch.compile, PyTorch Lightning, no num_batches_tracked, CUDA-saved storages) loads strict
and gives the same logits; the mapping and normalisation are reported; ``--normalize`` and test-only CIFAR
folders work. The real akamaster ResNet-20 in ../shared/real scores the 500 real CIFAR-10 test images."""

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cli_runner import run
from timm_nets import TimmResNetD
from torch import nn

from resnet_cli import build_model, get_spec
from resnet_cli.checkpoint import CheckpointError, load_checkpoint
from resnet_cli.data import DatasetError, load_dataset
from resnet_cli.data.normalization import parse_normalization

REAL = Path(__file__).parents[1] / ".." / "shared" / "real"
NO_REAL = "../shared/real (akamaster's trained ResNets and 500 real CIFAR-10 test images) is absent in this clone"


# --------------------------------------------------------------------------- akamaster's resnet.py, ported
class AkamasterPadShortcut(nn.Module):
    """Option A of akamaster's BasicBlock, the LambdaLayer's expression written as a module."""

    def __init__(self, planes):
        super().__init__()
        self.planes = planes

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.planes // 4, self.planes // 4), "constant", 0)


class AkamasterBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1, option="A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if option == "A":
                self.shortcut = AkamasterPadShortcut(planes)
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                                              nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class AkamasterResNet(nn.Module):
    def __init__(self, num_blocks, num_classes=10, option="A"):
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, num_blocks[0], 1, option)
        self.layer2 = self._make_layer(32, num_blocks[1], 2, option)
        self.layer3 = self._make_layer(64, num_blocks[2], 2, option)
        self.linear = nn.Linear(64, num_classes)

    def _make_layer(self, planes, n, stride, option):
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(AkamasterBlock(self.in_planes, planes, s, option))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        return self.linear(out.view(out.size(0), -1))


def trained_looking(model, size=32):
    """Weights plus batch-norm statistics that differ from a fresh build (training-mode forward passes)."""
    torch.manual_seed(3)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(8, 3, size, size))
    return model.eval()


@pytest.fixture(scope="module")
def akamaster8():
    """akamaster's layout at depth 8 (one block per stage): small enough to run everything on."""
    return trained_looking(AkamasterResNet([1, 1, 1]))


def _same_logits(ckpt, reference, size=32):
    x = torch.randn(4, 3, size, size)
    with torch.no_grad():
        return torch.allclose(ckpt.build_model()(x), reference(x), rtol=1e-5, atol=1e-5)


def test_akamaster_layout_maps_head_and_infers_the_residual_net(akamaster8, tmp_path):
    torch.save({"state_dict": akamaster8.state_dict(), "best_prec1": 91.78}, tmp_path / "aka.th")
    ckpt = load_checkpoint(tmp_path / "aka.th")
    # plain8 has the same state dict (option A has no weights); akamaster's code builds only ResNets.
    assert ckpt.spec.name == "cifar_resnet8" and ckpt.spec.residual
    assert ckpt.inferred_arch.to_dict() == {"name": "cifar_resnet8", "by": "keys_and_shapes", "set_aside": [
        {"archs": ["cifar_plain8"],
         "reason": "fits too, but akamaster/pytorch_resnet_cifar10 builds only residual nets"}]}
    layouts = [m.layout for m in ckpt.key_mappings]
    assert layouts == ["a checkpoint dict", "akamaster/pytorch_resnet_cifar10"]
    assert "best_prec1" in ckpt.key_mappings[0].change
    assert _same_logits(ckpt, akamaster8)


def test_akamaster_option_b_shortcut_is_our_downsample(tmp_path):
    model = trained_looking(AkamasterResNet([1, 1, 1], option="B"))
    torch.save(model.state_dict(), tmp_path / "b.th")
    ckpt = load_checkpoint(tmp_path / "b.th", arch="cifar_resnet8")
    ours = build_model(get_spec("cifar_resnet8", shortcut="B"))
    ours.load_state_dict(ckpt.state_dict, strict=True)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), model(x), rtol=1e-5, atol=1e-5)


def test_dataparallel_prefix(akamaster8, tmp_path):
    wrapped = nn.DataParallel(akamaster8)  # on a CPU-only machine it just holds the module
    assert next(iter(wrapped.state_dict())).startswith("module.")
    torch.save({"state_dict": wrapped.state_dict(), "best_prec1": 90.0}, tmp_path / "dp.th")  # akamaster's files
    ckpt = load_checkpoint(tmp_path / "dp.th")
    assert [m.layout for m in ckpt.key_mappings] == ["a checkpoint dict", "nn.DataParallel/DDP",
                                                     "akamaster/pytorch_resnet_cifar10"]
    assert _same_logits(ckpt, akamaster8)


def test_torch_compile_prefix_also_under_dataparallel(tmp_path):
    model = trained_looking(build_model("cifar_resnet8"))
    compiled = torch.compile(model)  # nothing is compiled until it is called: the state dict is enough
    assert next(iter(compiled.state_dict())).startswith("_orig_mod.")
    torch.save(compiled.state_dict(), tmp_path / "compiled.pt")
    torch.save(nn.DataParallel(compiled).state_dict(), tmp_path / "both.pt")  # module._orig_mod.conv1.weight
    for name, layouts in (("compiled.pt", ["torch.compile"]), ("both.pt", ["nn.DataParallel/DDP", "torch.compile"])):
        ckpt = load_checkpoint(tmp_path / name, arch="cifar_resnet8")
        assert [m.layout for m in ckpt.key_mappings] == layouts
        assert _same_logits(ckpt, model)


class LitClassifier(nn.Module):
    """What a PyTorch Lightning module looks like to its state dict: the network as ``self.model``."""

    def __init__(self, model):
        super().__init__()
        self.model = model


def test_lightning_checkpoint(tmp_path):
    model = trained_looking(build_model("resnet18", num_classes=10), size=64)
    lit = LitClassifier(model)
    torch.save({"epoch": 3, "global_step": 300, "pytorch-lightning_version": "2.4.0", "state_dict": lit.state_dict(),
                "optimizer_states": [], "lr_schedulers": []}, tmp_path / "lit.ckpt")
    ckpt = load_checkpoint(tmp_path / "lit.ckpt")
    assert (ckpt.spec.name, ckpt.spec.num_classes) == ("resnet18", 10)
    assert [m.layout for m in ckpt.key_mappings] == ["a checkpoint dict", "PyTorch Lightning"]
    assert _same_logits(ckpt, model, size=64)


def test_arch_inference_without_num_batches_tracked(tmp_path):
    model = trained_looking(build_model("resnet18"), size=64)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert len(state) < len(model.state_dict())
    torch.save(state, tmp_path / "old.pth")
    ckpt = load_checkpoint(tmp_path / "old.pth")
    assert ckpt.spec.name == "resnet18" and ckpt.key_mappings == []
    assert _same_logits(ckpt, model, size=64)  # strict: BN fills in the missing counters


def test_two_fits_are_still_refused_without_a_layout_that_decides(tmp_path):
    torch.save({"state_dict": build_model("cifar_resnet8").state_dict()}, tmp_path / "ours.pt")
    with pytest.raises(CheckpointError, match=r"several architectures \(cifar_resnet8, cifar_plain8\)"):
        load_checkpoint(tmp_path / "ours.pt")


def _as_if_saved_on_cuda(path):
    """Rewrite a torch.save zip so that its storages say they were on cuda:0, as akamaster's files do (the pickle
    names each storage's device as a BINUNICODE string, later ones by memo: protocol 2 has no frames, so the
    bytes can be swapped in place)."""
    with zipfile.ZipFile(path) as zf:
        entries = {info.filename: zf.read(info) for info in zf.infolist()}
    (pkl,) = [name for name in entries if name.endswith("data.pkl")]
    cpu, cuda = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"
    assert cpu in entries[pkl]
    entries[pkl] = entries[pkl].replace(cpu, cuda)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


def test_cuda_saved_storages_load_on_the_cpu(akamaster8, tmp_path):
    torch.save({"state_dict": nn.DataParallel(akamaster8).state_dict()}, tmp_path / "cuda.th")
    _as_if_saved_on_cuda(tmp_path / "cuda.th")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):  # what plain torch.load does with such a file
            torch.load(tmp_path / "cuda.th", weights_only=True)
    ckpt = load_checkpoint(tmp_path / "cuda.th")
    assert all(v.device.type == "cpu" for v in ckpt.state_dict.values())
    assert _same_logits(ckpt, akamaster8)


# --------------------------------------------------------------------------- timm's names, written here
class BatchNormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d: a BatchNorm2d (same keys) with the ReLU inside."""

    def forward(self, x):
        return F.relu(super().forward(x))


class TimmDownsampleConv(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
        self.norm = nn.Identity()  # preact=True: the block's norm1 already normalised the input

    def forward(self, x):
        return self.norm(self.conv(x))


class TimmPreActBlock(nn.Module):
    """timm's PreActBasic / PreActBottleneck (resnetv2.py): the shortcut projection reads the pre-activation."""

    def __init__(self, cin, cout, stride, bottleneck):
        super().__init__()
        mid = cout // 4 if bottleneck else cout
        project = stride != 1 or cin != cout
        self.downsample = TimmDownsampleConv(cin, cout, stride) if project else None
        self.norm1 = BatchNormAct(cin)
        if bottleneck:
            self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
            self.norm2 = BatchNormAct(mid)
            self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
            self.norm3 = BatchNormAct(mid)
            self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(cin, mid, 3, stride=stride, padding=1, bias=False)
            self.norm2 = BatchNormAct(mid)
            self.conv2 = nn.Conv2d(mid, cout, 3, padding=1, bias=False)
        self.bottleneck = bottleneck

    def forward(self, x):
        pre = self.norm1(x)
        shortcut = self.downsample(pre) if self.downsample is not None else x
        out = self.conv2(self.norm2(self.conv1(pre)))
        if self.bottleneck:
            out = self.conv3(self.norm3(out))
        return out + shortcut


class TimmResNetV2(nn.Module):
    """timm's ResNetV2 with BatchNormAct2d (resnetv2_18/34/50/101/152): stem.conv, stages.S.blocks.B, norm,
    head.fc as a 1x1 conv."""

    def __init__(self, layers, bottleneck, num_classes=1000):
        super().__init__()
        widths = (256, 512, 1024, 2048) if bottleneck else (64, 128, 256, 512)
        self.stem = nn.Sequential()
        self.stem.add_module("conv", nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False))
        self.stem.add_module("pool", nn.MaxPool2d(3, stride=2, padding=1))
        self.stages = nn.Sequential()
        cin = 64
        for i, (n, w) in enumerate(zip(layers, widths)):
            stage = nn.Module()
            stage.blocks = nn.Sequential(*[TimmPreActBlock(cin if b == 0 else w, w, (1 if i == 0 else 2) if b == 0
                                                           else 1, bottleneck) for b in range(n)])
            self.stages.add_module(str(i), stage)
            cin = w
        self.norm = BatchNormAct(cin)
        self.head = nn.Module()
        self.head.fc = nn.Conv2d(cin, num_classes, 1)

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages:
            x = stage.blocks(x)
        x = self.norm(x).mean((2, 3), keepdim=True)
        return self.head.fc(x).flatten(1)


def test_timm_resnetv2_50(tmp_path):
    timm = trained_looking(TimmResNetV2([3, 4, 6, 3], bottleneck=True), size=64)
    assert sum(p.numel() for p in timm.parameters()) == 25_549_352  # timm's resnetv2_50
    torch.save(timm.state_dict(), tmp_path / "v2.pth")
    ckpt = load_checkpoint(tmp_path / "v2.pth")
    assert ckpt.spec.name == "preact_resnet50" and [m.layout for m in ckpt.key_mappings] == ["timm resnetv2"]
    assert _same_logits(ckpt, timm, size=64)


def test_timm_basic_resnetv2_is_refused_not_loaded_wrong(tmp_path):
    """Its keys would fit preact_resnet18, its first block's shortcut does not: the loader says so."""
    timm = TimmResNetV2([2, 2, 2, 2], bottleneck=False)
    assert sum(p.numel() for p in timm.parameters()) == 11_687_720  # timm's resnetv2_18
    torch.save(timm.state_dict(), tmp_path / "v2_18.pth")
    with pytest.raises(CheckpointError, match=r"resnetv2_18/34\) differs from preact_resnet18/34"):
        load_checkpoint(tmp_path / "v2_18.pth")


def test_timm_resnet50d_loads_as_is(tmp_path):
    timm = trained_looking(TimmResNetD(), size=64)
    assert sum(p.numel() for p in timm.parameters()) == 25_576_264  # timm's resnet50d
    torch.save({"state_dict": timm.state_dict()}, tmp_path / "r50d.pth")  # timm's train.py checkpoint dict
    ckpt = load_checkpoint(tmp_path / "r50d.pth")
    assert ckpt.spec.name == "resnet50d"
    assert [m.layout for m in ckpt.key_mappings] == ["a checkpoint dict"]  # the keys are ours: nothing renamed
    assert _same_logits(ckpt, timm, size=64)


# --------------------------------------------------------------------------- normalisation and CIFAR folders
def test_normalize_names_and_values():
    assert parse_normalization("imagenet") == ("imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert parse_normalization("CIFAR10")[1] == (0.4914, 0.4822, 0.4465)
    assert parse_normalization("0.485,0.456,0.406:0.229,0.224,0.225")[0] == "imagenet"  # named when known
    assert parse_normalization("0.5:0.25") == ("custom", (0.5,), (0.25,))
    for bad in ("imagenett", "1,2:3", "0.5:0", "a:b"):
        with pytest.raises(DatasetError):
            parse_normalization(bad)


def _write_cifar(folder, names, n=6):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        with open(folder / name, "wb") as fh:
            pickle.dump({b"labels": [i % 10 for i in range(n)], b"data": rng.integers(0, 256, (n, 3072),
                                                                                        dtype=np.uint8)}, fh,
                        protocol=2)


def test_test_only_and_train_only_cifar_folders(tmp_path):
    _write_cifar(tmp_path / "eval" / "cifar-10-batches-py", ["test_batch"])
    test, _ = load_dataset("cifar10", "test", data_dir=tmp_path / "eval")
    assert len(test) == 6
    with pytest.raises(DatasetError, match="no cifar10 train batches .*data_batch_1"):
        load_dataset("cifar10", "train", data_dir=tmp_path / "eval")
    _write_cifar(tmp_path / "train" / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)])
    train, _ = load_dataset("cifar10", "train", data_dir=tmp_path / "train")
    assert len(train) == 30
    with pytest.raises(DatasetError, match="no cifar10 test batches .*test_batch"):
        load_dataset("cifar10", "test", data_dir=tmp_path / "train")


def test_normalize_changes_the_images_as_asked(akamaster8, tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py", ["test_batch"])
    torch.save(akamaster8.state_dict(), tmp_path / "aka.th")
    ckpt = load_checkpoint(tmp_path / "aka.th")
    raw, _ = load_dataset("cifar10", "test", data_dir=tmp_path, limit=6)
    pixels = raw.images.float() / 255  # the [0, 1] pixels before any normalisation
    for given, (mean, std), source in ((None, ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                                        "default for a bare state dict"),
                                       ("none", ((0.0,) * 3, (1.0,) * 3), "--normalize"),
                                       ("0.5:0.25", ((0.5,) * 3, (0.25,) * 3), "--normalize")):
        data, info = ckpt.load_data(dataset="cifar10", data_dir=tmp_path, normalize=given)
        images, _ = data.get_batch(torch.arange(6))
        expected = (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        assert torch.allclose(images, expected, atol=1e-6)
        assert (info.mean, info.std) == (mean, std) and ckpt.normalization.source == source


def test_cli_reports_mappings_and_normalisation_in_json_and_table(akamaster8, tmp_path):
    torch.save({"state_dict": nn.DataParallel(akamaster8).state_dict(), "best_prec1": 1.0}, tmp_path / "aka.th")
    common = ["--dataset", "synthetic", "--limit", "8", "--device", "cpu", "-q"]
    for command in (["eval"], ["lesion", "--experiments", "single"], ["gradients", "--samples", "1"]):
        result = run(*command, tmp_path / "aka.th", *common, "--normalize", "none", "-f", "json")
        assert result.exit_code == 0, (command, result.output)
        doc = json.loads(result.stdout)
        assert [m["layout"] for m in doc["key_mappings"]] == ["a checkpoint dict", "nn.DataParallel/DDP",
                                                              "akamaster/pytorch_resnet_cifar10"], command
        assert doc["normalization"] == {"name": "none", "mean": [0.0] * 3, "std": [1.0] * 3,
                                        "source": "--normalize"}
        assert doc["arch"] == "cifar_resnet8"
        table = run(*command, tmp_path / "aka.th", *common, "--arch", "cifar_resnet8")
        assert table.exit_code == 0, (command, table.output)
        text = " ".join(table.stdout.split())
        assert "mapped: weights from the 'state_dict' entry (beside it: best_prec1)" in text, command
        assert "'module.' prefix stripped (nn.DataParallel/DDP)" in text and "linear. -> fc." in text
        assert "normalised: none (mean 0, 0, 0; std 1, 1, 1; synthetic's own)" in text, command
    bad = run("eval", tmp_path / "aka.th", *common, "--normalize", "imagenett")
    assert bad.exit_code == 2 and bad.output.startswith("Error: --normalize takes imagenet")


def test_params_from_a_checkpoint_counts_as_params_arch(akamaster8, tmp_path):
    torch.save({"state_dict": akamaster8.state_dict()}, tmp_path / "aka.th")
    from_ckpt = run("params", "--from", tmp_path / "aka.th", "-f", "json")
    by_name = run("params", "--arch", "cifar_resnet8", "-f", "json")
    assert from_ckpt.exit_code == 0 and by_name.exit_code == 0, from_ckpt.output
    doc, ref = json.loads(from_ckpt.stdout), json.loads(by_name.stdout)
    assert (doc["params"], doc["macs"]) == (ref["params"], ref["macs"])
    assert doc["params"] == sum(p.numel() for p in akamaster8.parameters())
    assert doc["key_mappings"][-1]["layout"] == "akamaster/pytorch_resnet_cifar10"
    table = run("params", "--from", tmp_path / "aka.th")
    assert "mapped:" in table.stdout and "cifar_plain8 fits too" in " ".join(table.stdout.split())
    for extra in (["--arch", "resnet20"], ["--widths", "8,16,32"], ["--block", "basic"]):
        result = run("params", "--from", tmp_path / "aka.th", *extra)
        assert result.exit_code == 2 and result.output.startswith("Error:"), (extra, result.output)


# --------------------------------------------------------------------------- the real network, as published
@pytest.mark.skipif(not (REAL / "resnet20-12fca82f.th").is_file(), reason=NO_REAL)
def test_real_akamaster_resnet20_scores_the_500_real_test_images():
    path = REAL / "resnet20-12fca82f.th"
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert sorted(raw) == ["best_prec1", "state_dict"] and next(iter(raw["state_dict"])).startswith("module.")
    ckpt = load_checkpoint(path)
    assert ckpt.spec.name == "resnet20"
    data, _ = ckpt.load_data(dataset="cifar10", data_dir=REAL)
    images, labels = data.get_batch(torch.arange(len(data)))
    assert len(labels) == 500 and ckpt.normalization.name == "imagenet"
    # akamaster's own module, with the file's weights as they are (prefix stripped), is the oracle.
    oracle = AkamasterResNet([3, 3, 3]).eval()
    oracle.load_state_dict({k[len("module."):]: v for k, v in raw["state_dict"].items()}, strict=True)
    with torch.no_grad():
        ours, theirs = ckpt.build_model()(images), oracle(images)
    assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))
    # 45 of 500 wrong (9.0%): akamaster publishes 8.27% on all 10,000; 500 images have a standard error of ~1.3%.
    assert int((ours.argmax(1) != labels).sum()) == 45


@pytest.mark.skipif(not (REAL / "resnet20-12fca82f.th").is_file(), reason=NO_REAL)
def test_real_file_through_the_cli_as_published():
    result = run("eval", REAL / "resnet20-12fca82f.th", "--dataset", "cifar10",
                 "--data-dir", REAL, "--device", "cpu", "-q", "-f", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["arch"], doc["images"], doc["correct"]) == ("resnet20", 500, 455)
    assert doc["normalization"]["name"] == "imagenet"


def test_the_public_api_loads_foreign_files(akamaster8, tmp_path):
    import resnet_cli

    torch.save({"state_dict": nn.DataParallel(akamaster8).state_dict()}, tmp_path / "aka.th")
    ckpt = resnet_cli.load_checkpoint(tmp_path / "aka.th", arch="cifar_resnet8")
    assert ckpt.inferred_arch.by == "given" and len(ckpt.key_mappings) == 3 and _same_logits(ckpt, akamaster8)


def test_unwrap_rules_are_in_one_table():
    from resnet_cli.key_layouts import CONTAINER_KEYS, KEY_LAYOUTS, unwrap

    state = {"w": torch.zeros(1)}
    for key in CONTAINER_KEYS:
        found, mappings = unwrap({key: state, "epoch": 1}, lambda o: isinstance(o, dict) and "w" in o)
        assert found is state and mappings[0].change == f"weights from the '{key}' entry (beside it: epoch)"
    assert unwrap({"hello": "world"}, lambda o: False) == (None, [])
    assert len({layout.name for layout in KEY_LAYOUTS}) == len(KEY_LAYOUTS)
