"""The one progress protocol: events carry the whole stage's state; the display's status lines for logs; status
lines on stderr whatever stdout's format (a batch job's log), only --quiet silences them."""

import json
import re

from cli_runner import run

from resnet_cli.progress import Counter, ProgressEvent
from resnet_cli.render import progress as render_progress


def test_counter_events_carry_done_total_and_advance():
    events = []
    tick = Counter(events.append, "lesion", 30, "images", done=10)
    tick(0, phase="multi/k=1")
    tick(8, phase="multi/k=1", status="x")
    assert [(e.done, e.advance) for e in events] == [(10, 0), (18, 8)]
    assert events[-1] == ProgressEvent("lesion", 18, 30, "images", "multi/k=1", 8, "x")
    assert events[-1].fraction == 18 / 30
    Counter(None, "eval", 5, "images")(5)  # no receiver: nothing to do, no error


def test_status_line_says_stage_phase_count_and_share():
    line = render_progress.status_line(ProgressEvent("lesion", 1200, 4800, "images", "multi/k=2", 16, "ok"))
    assert line == "lesion multi/k=2: 1,200/4,800 images (25%)  ok"
    assert render_progress.status_line(ProgressEvent("train", 3, None, "steps")) == "train: 3 steps"


def test_display_without_a_terminal_prints_a_status_line_per_interval(capsys, monkeypatch):
    display = render_progress.ProgressDisplay(status_lines=True)
    event = ProgressEvent("eval", 10, 100, "images")
    display(event)  # the first line comes one interval after the stage began
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(render_progress, "STATUS_EVERY_S", 0.0)
    display(event)
    assert capsys.readouterr().err == "eval: 10/100 images (10%)\n"


# --------------------------------------------------------------------------- status lines in a log file
TINY_TRAIN = ["--arch", "cifar_resnet8", "--widths", "4,8,16", "--set", "stem_width=4", "--input-size", "12",
              "--dataset", "synthetic", "--limit", "64", "--test-limit", "32", "--epochs", "1", "--device", "cpu"]


def _cli(tmp_path, *args, status_every="0"):
    """The CLI as a user runs it, stderr redirected to a file (not a terminal): (exit code, stdout, stderr)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "RESNET_CLI_STATUS_EVERY": status_every}
    err_path = tmp_path / "stderr.log"
    with open(err_path, "w") as err:
        proc = subprocess.run([sys.executable, "-m", "resnet_cli", *map(str, args)], cwd=root, env=env,
                              stdout=subprocess.PIPE, stderr=err, text=True, check=False, timeout=600)
    return proc.returncode, proc.stdout, err_path.read_text()


def test_train_lesion_and_fvcore_write_status_lines_to_a_log_and_json_stays_one_document(tmp_path):
    ckpt = tmp_path / "tiny.pt"
    code, out, err = _cli(tmp_path, "train", *TINY_TRAIN, "-o", ckpt, "--no-best")
    assert code == 0, err
    assert re.search(r"^train .*steps", err, re.M), err  # 'train epoch 1/1: 1/1 steps (100%) ...'
    code, out, err = _cli(tmp_path, "lesion", ckpt, "--experiments", "single", "--device", "cpu")
    assert code == 0, err
    assert re.search(r"^lesion .*images", err, re.M), err
    code, out, err = _cli(tmp_path, "params", "--arch", "resnet20", "--engine", "fvcore")
    assert code == 0, err
    assert re.search(r"^fvcore", err, re.M), err
    # JSON on stdout is exactly one document, whatever goes to stderr
    # JSON on stdout is exactly one document, and the status lines still go to stderr beside it (a batch job's
    # log must not be silent): only --quiet silences them
    code, out, err = _cli(tmp_path, "lesion", ckpt, "--experiments", "single", "--device", "cpu", "-f", "json")
    assert code == 0, err
    json.loads(out)
    assert out.strip().startswith("{") and out.strip().endswith("}")
    assert re.search(r"^lesion .*images", err, re.M), err
    code, out, err = _cli(tmp_path, "params", "--arch", "resnet20", "--engine", "fvcore", "-f", "json")
    assert code == 0 and json.loads(out)["fvcore"]["conv_linear"] == json.loads(out)["macs"]
    assert re.search(r"^fvcore", err, re.M), err
    code, out, err = _cli(tmp_path, "lesion", ckpt, "--experiments", "single", "--device", "cpu", "-f", "json", "-q")
    assert code == 0 and err == "" and json.loads(out)["single"]


def test_quiet_silences_the_status_lines(tmp_path):
    code, _, err = _cli(tmp_path, "params", "--arch", "resnet20", "--engine", "fvcore", "--quiet")
    assert code == 0 and err == ""


def test_a_missing_checkpoint_is_refused_before_torch_is_imported(monkeypatch, tmp_path):
    import sys

    for command in (["eval"], ["lesion"], ["gradients"], ["plot-record"], ["train", "--resume"]):
        monkeypatch.setitem(sys.modules, "torch", None)  # importing torch now fails: the refusal must come first
        result = run(*command, tmp_path / "none.pt")
        monkeypatch.undo()
        assert result.exit_code == 2 and "no such checkpoint" in result.output, (command, result.output)


def test_the_resume_note_on_a_changed_schedule_comes_before_training(tmp_path):
    ckpt = tmp_path / "tiny.pt"
    assert _cli(tmp_path, "train", *TINY_TRAIN, "-o", ckpt, "--no-best", "-q")[0] == 0
    code, _, err = _cli(tmp_path, "train", "--resume", ckpt, "--epochs", "2", "--no-best")
    assert code == 0, err
    lines = err.splitlines()
    note = next(i for i, line in enumerate(lines) if "epochs changed from 1 to 2" in line)
    first_step = next(i for i, line in enumerate(lines) if line.startswith("train"))
    assert note < first_step, err
