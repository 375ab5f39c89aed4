"""A study's files read back: an edited measurements.json is refused and the study kept; one output, one run
(locks, stale locks taken over); a lesion JSON that plot-lesion cannot draw is refused."""

from __future__ import annotations

import json
import subprocess

import pytest
from cli_runner import run_main
from hostile_runner import assert_refused, dead_pid, run_cases


def test_an_edited_measurements_json_is_refused_and_the_study_kept(trained, tmp_path, monkeypatch, capsys):
    ckpt, _ = trained
    out = tmp_path / "study"
    study = ["lesion", str(ckpt), "--limit", "16", "--experiments", "single", "--out", str(out), "--format", "json"]
    code, err = run_main(monkeypatch, capsys, study)  # the study itself is no hostile case: in this process
    assert code == 0, err
    kept = {name: (out / name).read_bytes() for name in ("lesion.json", "measurements.json", "measurements.csv")}
    state = json.loads(kept["measurements.json"])
    key = next(iter(state["done"]))

    def edited(**change):
        return json.dumps({**state, **change})

    def entry(**change):
        return edited(done={**state["done"], key: {**state["done"][key], **change}})

    bad = {
        "a list": "[]", "null": "null", "no done": json.dumps({k: v for k, v in state.items() if k != "done"}),
        "string count": entry(correct="12"), "no images": entry(images=0), "999 of 16": entry(correct=999),
        "deep nesting": "[" * 100_000 + "]" * 100_000, "not json": "{", "bool k": entry(k=True),
        "partial of 99": edited(partial={"chunk": "single", "keys": [key], "images_done": 99, "correct": [1]}),
        "not UTF-8": '{"done": "\udcff\udcfe"}',
    }
    state_file = str(out / "measurements.json")
    cases = [{"argv": [*study, "--resume"], "files": {state_file: text}} for text in bad.values()]
    (tmp_path / "resumes").mkdir()
    results = run_cases(tmp_path / "resumes", cases)
    for what, result in zip(bad, results):
        assert_refused(result, "measurements.json")
        assert result["stdout"] == "", what
    for name in ("lesion.json", "measurements.csv"):  # the finished study's results are untouched
        assert (out / name).read_bytes() == kept[name]


def test_a_second_run_on_one_output_refuses_and_a_stale_lock_is_taken_over(trained, tmp_path):
    import socket

    ckpt, _ = trained
    owner = subprocess.Popen(["sleep", "120"])
    try:
        busy, stale = tmp_path / "busy", tmp_path / "stale"
        for folder, pid in ((busy, owner.pid), (stale, dead_pid())):
            folder.mkdir()
            (folder / ".resnet-cli.lock").write_text(f"{pid} {socket.gethostname()}\n")
        (tmp_path / ".net.pt.lock").write_text(f"{owner.pid} {socket.gethostname()}\n")
        study = ["lesion", str(ckpt), "--limit", "8", "--experiments", "single", "--format", "json", "--out"]
        r = run_cases(tmp_path, [
            {"argv": [*study, str(busy)]},
            {"argv": [*study, str(stale)]},
            {"argv": ["train", "--resume", str(ckpt), "--epochs", "3", "-o", str(tmp_path / "net.pt")]},
            {"argv": ["gradients", str(ckpt), "--limit", "4", "--out", str(busy)]},
        ])
    finally:
        owner.kill()
        owner.wait()
    assert_refused(r[0], "in use by another resnet-cli run", f"pid {owner.pid}")
    assert not (busy / "measurements.json").exists()
    assert r[1]["code"] == 0, r[1]["stderr"]
    assert (stale / "lesion.json").exists() and not (stale / ".resnet-cli.lock").exists()
    assert_refused(r[2], "--output", "in use")
    assert not (tmp_path / "net.pt").exists()
    assert_refused(r[3], "in use")




@pytest.mark.parametrize("text, words", [
    ('{"baseline_error": "x"}', "no baseline_error between 0 and 1"),
    ('{"baseline_error": 1e999, "single": []}', "no baseline_error between 0 and 1"),
    ('{"baseline_error": 0.1, "single": "garbage"}', "'single' is not a list"),
    ('{"baseline_error": 0.1, "single": [1, 2]}', "'single' row 1 lacks"),
    ('{"baseline_error": 0.1, "multi": [{"k": 1, "mean": 0.5, "std": 0.1}, {"k": "2", "mean": 0.5, "std": 0}]}',
     "'multi' row 2 lacks"),
    ('{"baseline_error": 0.1, "reorder": [{"k": 1, "mean": 50, "std": 0}]}', "'reorder' row 1 lacks"),
    ('{"baseline_error": 0.5}', "no single, multi or reorder measurements to draw"),
    ('{"baseline_error": 0.1, "multi": [{"k": 1, "mean": 0.5, "std": 0.1}], "num_classes": 0}', "num_classes"),
    ("\udcff{}", "not a lesion study"),  # not UTF-8
    ('{"baseline_error": ' + "9" * 5000 + "}", "4300 digits"),  # json refuses it with a ValueError
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_plot_lesion_refuses_a_lesion_json_it_cannot_draw(tmp_path, monkeypatch, capsys, text, words):
    """Each used to end in a TypeError traceback-turned-"internal error" (exit 1), or exit 0 having drawn nothing."""
    study = tmp_path / "lesion.json"
    study.write_text(text, encoding="utf-8", errors="surrogateescape")
    code, err = run_main(monkeypatch, capsys, ["plot-lesion", str(study), "-o", str(tmp_path / "plots")])
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"Error: {study}: not a lesion study") and words in err, err
    assert not (tmp_path / "plots").exists()
