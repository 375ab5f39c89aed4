"""Tables, CSV and plots for ``train``, ``eval`` and ``plot-record``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box

from . import loading_lines, new_figure, safe, save_figure

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
    console.print(table)
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
    d = report.to_dict()
    console.print(f"{safe(d['arch'])} on {safe(d['dataset'])} ({d['split']} split, {d['images']:,} images): "
                  f"error {_pct(d['error'])}, accuracy {_pct(d['accuracy'])}, loss {d['loss']:.4f} nats/image")
    loading_lines(d, console)  # how the arch was found, what was mapped, the normalisation


def eval_csv(report: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    d = report.to_dict()
    header = ["checkpoint", "arch", "dataset", "split", "images", "correct", "error", "accuracy", "loss"]
    return header, [[d[k] for k in header]]


def plot_records(series: Sequence[tuple[str, list[dict[str, Any]]]], path: str | Path, *,
                 title: str = "training record", panels: bool = False) -> None:
    """Train error (dashed) and test error (solid) per epoch, one colour per run.

    ``panels=True`` draws one panel per group of labels sharing the text before ':' (the degradation figure's
    "plain" | "residual" side by side, as in He et al. 2015 Fig. 1/6).
    """
    # Names are the user's: a '$' would start matplotlib's mathtext (and fail the plot after the training).
    series = [(label.replace("$", r"\$"), record) for label, record in series]
    title = title.replace("$", r"\$")
    groups: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
    for label, record in series:
        key = label.split(":", 1)[0] if panels and ":" in label else ""
        groups.setdefault(key, []).append((label.split(":", 1)[1].strip() if key else label, record))
    from matplotlib.ticker import MaxNLocator

    fig, axes = new_figure(1, len(groups), figsize=(5.5 * len(groups), 4), squeeze=False, sharey=True)
    for ax, (group, runs) in zip(axes[0], groups.items()):
        for i, (label, record) in enumerate(runs):
            color = f"C{i}"
            epochs = [r["epoch"] for r in record]
            marker = "o" if len(record) < 20 else None  # a one-epoch record is a point, invisible as a bare line
            ax.plot(epochs, [100 * r["train_error"] for r in record], "--", color=color, marker=marker,
                    fillstyle="none", label=f"{label} train")
            ax.plot(epochs, [100 * r["test_error"] for r in record], "-", color=color, marker=marker,
                    label=f"{label} test")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers, never 0.96
        shown = sorted({r["epoch"] for _, record in runs for r in record})
        if 0 < len(shown) < 3:  # too few for the locator to find whole numbers inside the axis
            ax.set_xticks(shown)
        ax.set_title(group or title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("error (%)")
    if len(groups) > 1:
        fig.suptitle(title, y=1.03)
    save_figure(fig, path)
    import matplotlib.pyplot as plt

    plt.close(fig)
