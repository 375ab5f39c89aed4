"""benchmarks/gpu_check.py's CPU parts end to end (--device cpu --quick): the JSON has every part, and its
numbers hold what they claim: CPU against CPU agrees exactly, the two-process torchrun study counts what one
process counts, the GMAC/s and images/s are the JSON's own MACs and images over its own seconds."""

import json
import statistics
import sys
from pathlib import Path

import pytest

from resnet_cli import get_spec
from resnet_cli.plan import plan_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    returned = gpu_check.main(["--device", "cpu", "--quick", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))  # what was printed is what was written
    return written


def test_every_part_ran_within_its_budget_and_said_where(doc):
    assert set(doc["parts"]) == set(gpu_check.PARTS) == set(doc["seconds"])
    assert doc["device"] == "cpu" and doc["gpu"] is None and doc["quick"]
    assert doc["total_s"] >= sum(doc["seconds"].values()) and doc["skipped"] == {}
    assert doc["seconds"]["torchrun"] < gpu_check.QUICK.budgets["torchrun"]


def test_cpu_against_cpu_agrees_exactly_and_the_baseline_is_the_trainers_test_error(doc):
    a = doc["parts"]["agreement"]
    reference, *others = a["runs"]
    assert a["configurations"] == 1 + 3 == len(reference["correct"])  # cifar_resnet8: baseline + 3 blocks
    assert [r["autocast"] for r in others] == [None, None]  # no autocast off CUDA
    for run in others:
        assert run["correct"] == reference["correct"] == run["stacked_correct"]
        assert run["differing_images"] == [0] * 4 and run["ok"]
    # the study's baseline scores the images the trainer evaluated after its last epoch
    assert reference["correct"][0] == round((1 - a["test_error"]) * a["images"])
    assert 0 < reference["correct"][0] < a["images"]  # learned something, not everything


def test_torchrun_counts_equal_one_process(doc):
    t = doc["parts"]["torchrun"]
    assert t["returncodes"] == {"single": 0, "torchrun": 0} and t["equal"] and t["errors"] is None, t["errors"]
    assert t["max_count_difference"] == 0
    assert t["torchrun_correct"] == t["single_correct"] == doc["parts"]["agreement"]["runs"][0]["correct"]


def test_lesion_rates_are_the_jsons_own_macs_and_images_over_its_seconds(doc):
    for net, (arch, size, n, *_rest) in zip(doc["parts"]["lesion"], gpu_check.QUICK.lesion_nets, strict=True):
        rows = {r["run"]: r for r in net["rows"]}
        assert list(rows) == ["inference", "naive", "cached", "stacked"] and net["errors_identical"]
        assert rows["inference"]["executed_macs"] == plan_model(get_spec(arch, input_size=size)).macs * n
        assert rows["cached"]["executed_macs"] < rows["naive"]["executed_macs"]
        for name, r in rows.items():
            assert r["median_s"] == statistics.median(r["times_s"])
            scored = n * (1 if name == "inference" else net["configurations"])
            assert r["images_per_s"] == pytest.approx(scored / r["median_s"], rel=1e-12)
            assert r["executed_macs_per_s"] == pytest.approx(r["executed_macs"] / r["median_s"], rel=1e-12)
            study = rows["inference" if name == "inference" else "naive"]["executed_macs"]
            assert r["effective_macs_per_s"] == pytest.approx(study / r["median_s"], rel=1e-12)


def test_train_rates_are_batches_over_median_steps(doc):
    t = doc["parts"]["train"]
    assert t["steps"] == len(t["trainer_step_s"]) == len(t["minimal_step_s"]) == gpu_check.QUICK.train_steps
    assert t["trainer_images_per_s"] == pytest.approx(t["batch_size"] / statistics.median(t["trainer_step_s"]))
    ratios = [a / b for a, b in zip(t["trainer_step_s"], t["minimal_step_s"])]
    assert t["median_step_time_ratio"] == pytest.approx(statistics.median(ratios))


def test_no_part_starts_past_the_deadline_and_unknown_parts_are_refused(tmp_path, capsys):
    doc = gpu_check.main(["--device", "cpu", "--quick", "--parts", "lesion,train", "--max-seconds", "0",
                          "--out", str(tmp_path / "none.json")])
    assert doc["parts"] == {} and doc["skipped"] == {"lesion": "out of time (--max-seconds)",
                                                     "train": "out of time (--max-seconds)"}
    assert "skipped  lesion" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--parts", "agreement,speed"])
    assert exit_info.value.code == 2 and "unknown part 'speed'" in capsys.readouterr().err
