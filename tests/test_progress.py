"""The one progress protocol: events carry the whole stage's state; the display's status lines for logs."""

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
