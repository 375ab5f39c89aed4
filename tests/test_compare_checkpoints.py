"""``compare`` takes checkpoint files beside arch names (issue 20: ``compare ckpt.pt`` said "unknown
architecture"): a checkpoint column is the network its file holds, read by ``load_checkpoint``, with its own
overrides in its label, named by its file; only ``--input-size`` changes it."""

import json

import pytest
import torch
from cli_runner import one_line_error, run

from resnet_cli import build_model, get_spec
from resnet_cli.analysis.counts import count_params
from resnet_cli.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A resnet20 cut to one block per stage, as a trained net's checkpoint would hold it."""
    spec = get_spec("resnet20", layers="1,1,1")
    path = tmp_path_factory.mktemp("compare") / "small.pt"
    save_checkpoint(path, spec=spec, state_dict=build_model(spec).state_dict(), dataset=None, record=[])
    return path, spec


def _compare(*args):
    return run("compare", *args)


def test_a_checkpoint_column_is_the_network_it_holds(ckpt):
    path, spec = ckpt
    res = _compare(path, "resnet20", "-f", "json")
    assert res.exit_code == 0, res.output
    small, full = json.loads(res.stdout)["archs"]
    expected = count_params(spec)
    assert (small["label"], small["params"], small["macs"]) == ("small.pt (resnet20, layers=1,1,1)",
                                                                 expected.params, expected.macs)
    assert (small["arch"], small["overrides"]) == ("resnet20", {"layers": [1, 1, 1]})
    # resnet20 itself: He et al.'s 0.27M (option A); the cut net drops two of each stage's three blocks
    assert full["params"] == 269_722 and small["params"] < full["params"]
    assert small["buffers"] == expected.buffers
    table = _compare("resnet20", path)
    assert table.exit_code == 0 and "small.pt (resnet20, layers=1,1,1)" in table.stdout


def test_two_checkpoints_of_one_arch_are_told_apart_by_their_files(ckpt, tmp_path):
    path, _ = ckpt
    twin = tmp_path / "twin.pt"
    twin.write_bytes(path.read_bytes())
    doc = json.loads(_compare(path, twin, "-f", "json").stdout)
    assert doc["baseline"] == "small.pt (resnet20, layers=1,1,1)"
    assert [a["label"] for a in doc["archs"]] == [doc["baseline"], "twin.pt (resnet20, layers=1,1,1)"]


def test_input_size_applies_to_a_checkpoint_column(ckpt):
    path, spec = ckpt
    res = _compare(path, "resnet20", "--input-size", "64", "-f", "json")
    assert res.exit_code == 0, res.output
    small = json.loads(res.stdout)["archs"][0]
    assert small["macs"] == count_params(spec.replace(input_size=64)).macs
    fc = 64 * 10  # the one layer whose MACs do not grow with the map: every conv's do, 4x for twice the side
    assert small["macs"] - fc == 4 * (count_params(spec).macs - fc)


@pytest.mark.parametrize("args, message", [
    (["--set", "widths=8,16,32"], "--set: not with a checkpoint"),
    (["--shortcut", "B"], "--shortcut: not with a checkpoint"),
])
def test_options_that_change_a_network_are_refused_for_a_checkpoint(ckpt, args, message):
    res = _compare(ckpt[0], "resnet20", *args)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]


def test_a_missing_checkpoint_is_one_line(tmp_path):
    res = _compare(tmp_path / "gone.pt", "resnet20")
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "gone.pt" in lines[0]


REAL = __import__("pathlib").Path("/work/shared/real")


@pytest.mark.skipif(not (REAL / "resnet20-12fca82f.th").is_file(),
                    reason="the trained CIFAR checkpoints (akamaster's resnet20/32) are not on this machine")
def test_foreign_trained_checkpoints_compare_as_the_nets_they_hold():
    res = _compare(REAL / "resnet20-12fca82f.th", REAL / "resnet32-d509ac18.th", "-f", "json")
    assert res.exit_code == 0, res.output
    archs = json.loads(res.stdout)["archs"]
    # He et al. 2015 Table 6: 0.27M and 0.46M
    assert [(a["label"], a["params"]) for a in archs] == [("resnet20-12fca82f.th (resnet20)", 269_722),
                                                          ("resnet32-d509ac18.th (resnet32)", 464_154)]


@pytest.mark.parametrize("command", [["compare", "resnet20"], ["draw", "-o", "net.png"]])
def test_a_bare_state_dict_of_no_known_arch_is_answered_with_what_the_command_takes(command, tmp_path):
    """compare and draw have no --arch (the weights change no count and no drawing): the refusal says to give the
    architecture's name, not an option the command lacks; eval, which has --arch, still names it."""
    odd = tmp_path / "odd.pt"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)}, odd)
    args = [command[0], odd, *[tmp_path / a if a.endswith(".png") else a for a in command[1:]]]
    line = one_line_error(run(*args), str(odd), "matches no registered architecture", "architecture's name")
    assert "--arch" not in line
    one_line_error(run("eval", odd, "-d", "synthetic"), "matches no registered architecture", "pass --arch NAME")


@pytest.mark.parametrize("command", [["compare", "resnet20"], ["draw", "-o", "net.png"]])
def test_a_folder_column_is_a_folder_not_an_unknown_architecture(command, tmp_path, monkeypatch):
    """It was "unknown architecture 'runs/'"; a folder named like an architecture is still the architecture."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "resnet56").mkdir()
    for column in ("runs", "runs/", "./runs"):
        one_line_error(run(command[0], column, *command[1:]), f"{column} is a folder, not a checkpoint file")
    result = run(command[0], "resnet56", *command[1:])
    assert result.exit_code == 0, result.output

