"""Tables, CSV and plots for ``train``, ``eval`` and ``plot-record``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box

from . import loading_lines, print_table, safe, save_figure

RECORD_COLUMNS = ["epoch", "lr", "train_loss", "train_error", "test_loss", "test_error", "epoch_time_s",
                  "wall_time_s", "images_per_s"]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def train_table(result: Any, console: Any) -> None:
    from rich.table import Table

    d = result.to_dict()
    ds = d["dataset"]
    title = (f"{safe(d['arch'])} on {safe(ds['name'])} ({ds['num_classes']} classes, "
             f"{ds['input_size']}x{ds['input_size']}x{ds['in_channels']})  ·  device {d['device']}  ·  "
             f"augmentation {result.dataset.augmentation if d['config']['augment'] else 'off'}")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("epoch", "lr", "train loss", "train err", "test loss", "test err", "time (s)", "img/s"):
        table.add_column(name, justify="right")
    for r in d["record"]:
        style = "bold" if r["epoch"] == d["best_epoch"] else ""
        table.add_row(str(r["epoch"]), f"{r['lr']:g}", f"{r['train_loss']:.4f}", _pct(r["train_error"]),
                      f"{r['test_loss']:.4f}", _pct(r["test_error"]), f"{r['epoch_time_s']:.1f}",
                      "-" if r.get("images_per_s") is None else f"{r['images_per_s']:,.0f}", style=style)
    print_table(console, table)
    if d["record"]:
        console.print(f"final test error {_pct(d['final_test_error'])}  ·  best {_pct(d['best_test_error'])} "
                      f"(epoch {d['best_epoch']})  ·  wall time {d['record'][-1]['wall_time_s']:.1f} s")
    if d["checkpoint"]:
        best = f"  ·  best: {safe(d['best_checkpoint'])}" if d["best_checkpoint"] else ""
        console.print(f"checkpoint: {safe(d['checkpoint'])}{best}")
    for note in d["notes"]:
        console.print(f"[dim]note: {safe(note)}[/dim]")


def record_csv(result: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    header = ["arch", "dataset", *RECORD_COLUMNS]
    d = result.to_dict()
    return header, [[d["arch"], d["dataset"]["name"], *[r.get(c) for c in RECORD_COLUMNS]] for r in d["record"]]


def eval_table(report: Any, console: Any) -> None:
    from ..registry import label_with_overrides

    d = report.to_dict()
    top5 = f", top-5 error {_pct(d['top5_error'])}" if d.get("top5_error") is not None else ""
    name = safe(label_with_overrides(d["arch"], d.get("overrides") or {}))
    console.print(f"{name} on {safe(d['dataset'])} ({d['split']} split, {d['images']:,} images): "
                  f"error {_pct(d['error'])} ({d['images'] - d['correct']:,} "
                  f"wrong){top5}, accuracy {_pct(d['accuracy'])}, loss {d['loss']:.4f} nats/image")
    measured = [c for c in d.get("per_class") or () if c["error"] is not None]  # a class with no image has none
    if measured:
        highest = max(c["error"] for c in measured)
        console.print(f"[dim]per class: error from {_pct(min(c['error'] for c in measured))} to {_pct(highest)} "
                      f"({_classes([c for c in measured if c['error'] == highest])}); every class in "
                      f"--format json[/dim]")
    for note in d.get("notes") or ():
        console.print(f"[dim]note: {safe(note)}[/dim]")
    loading_lines(d, console)  # how the arch was found, what was mapped, the normalisation


def _classes(rows: list[dict[str, Any]], shown: int = 3) -> str:
    """``class 3, cat``; where several share the worst error, each of them (``classes 0, 1``), the first
    ``shown`` of many (``classes 0 airplane, 1 automobile, 2 bird and 5 more``)."""
    if len(rows) == 1:
        return f"class {rows[0]['class']}{_named(rows[0])}"
    names = ", ".join(f"{r['class']}{' ' + safe(r['name']) if r.get('name') else ''}" for r in rows[:shown])
    more = f" and {len(rows) - shown} more" if len(rows) > shown else ""
    return f"classes {names}{more}"


def _named(row: dict[str, Any]) -> str:
    return f", {safe(row['name'])}" if row.get("name") else ""


def eval_csv(report: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    d = report.to_dict()
    header = ["checkpoint", "arch", "dataset", "split", "images", "correct", "error", "accuracy", "loss",
              "top5_correct", "top5_error"]
    return header, [[d[k] for k in header]]


def plot_records(series: Sequence[tuple[str, list[dict[str, Any]]]], path: str | Path, *,
                 title: str = "training record", panels: bool = False, log: bool = False) -> None:
    """Train error (dashed) and test error (solid) in % per epoch, one colour per run, as He et al. 2015 Fig. 1/6.

    ``panels=True`` draws one panel per group of labels sharing the text before ':' (the degradation figure's
    "plain" | "residual" side by side). The error axis runs from 0 to just above the largest error, or with
    ``log`` on a log scale down to the smallest error above 0 (an error of exactly 0 sits on the axis's floor,
    drawn hollow), where final errors span decades.
    """
    # Names are the user's: a '$' would start matplotlib's mathtext (and fail the plot after the training).
    series = [(label.replace("$", r"\$"), record) for label, record in series]
    title = title.replace("$", r"\$")
    from .style import COLUMN, HEIGHT, integer_axis, legend_below, new_figure
    from .style import title as fold

    groups: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
    for label, record in series:
        key = label.split(":", 1)[0] if panels and ":" in label else ""
        groups.setdefault(key, []).append((label.split(":", 1)[1].strip() if key else label, record))
    errors = [100 * r[key] for _, record in series for r in record for key in ("train_error", "test_error")
              if r.get(key) is not None]
    floor = min((e for e in errors if e > 0), default=0.01) / 2
    width = COLUMN * max(1, 0.9 * len(groups))
    fig, axes = new_figure(1, len(groups), figsize=(width, HEIGHT + 0.3),
                           squeeze=False, sharey=True)
    for ax, (group, runs) in zip(axes[0], groups.items()):
        for i, (label, record) in enumerate(runs):
            _plot_run(ax, f"C{i}", label, record, floor if log else None)
        ax.set_xlabel("epoch")
        integer_axis(ax.xaxis, [r["epoch"] for _, record in runs for r in record])  # never epoch 0.96
        if group:
            ax.set_title(group)
    _error_axis(axes[0][0], errors, floor if log else None)
    if len(groups) > 1:
        fig.suptitle(fold(title, width=width))
    else:
        axes[0][0].set_title(fold(title, width=width))
    legend_below(fig, axes[0], ncol=2)
    save_figure(fig, path)


def _plain_log_formatter() -> Any:
    """matplotlib's choice of which log-axis ticks to label, each labelled as a plain number."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
            return f"{x:g}"

    return PlainLogFormatter(labelOnlyBase=False)


def _error_axis(ax: Any, errors: Sequence[float], floor: float | None) -> None:
    """0 to just above the largest error in %; with a ``floor``, a log scale from it."""
    top = max(errors, default=100.0)
    if floor is not None:
        ax.set_yscale("log")
        ax.set_ylim(floor / 1.5, min(100.0, top * 1.5))
        # 0.1, 1, 10 and, where the range is short, 20, 30, 60: percentages, never 10^-1 or 6x10^1
        ax.yaxis.set_major_formatter(_plain_log_formatter())
        ax.yaxis.set_minor_formatter(_plain_log_formatter())
    else:
        ax.set_ylim(0, min(100.0, top * 1.08) or 1.0)
    ax.set_ylabel("error (%)" + (", log scale" if floor is not None else ""))


def _plot_run(ax: Any, color: str, label: str, record: list[dict[str, Any]], floor: float | None) -> None:
    epochs = [r["epoch"] for r in record]
    marker = "o" if len(record) < 20 else None  # a one-epoch record is a point, invisible as a bare line
    for key, ls, what, fill in (("train_error", "--", "train", "none"), ("test_error", "-", "test", "full")):
        ys = [100 * r[key] if r.get(key) is not None else float("nan") for r in record]
        zeros = [e for e, y in zip(epochs, ys) if y == 0]
        if floor is not None:  # log scale: an error of 0 has no place on it; it sits on the floor, marked
            ys = [max(y, floor) for y in ys]
            if zeros:
                ax.plot(zeros, [floor] * len(zeros), "v", color=color, ms=5, label="error 0 (on the axis floor)")
        ax.plot(epochs, ys, ls, color=color, marker=marker, fillstyle=fill, label=f"{label} {what}")
