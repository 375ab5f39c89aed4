"""The ``archs``, ``params`` and ``compare`` commands as a user runs them: output, exit codes, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run, run_json

ROOT = Path(__file__).resolve().parents[1]

def test_params_json_resnet50_has_the_documented_keys_and_numbers():
    doc = run_json("params", "--arch", "resnet50")
    assert doc["arch"] == "resnet50"
    assert doc["params"] == 25_557_032
    assert doc["macs"] == 4_089_184_256
    assert doc["flops"] == 2 * doc["macs"]
    assert doc["input_size"] == 224
    assert [s["name"] for s in doc["stages"]] == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    assert sum(s["params"] for s in doc["stages"]) == doc["params"]
    assert sum(s["macs"] for s in doc["stages"]) == doc["macs"]
    assert doc["units"]["macs"] == "multiply-adds"
    assert get_shape(doc, "layer4") == [2048, 7, 7]


def get_shape(doc, stage):
    return next(s["out_shape"] for s in doc["stages"] if s["name"] == stage)


def test_params_depth_2_and_3_add_block_and_layer_rows():
    d1, d2, d3 = (run_json("params", "--arch", "resnet20", "--depth", str(d))["rows"] for d in (1, 2, 3))
    assert len(d1) == 5 and sum(r["level"] == 2 for r in d2) == 9
    assert len(d3) > len(d2) > len(d1)
    # layer rows add up to their stage
    layer1_layers = [r for r in d3 if r["level"] == 3 and r["name"].startswith("layer1.")]
    assert sum(r["params"] for r in layer1_layers) == 14_016


def test_params_overrides_change_the_counts():
    a = run_json("params", "--arch", "resnet20")
    b = run_json("params", "--arch", "resnet20", "--shortcut", "B")
    assert b["params"] > a["params"]  # option B adds two 1x1 projections + BN
    c = run_json("params", "--arch", "resnet50", "--num-classes", "10", "--input-size", "32")
    assert c["params"] == 25_557_032 - 2048 * 990 - 990
    assert c["input_size"] == 32
    d = run_json("params", "--arch", "resnet20", "--set", "widths=32,64,128")
    assert d["spec"]["widths"] == [32, 64, 128]


def test_params_fvcore_engine_json():
    doc = run_json("params", "--arch", "resnet20", "--engine", "fvcore")
    assert doc["engine"] == "fvcore"
    assert doc["fvcore"]["conv_linear"] == doc["macs"] == 40_551_040
    assert doc["fvcore_flops"] == doc["fvcore"]["total"] > doc["macs"]


def test_fvcore_warnings_are_not_dumped_on_the_user():
    result = run("params", "--arch", "resnet20", "--engine", "fvcore")
    assert result.exit_code == 0
    assert "Unsupported operator" not in result.output
    assert "fvcore did not count:" in result.output


def test_the_seeds_17x_example():
    basic = run_json("params", "--block", "basic", "--channels", "256")
    bottleneck = run_json("params", "--block", "bottleneck", "--channels", "256")
    assert basic["conv_params"] == 1_179_648 == 2 * 3 * 3 * 256 * 256
    assert bottleneck["conv_params"] == 69_632 == 256 * 64 + 9 * 64 * 64 + 64 * 256
    assert basic["bn_params"] == 2 * 2 * 256
    assert round(basic["conv_params"] / bottleneck["conv_params"]) == 17
    # MACs at the given feature map: params x H x W for stride-1 convs
    small = run_json("params", "--block", "basic", "--channels", "256", "--feature-size", "14")
    assert small["macs"] == 1_179_648 * 14 * 14


def test_compare_ratios_to_the_first():
    doc = run_json("compare", "resnet18", "resnet34", "resnet50")
    names = [a["arch"] for a in doc["archs"]]
    assert names == ["resnet18", "resnet34", "resnet50"]
    r50 = doc["archs"][2]
    assert r50["params_ratio"] == pytest.approx(25_557_032 / 11_689_512, rel=1e-3)
    assert doc["archs"][0]["macs_ratio"] == 1.0


def test_archs_glob_and_json():
    doc = run_json("archs", "resnet1*")
    names = [a["name"] for a in doc["archs"]]
    assert names == ["resnet18", "resnet101", "resnet101_v1", "resnet110", "resnet152", "resnet152_v1", "resnet1202"]
    r110 = doc["archs"][3]
    assert (r110["residual_blocks"], r110["params"], r110["depth"]) == (54, 1_727_962, 110)
    assert doc["parametric"] == []  # no parametric name starts with 'resnet'


def test_archs_search_finds_parametric_names():
    """'archs cifar' used to say no architecture matches, though cifar_resnet<depth> and cifar_plain<depth> exist:
    a word is found anywhere in a name, and parametric names match by their template or by the pattern's
    numbers put into it."""
    templates = {"cifar_": ["cifar_resnet<depth>", "cifar_plain<depth>"], "*plain*": ["cifar_plain<depth>"],
                 "cifar_resnet11*": ["cifar_resnet<depth>"], "wrn28_*": ["wrn<depth>_<k>"],
                 "densenet*": ["densenet<L>_<k>", "densenet_bc<L>_<k>"]}
    for pattern, expected in templates.items():
        doc = run_json("archs", pattern)
        assert [p["template"] for p in doc["parametric"]] == expected, pattern
    assert [a["name"] for a in run_json("archs", "plain2")["archs"]] == ["plain20"]
    table = run("archs", "cifar_").stdout
    assert "0 architectures" not in table and "cifar_plain<depth>" in table
    assert len(run_json("archs")["parametric"]) == 7  # no pattern: all of them


# The CIFAR nets of the papers the zoo cites (He et al. 2015 §4.2 and 2016, Zagoruyko & Komodakis, Huang et al.
# Table 2, Xie et al. §5.3, Srivastava et al.), written out by hand: none of their names says CIFAR.
CIFAR_NETS = ["densenet40_12", "densenet_bc100_12", "densenet_bc190_40", "densenet_bc250_24", "highway110",
              "plain20", "plain32", "plain44", "plain56", "plain110", "plain1202",
              "preact_resnet110", "preact_resnet164", "preact_resnet1001",
              "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202",
              "resnext29_8x64d", "resnext29_16x64d", "wrn16_8", "wrn28_10", "wrn40_4"]


def test_archs_word_matches_descriptions():
    """'archs cifar' (the README's example) listed no architecture, as no registered CIFAR net has 'cifar' in its
    name: a plain word is also found, in any case, in an architecture's family or description. A glob still
    matches names only."""
    for word in ("cifar", "CIFAR", "Cifar"):
        doc = run_json("archs", word)
        assert [a["name"] for a in doc["archs"]] == CIFAR_NETS, word
        assert {a["input_size"] for a in doc["archs"]} == {32}
        assert len(doc["parametric"]) == 7  # every parametric family is a CIFAR one (its help says so)
    assert "25 architectures" in run("archs", "cifar").stdout
    assert run_json("archs", "*cifar*")["archs"] == []  # a glob: names only
    assert [a["name"] for a in run_json("archs", "Zagoruyko")["archs"]] == ["wrn16_8", "wrn28_10", "wrn40_4"]


@pytest.mark.parametrize("typed, suggested", [
    ("plain8", "did you mean cifar_plain8, plain18"),  # cifar_plain8 is valid (8 = 6n+2), the prefix left out
    ("resnet8", "did you mean cifar_resnet8, se_resnet8, resnet18"),
    ("resnt20", "did you mean resnet20"),  # a registered name still comes first when it is the closest
])
def test_an_unknown_name_suggests_the_parametric_name_it_shortens(typed, suggested):
    result = run("params", "--arch", typed)
    assert result.exit_code == 2 and suggested in result.output, result.output
    assert "cifar_plain14" not in run("params", "--arch", "plain14x").output  # only names its numbers make


def test_params_csv_has_a_header_and_a_total():
    result = run("params", "--arch", "resnet18", "--format", "csv")
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("arch,name,kind")
    assert lines[-1].split(",")[:2] == ["resnet18", "total"] and "11689512" in lines[-1]


@pytest.mark.parametrize("args, message", [
    (["params", "--arch", "resnet5O"], "did you mean resnet56, resnet50"),
    (["params", "--arch", "cifar_resnet21"], "6n+2"),
    (["params", "--arch", "resnet50", "--input-size", "0"], "--input-size"),
    (["params", "--arch", "resnet50", "--input-size", "abc"], "--input-size"),
    (["params", "--arch", "resnet50", "--input-size", "224x"], "H or HxW"),
    (["params", "--arch", "resnet50", "--input-size", "0x5"], "between 1 and 8192"),
    (["params", "--arch", "resnet50", "--input-size", "axb"], "H or HxW"),
    (["params", "--arch", "resnet50", "--input-size", "224x9000"], "between 1 and 8192 pixels (got 9000)"),
    (["params", "--arch", "resnet50", "--input-size", "224x320x3"], "H or HxW"),
    (["compare", "resnet18", "resnet50", "--input-size", "x320"], "H or HxW"),
    (["params", "--arch", "resnet50", "--dtype", "int8"], "--dtype"),
    (["params", "--arch", "resnet50", "--batch-size", "0"], "--batch-size"),
    (["params", "--block", "basic", "--batch-size", "2"], "not with --block"),
    (["train", "--arch", "resnet20", "--set", "input_width=48", "-o", "unused.pt"], "square images"),
    (["params", "--arch", "resnet50", "--num-classes", "-1"], "num_classes"),
    (["params", "--arch", "resnet50", "--set", "bogus=1"], "unknown spec field"),
    (["params", "--arch", "resnet50", "--set", "widths"], "FIELD=VALUE"),
    (["params", "--arch", "resnet50", "--shortcut", "Z"], "shortcut"),
    (["params", "--arch", "resnet18", "--block", "basic"], "not both"),
    (["params"], "--arch"),
    (["archs", "nothing*"], "no architecture matches"),
    (["compare", "resnet18", "nope"], "unknown architecture"),
    (["no-such-command"], "No such command"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("Error:") and "\n" not in err and "Traceback" not in result.output
    assert message in err


def _imports_after(args):
    """Run the CLI in a fresh interpreter and report whether torch got imported."""
    code = ("import sys; from resnet_cli.cli import main; sys.argv = ['resnet-cli', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code, *args], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    return proc


@pytest.mark.parametrize("args", [["--help"], ["archs"], ["params", "--arch", "resnet1202"],
                                  ["params", "--block", "bottleneck"], ["compare", "resnet18", "resnet50"]])
def test_fast_commands_never_import_torch(args):
    proc = _imports_after(args)
    assert proc.stderr.strip().endswith("NO-TORCH"), proc.stderr
    assert proc.stdout  # it did print its answer


def test_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "resnet_cli", "params", "--arch", "resnet18", "-f", "json"],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout)["params"] == 11_689_512


def test_stochastic_depth_reports_expected_depth_and_training_macs():
    doc = run_json("params", "--arch", "resnet110", "--stochastic-depth", "0.5")
    sd = doc["stochastic_depth"]
    assert sd["blocks"] == 54 and sd["expected_blocks"] == pytest.approx((3 * 54 - 1) / 4)  # 40.25
    # every CIFAR block holds the same MACs within a stage; stages hold equal MACs (the widths double as the maps
    # shrink 2x2), so the expected share is about the mean survival, 40.25/54, less for the stem and head
    assert sd["expected_training_macs_share"] == pytest.approx(40.25 / 54, abs=0.01)
    assert sd["expected_training_macs"] < doc["macs"]
    assert "stochastic_depth" not in run_json("params", "--arch", "resnet110")
    # p_L = 1: nothing is ever dropped
    full = run_json("params", "--arch", "resnet110", "--stochastic-depth", "1")["stochastic_depth"]
    assert full["expected_training_macs"] == doc["macs"] and full["expected_blocks"] == 54


def test_params_non_square_input_in_json_and_table():
    doc = run_json("params", "--arch", "resnet50", "--input-size", "224x320")
    # the overrides carry both sides of a non-square input; the label shows them as typed
    assert (doc["input_size"], doc["input_hw"]) == (224, [224, 320])
    assert doc["overrides"] == {"input_size": 224, "input_width": 320}
    assert doc["label"] == "resnet50 (input_size=224x320)"
    assert doc["spec"]["input_width"] == 320 and get_shape(doc, "layer4") == [2048, 7, 10]
    assert doc["macs"] == 5_840_814_080  # equal to summarize's and fvcore's (test_summary, test_engines_agree)
    # the form the label prints is the form a column or --set takes; a column's plain size is square
    column = run_json("compare", "resnet50", "resnet50:input_size=224x320")["archs"][1]
    assert (column["label"], column["macs"]) == ("resnet50 (input_size=224x320)", 5_840_814_080)
    assert run_json("params", "--arch", "resnet50", "--set", "input_size=224x320")["macs"] == 5_840_814_080
    both = run_json("compare", "resnet50", "resnet50:input_size=256", "--input-size", "224x320")["archs"]
    assert [a["input_hw"] for a in both] == [[224, 320], [256, 256]]
    square = run_json("params", "--arch", "resnet50", "--input-size", "224x224")
    assert (square["input_hw"], square["overrides"], square["macs"]) == ([224, 224], {}, 4_089_184_256)
    table = run("params", "--arch", "resnet50", "--input-size", "224x320", terminal_width=120)
    assert table.exit_code == 0 and "input 224x320" in table.output and "2048x7x10" in table.output
    both = run_json("compare", "resnet18", "resnet50", "--input-size", "160x96")
    assert [a["input_hw"] for a in both["archs"]] == [[160, 96], [160, 96]]


def test_params_memory_always_in_json_and_with_the_blocks_in_the_table():
    mem = run_json("params", "--arch", "resnet20", "-b", "2", "--dtype", "float16")["memory"]
    assert (mem["batch_size"], mem["dtype"], mem["bytes_per_element"]) == (2, "float16", 2)
    assert mem["forward_bytes"] == 2 * 2 * 376_842  # test_summary.py counts the 376,842 outputs by hand
    assert run_json("params", "--arch", "resnet20")["memory"]["batch_size"] == 1
    shown = {args: "memory (estimates)" in run("params", "--arch", "resnet20", *args).output
             for args in ((), ("--depth", "2"), ("-b", "8"), ("--dtype", "bfloat16"))}
    assert shown == {(): False, ("--depth", "2"): True, ("-b", "8"): True, ("--dtype", "bfloat16"): True}


def test_json_floats_are_exact_fractions_of_the_integers_beside_them():
    doc = run_json("params", "--arch", "resnet20", "--depth", "2")
    assert doc["gmacs"] == doc["macs"] / 1e9
    assert all(r["share"] == r["macs"] / doc["macs"] for r in doc["rows"])
    cmp = run_json("compare", "resnet18", "resnet50")["archs"]
    assert cmp[1]["params_ratio"] == cmp[1]["params"] / cmp[0]["params"]
    assert cmp[1]["macs_ratio"] == cmp[1]["macs"] / cmp[0]["macs"]
    block = run_json("params", "--block", "basic", "--channels", "256")
    assert block["compared_with"]["basic_to_bottleneck_ratio"] == 1_179_648 / 69_632
