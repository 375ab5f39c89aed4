"""Checkpoints: save -> load keeps outputs identical; torchvision-layout state dicts load (given or inferred arch);
anything else (pickled modules, corrupt, truncated, foreign files) fails with one line and exit 2."""

import json
import os
from pathlib import Path

import pytest
import torch
from cli_runner import run

from resnet_cli import build_model, get_spec
from resnet_cli.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from resnet_cli.data import load_dataset

TV_FIXTURE = Path(__file__).parent / "data" / "torchvision_state_dicts.json"


def tiny_spec(**kw):
    return get_spec("cifar_resnet8", widths="4,8,16", stem_width=4, input_size=8, **kw)


def _trained_looking(model):
    """Weights plus batch-norm statistics that differ from a fresh build (one training-mode forward pass)."""
    model.train()
    with torch.no_grad():
        model(torch.randn(4, model.spec.in_channels, 8, 8))
    return model.eval()


def test_save_load_keeps_outputs_identical(tmp_path):
    spec = tiny_spec(stochastic_depth=0.5)
    torch.manual_seed(1)
    model = _trained_looking(build_model(spec))
    _, info = load_dataset("synthetic", "test", input_size=8, limit=2)
    record = [{"epoch": 1, "train_error": 0.5, "test_error": 0.6, "wall_time_s": 1.0}]
    path = save_checkpoint(tmp_path / "c.pt", spec=spec, state_dict=model.state_dict(), dataset=info, record=record,
                           extra={"optimizer": {"state": {}, "param_groups": []}, "rng_cpu": torch.get_rng_state()})
    ckpt = load_checkpoint(path)
    assert ckpt.spec == spec and ckpt.spec.stochastic_depth == 0.5
    assert ckpt.dataset == info and ckpt.record == record and ckpt.inferred_arch is None
    x = torch.randn(3, 3, 8, 8)
    loaded = ckpt.build_model()
    assert not loaded.training
    assert torch.equal(loaded(x), model(x))
    assert list(tmp_path.iterdir()) == [path]  # atomic write: no temporary file left


def test_checkpoint_contents_are_plain_data(tmp_path):
    spec = tiny_spec()
    model = build_model(spec)
    save_checkpoint(tmp_path / "c.pt", spec=spec, state_dict=model.state_dict(), dataset=None,
                    record={"epochs": []})
    raw = torch.load(tmp_path / "c.pt", weights_only=True)
    assert raw["format"] == "resnet-cli-checkpoint" and raw["version"] == 1 and raw["arch"] == "cifar_resnet8"
    assert json.loads(json.dumps(raw["spec"])) == spec.to_dict()
    assert raw["dataset"] is None and raw["record"] == []


def test_torchvision_layout_state_dict_loads_given_and_inferred(tmp_path):
    model = _trained_looking(build_model("resnet18"))
    ours = model.state_dict()
    # The fixture lists torchvision resnet18's state-dict keys and shapes, in order (made with torchvision).
    fixture = json.loads(TV_FIXTURE.read_text())["models"]["resnet18"]["state_dict"]
    assert [(k, list(v.shape)) for k, v in ours.items()] == [(k, shape) for k, shape in fixture]
    tv_state = {k: ours[k].clone() for k, _shape in fixture}  # what torchvision's resnet18 would save
    torch.save(tv_state, tmp_path / "tv.pth")
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    given = load_checkpoint(tmp_path / "tv.pth", arch="resnet18")
    inferred = load_checkpoint(tmp_path / "tv.pth")
    assert given.inferred_arch.to_dict() == {"name": "resnet18", "by": "given", "set_aside": []}
    assert inferred.spec.name == "resnet18"
    assert inferred.inferred_arch.to_dict() == {"name": "resnet18", "by": "keys_and_shapes", "set_aside": []}
    for ckpt in (given, inferred):
        assert torch.equal(ckpt.build_model()(x), expected)
    # A fine-tuned head (10 classes) is read off fc.weight; DataParallel's "module." prefix and a
    # {"state_dict": ...} wrapper are common in the wild.
    small = build_model("resnet18", num_classes=10).state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in small.items()}, "epoch": 90}, tmp_path / "dp.pth")
    ckpt = load_checkpoint(tmp_path / "dp.pth")
    assert (ckpt.spec.name, ckpt.spec.num_classes) == ("resnet18", 10)


def test_arch_inference_refuses_ambiguity_and_mismatch(tmp_path):
    # Option A shortcuts have no weights: a CIFAR ResNet-14 and its plain twin have equal state dicts.
    torch.save(build_model("cifar_resnet14").state_dict(), tmp_path / "r14.pt")
    with pytest.raises(CheckpointError, match="several architectures .*--arch"):
        load_checkpoint(tmp_path / "r14.pt")
    assert load_checkpoint(tmp_path / "r14.pt", arch="cifar_resnet14").spec.residual is True
    state = build_model("resnet18").state_dict()
    state["fc.weight"] = torch.zeros(10, 7)  # no architecture has a 7-channel head
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="matches no registered architecture"):
        load_checkpoint(tmp_path / "odd.pt")
    # the head's class count comes from fc.weight: the bias is then the odd one too
    with pytest.raises(CheckpointError, match=r"do not fit resnet18: 2 of other shapes \(fc.weight \(10, 7\) for "
                                              r"\(10, 512\), fc.bias \(1000,\) for \(10,\)\)$"):
        load_checkpoint(tmp_path / "odd.pt", arch="resnet18").build_model()


def test_weights_of_another_depth_are_refused_by_count_not_by_torchs_key_list(tmp_path):
    """A ResNet-14's weights given --arch cifar_resnet20 (one block more per stage): said in a number and two
    names, not torch's list of every key."""
    small, big = build_model("cifar_resnet14").state_dict(), build_model("cifar_resnet20").state_dict()
    torch.save(small, tmp_path / "r14.pt")
    lacking = [k for k in big if k not in small and not k.endswith("num_batches_tracked")]
    assert len(lacking) == 3 * 10  # per block: 2 convs, 2 batch norms of 4 tensors each
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "r14.pt", arch="cifar_resnet20").build_model()
    message = str(info.value)
    assert f"do not fit cifar_resnet20: 30 of its tensors missing ({lacking[0]}, {lacking[1]}, ...)" in message
    assert len(message) < 200 and "\n" not in message
    state = {k: v for k, v in small.items() if not k.endswith("num_batches_tracked")}  # as torch < 0.4.1 saved
    torch.save(state, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt", arch="cifar_resnet14").build_model() is not None


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _bad_files(tmp_path):
    spec = tiny_spec()
    good = save_checkpoint(tmp_path / "good.pt", spec=spec, state_dict=build_model(spec).state_dict(),
                           dataset=None, record=[])
    data = good.read_bytes()
    files = {
        "truncated": data[: len(data) // 2],
        "corrupt": data[:100] + bytes(b ^ 0xFF for b in data[100:400]) + data[400:],
        "text": b"this is not a checkpoint\n",
        "empty": b"",
    }
    for name, content in files.items():
        (tmp_path / f"{name}.pt").write_bytes(content)
    torch.save(build_model(spec), tmp_path / "module.pt")  # a pickled nn.Module
    torch.save(_Evil(tmp_path / "pwned"), tmp_path / "evil.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    torch.save({"hello": "world"}, tmp_path / "dict.pt")
    payload = torch.load(good, weights_only=True)
    payload["version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    return ["truncated", "corrupt", "text", "empty", "module", "evil", "list", "tensor", "dict", "future"]


def test_bad_files_fail_with_one_line(tmp_path):
    names = _bad_files(tmp_path)
    for name in names:
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / f"{name}.pt")
        assert "\n" not in str(info.value)
    assert not (tmp_path / "pwned").exists()  # weights_only: the pickled os.system never ran
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "truncated.pt")
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(tmp_path / "module.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")



def _foreign_files() -> dict[str, tuple[bytes, str]]:
    """Files people hand over for a checkpoint, made here byte by byte, with what the error must call them."""
    import gzip
    import io
    import struct
    import tarfile
    import zipfile

    import numpy as np

    def npy(**arrays):
        buf = io.BytesIO()
        (np.savez(buf, **arrays) if len(arrays) > 1 or "x" not in arrays else np.save(buf, arrays["x"]))
        return buf.getvalue()

    def archive(kind):
        buf = io.BytesIO()
        if kind == "zip":
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr("weights/readme.txt", "hello")
        else:
            with tarfile.open(fileobj=buf, mode="w") as t:
                info = tarfile.TarInfo("model.pt")
                info.size = 5
                t.addfile(info, io.BytesIO(b"hello"))
        return buf.getvalue()

    header = json.dumps({"fc.weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    return {
        "text": (b"this is not a checkpoint\n", "a text file (it starts 'this is not a checkpoint')"),
        "json": (b'  {"arch": "resnet20"}\n', "a JSON document"),
        "safetensors": (struct.pack("<Q", len(header)) + header + bytes(4), "a safetensors file"),
        "damaged safetensors": (struct.pack("<Q", 10**12) + header, "a safetensors file"),  # an absurd length
        "npy": (npy(x=np.zeros(3)), "a NumPy array file"),
        "npz": (npy(a=np.zeros(3), b=np.ones(2)), "a NumPy archive"),
        "zip": (archive("zip"), "a zip archive of other files ('weights/readme.txt')"),
        "tar": (archive("tar"), "a tar archive"),
        "gzip": (gzip.compress(b"hello"), "a gzip-compressed file"),
        "hdf5": (b"\x89HDF\r\n\x1a\n" + bytes(64), "an HDF5 file"),
        "png": (b"\x89PNG\r\n\x1a\n" + bytes(64), "a PNG image"),
        # what torch.onnx writes first: ir_version 10, producer_name 'pytorch', producer_version ...
        "onnx": (b"\x08\x0a\x12\x07pytorch\x1a\x0a2.13.0+cpu" + bytes(32), "an ONNX model"),
    }


@pytest.mark.parametrize("kind", list(_foreign_files()))
def test_a_file_of_another_format_is_named_for_what_it_is(tmp_path, kind):
    """torch's own words for these were pickle opcodes ("Unsupported operand 35", "KeyError: 101")."""
    data, what = _foreign_files()[kind]
    path = tmp_path / f"{kind}.pt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value) == f"{path} is {str(info.value).split(' is ', 1)[1]}"
    assert what in str(info.value) and "not a torch checkpoint" in str(info.value), str(info.value)
    assert "operand" not in str(info.value) and "\n" not in str(info.value)


def test_torch_files_of_both_formats_are_not_taken_for_another_format(tmp_path):
    from resnet_cli.checkpoint.safety import foreign_format, read_checkpoint_file

    state = build_model(tiny_spec()).state_dict()
    torch.save(state, tmp_path / "zip.pt")
    torch.save(state, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)  # akamaster's format
    torch.save({"note": "text"}, tmp_path / "small.pt", _use_new_zipfile_serialization=False)
    for name in ("zip.pt", "legacy.pt", "small.pt"):
        assert foreign_format((tmp_path / name).read_bytes()) is None, name
    assert read_checkpoint_file(tmp_path / "legacy.pt").keys() == state.keys()

def test_cli_eval_of_bad_files_exits_2(tmp_path):
    names = _bad_files(tmp_path) + ["missing"]
    for name in names:
        result = run("eval", tmp_path / f"{name}.pt", "--dataset", "synthetic")
        assert result.exit_code == 2, (name, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), (name, result.output)
    assert not (tmp_path / "pwned").exists()


def test_cli_eval_of_a_bare_state_dict(tmp_path):
    spec = tiny_spec()
    torch.save(build_model(spec).state_dict(), tmp_path / "bare.pt")
    result = run("eval", tmp_path / "bare.pt", "--arch", "cifar_resnet8")
    assert result.exit_code == 2 and "--dataset" in result.output  # a bare state dict does not name its data
    # widths differ from the registered cifar_resnet8, so the shapes do not fit: one line, exit 2
    result = run("eval", tmp_path / "bare.pt", "--arch", "cifar_resnet8", "-d", "synthetic")
    assert result.exit_code == 2 and "do not fit cifar_resnet8" in result.output
    torch.save(build_model("cifar_resnet8").state_dict(), tmp_path / "r8.pt")
    result = run("eval", tmp_path / "r8.pt", "--arch", "cifar_resnet8", "-d", "synthetic",
                 "--limit", "20", "-f", "json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["images"] == 20 and doc["arch"] == "cifar_resnet8"
    assert doc["inferred_arch"] == {"name": "cifar_resnet8", "by": "given", "set_aside": []}
    # the table says it in words, not as the JSON's bare marker
    result = run("eval", tmp_path / "r8.pt", "--arch", "cifar_resnet8", "-d", "synthetic",
                 "--limit", "20", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "a bare state dict, read as cifar_resnet8 (--arch)" in result.stdout
    assert "note: given" not in result.stdout


def test_load_data_matches_classes_to_outputs_and_needs_a_dataset():
    """One rule for eval, lesion and gradients: the data's classes are the network's outputs, one to one."""
    from resnet_cli import get_spec
    from resnet_cli.checkpoint import Checkpoint, CheckpointError

    five = Checkpoint(spec=get_spec("resnet20", num_classes=5), state_dict={}, path="five.pt")
    with pytest.raises(CheckpointError, match="synthetic has 10 classes; resnet20 in five.pt has 5 outputs"):
        five.load_data(dataset="synthetic", limit=8)
    with pytest.raises(CheckpointError, match="pass --dataset"):
        five.load_data()
    ten = Checkpoint(spec=get_spec("resnet20", input_size=16), state_dict={}, path="ten.pt")
    data, info = ten.load_data(dataset="synthetic", limit=8)
    assert (len(data), info.num_classes, info.input_size) == (8, 10, 16)


def test_a_pickled_torch_module_is_named_for_what_it_holds(tmp_path):
    """torch.save(nn.Linear(...)): torch's refusal advised allowing the class (add_safe_globals) and was cut
    mid-word at 200 characters under "truncated or corrupt"; a module of torch's own is code, not weights."""
    for name, obj in (("linear.pt", torch.nn.Linear(2, 2)), ("wrapped.pt", {"model": torch.nn.Linear(2, 2)}),
                      ("optimizer.pt", torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1))):
        torch.save(obj, tmp_path / name)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / name)
        assert "pickled Python objects (torch." in str(info.value) and "state_dict()" in str(info.value)
        assert "add_safe_globals" not in str(info.value) and "corrupt" not in str(info.value)


def test_a_library_reason_is_cut_at_its_first_sentence_not_mid_word(tmp_path):
    from resnet_cli.checkpoint.safety import first_line

    torch_says = ("PytorchStreamReader failed reading zip archive: failed finding central directory. This is an "
                  "internal miniz error. If you are seeing this error, there is a high likelihood that your "
                  "checkpoint file is corrupted or truncated.")
    assert first_line(RuntimeError(torch_says)) == ("PytorchStreamReader failed reading zip archive: failed finding "
                                                    "central directory.")
    assert first_line(RuntimeError("short reason")) == "short reason"
    run_on = first_line(RuntimeError("word " * 100))
    assert run_on.endswith(" ...") and len(run_on) <= 164 and "wor ..." not in run_on
    data = build_model(tiny_spec()).state_dict()
    torch.save(data, tmp_path / "whole.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "cut.pt")
    assert str(info.value).endswith("failed finding central directory.)"), str(info.value)
