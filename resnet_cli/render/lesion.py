"""Tables, CSV and plots for ``lesion`` and ``gradients``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box

from . import fmt_int, new_figure, safe, save_figure


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


# --------------------------------------------------------------------------- lesion
def lesion_table(result: Any, console: Any) -> None:
    from rich.table import Table

    kind = "ResNet" if result.residual else "plain net"
    console.print(f"[bold]{safe(result.arch)}[/bold] ({kind}) on {safe(result.dataset)}: "
                  f"{fmt_int(result.images)} images  ·  baseline error [bold]{_pct(result.baseline_error)}[/bold]")
    if result.single:
        # A plain net has no shortcut to keep: its deleted layer is replaced by an identity instead.
        how = "residual branch removed, shortcut kept" if result.residual else "layer replaced by an identity"
        table = Table(title=f"single deletions ({how})", title_justify="left", box=box.SIMPLE_HEAD)
        for col, just in (("block", "left"), ("stage", "right"), ("downsample", "center"), ("error", "right"),
                          ("change", "right")):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for r in result.single:
            change = r.error - result.baseline_error
            table.add_row(r.block, str(r.stage), "yes" if r.downsample else "", _pct(r.error),
                          f"{100 * change:+.2f} pts", style="bold" if r.downsample else "")
        console.print(table)
    for name, rows, what in (("multi", result.multi, "blocks deleted at random"),
                             ("reorder", result.reorder, "random pairs of equal-shaped blocks swapped")):
        if not rows:
            continue
        table = Table(title=f"{name}: k {what}", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("k", "samples", "mean error", "std", "min", "max"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(str(r.k), str(len(r.errors)), _pct(r.mean), _pct(r.std), _pct(min(r.errors)),
                          _pct(max(r.errors)))
        console.print(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {safe(note)}")
    console.print("[dim]error = fraction of test images misclassified (top-1); change in percentage points[/dim]")


def lesion_csv(result: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    header = ["experiment", "k", "block", "index", "downsample", "sample", "error"]
    rows: list[list[Any]] = [["baseline", 0, "", "", "", "", f"{result.baseline_error:.6f}"]]
    rows += [["single", 1, r.block, r.index, r.downsample, "", f"{r.error:.6f}"] for r in result.single]
    for name, krows in (("multi", result.multi), ("reorder", result.reorder)):
        for r in krows:
            rows += [[name, r.k, "", "", "", s, f"{e:.6f}"] for s, e in enumerate(r.errors)]
    return header, rows


def measurements_csv(state: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """measurements.csv: one row per finished measurement of a study's state (``StudyState.to_dict()``)."""
    header = ["key", "experiment", "k", "deleted", "swaps", "correct", "images", "error"]
    rows = []
    for key, d in state["done"].items():
        cfg = d["config"]
        rows.append([key, d["experiment"], d["k"], " ".join(map(str, cfg["deleted"])),
                     " ".join(f"{a}-{b}" for a, b in cfg["swaps"]), d["correct"], d["images"],
                     f"{1 - d['correct'] / d['images']:.6f}"])
    return header, rows


def lesion_plots(result: Any, out_dir: str | Path) -> list[Path]:
    """error per deleted block (downsampling blocks marked); error against k for multi and reorder."""
    out_dir = Path(out_dir)
    written = []
    if result.single:
        fig, ax = new_figure(figsize=(max(6.0, 0.22 * len(result.single)), 3.6))
        xs = [r.index for r in result.single]
        ax.plot(xs, [100 * r.error for r in result.single], "o-", color="tab:blue", ms=3, label="block deleted")
        down = [r for r in result.single if r.downsample]
        if down:
            ax.plot([r.index for r in down], [100 * r.error for r in down], "s", color="tab:red", ms=6,
                    label="downsampling block")
        ax.axhline(100 * result.baseline_error, color="grey", ls="--", lw=1, label="no deletion")
        ax.set_xlabel("deleted block (index in forward order)")
        ax.set_ylabel("test error (%)")
        ax.set_title(f"{result.arch}: deleting single blocks")
        ax.legend(fontsize=8)
        path = out_dir / "single.png"
        save_figure(fig, path)
        written.append(path)
    for name, rows, xlabel in (("multi", result.multi, "blocks deleted (k)"),
                               ("reorder", result.reorder, "pairs of blocks swapped (k)")):
        if not rows:
            continue
        fig, ax = new_figure(figsize=(5.5, 3.6))
        ks = [r.k for r in rows]
        ax.errorbar(ks, [100 * r.mean for r in rows], yerr=[100 * r.std for r in rows], fmt="o-", capsize=3,
                    label="mean ± std over samples")
        ax.axhline(100 * result.baseline_error, color="grey", ls="--", lw=1, label="no lesion")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test error (%)")
        ax.set_title(f"{result.arch}: {name}")
        ax.legend(fontsize=8)
        path = out_dir / f"{name}.png"
        save_figure(fig, path)
        written.append(path)
    return written


# --------------------------------------------------------------------------- gradients
def gradients_table(result: Any, console: Any) -> None:
    from rich.table import Table

    lo, hi = result.effective_range
    table = Table(title=f"{safe(result.arch)}: gradient by path length ({result.blocks} blocks, "
                        f"{result.images} images, {result.samples} paths per length and batch)",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("length", "paths", "magnitude", "share", ""):
        table.add_column(col, justify="right")
    for r in result.rows:
        mark = "interpolated" if not r.measured else ""
        table.add_row(str(r.k), f"{r.paths:.3g}" if r.paths >= 1e6 else fmt_int(r.paths), f"{r.magnitude:.3e}",
                      _pct(r.share), mark, style="bold" if lo <= r.k <= hi else "")
    console.print(table)
    share = sum(r.share for r in result.rows[lo:hi + 1])
    console.print(f"{_pct(share)} of the gradient comes from paths {lo}-{hi} blocks long "
                  f"(the shortest range holding {_pct(result.mass)}), which are "
                  f"{_pct(result.effective_paths_fraction)} of all 2^{result.blocks} paths.  "
                  f"[dim]Veit et al. 2016: 5-17 for ResNet-110 on CIFAR-10.[/dim]")
    console.print("[dim]magnitude = L2 norm of d(loss of one image)/d(input), mean over images and sampled paths; "
                  "share = magnitude x number of paths of that length, normalised[/dim]")


def gradients_csv(result: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    header = ["k", "paths", "measured", "magnitude", "magnitude_std", "share"]
    return header, [[r.k, r.paths, r.measured, f"{r.magnitude:.6e}", f"{r.magnitude_std:.6e}", f"{r.share:.6f}"]
                    for r in result.rows]


def gradients_plots(result: Any, out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    ks = [r.k for r in result.rows]
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10, 3.6))
    meas = [r for r in result.rows if r.measured]
    ax1.semilogy([r.k for r in meas], [max(r.magnitude, 1e-300) for r in meas], "o-", ms=3)
    ax1.set_xlabel("path length (blocks)")
    ax1.set_ylabel("gradient magnitude at input")
    ax1.set_title("one path of length k")
    ax2.bar(ks, [100 * r.share for r in result.rows], color="tab:blue")
    lo, hi = result.effective_range
    held = sum(r.share for r in result.rows[lo:hi + 1])
    ax2.axvspan(lo - 0.5, hi + 0.5, color="tab:orange", alpha=0.2, label=f"lengths {lo}-{hi}: {_pct(held)}")
    ax2.set_xlabel("path length (blocks)")
    ax2.set_ylabel("share of total gradient (%)")
    ax2.set_title("all paths of length k")
    ax2.legend(fontsize=8)
    path = out_dir / "gradients.png"
    save_figure(fig, path)
    return [path]
