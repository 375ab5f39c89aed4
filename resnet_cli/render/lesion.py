"""Tables, CSV and plots for ``lesion`` and ``gradients``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box

from ..plan.layers import SHAPE_CHANGES
from . import fmt_int, new_figure, print_table, safe, save_figure


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
        for col, just in (("block", "left"), ("stage", "right"), ("shape", "left"), ("error", "right"),
                          ("change", "right")):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for r in result.single:
            change = r.error - result.baseline_error
            table.add_row(r.block, str(r.stage), r.shape_change or "", _pct(r.error),
                          f"{100 * change:+.2f} pts", style="bold" if r.shape_change else "")
        print_table(console, table)
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
        print_table(console, table)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {safe(note)}")
    console.print("[dim]error = fraction of test images misclassified (top-1); change in percentage points[/dim]")


def lesion_csv(result: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    header = ["experiment", "k", "block", "index", "shape_change", "sample", "error"]
    rows: list[list[Any]] = [["baseline", 0, "", "", "", "", f"{result.baseline_error:.6f}"]]
    rows += [["single", 1, r.block, r.index, r.shape_change or "", "", f"{r.error:.6f}"] for r in result.single]
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


def _common_overrides(studies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The overrides every study shares (said once, in the title, instead of in every legend entry)."""
    if len(studies) < 2:
        return {}
    first = studies[0].get("overrides") or {}
    return {k: v for k, v in first.items() if all((s.get("overrides") or {}).get(k, object()) == v for s in studies)}


def study_label(study: dict[str, Any], common: dict[str, Any] | None = None) -> str:
    """What a study measured, for titles and legends: the arch with its overrides (``resnet20 (input_size=16)``),
    less the ``common`` ones."""
    from ..registry import label_with_overrides

    own = {k: v for k, v in (study.get("overrides") or {}).items() if k not in (common or {})}
    label = label_with_overrides(study.get("arch") or "network", own)
    return label.replace("$", r"\$")  # a user's name: a '$' would start matplotlib's mathtext


def _as_study(result: Any) -> dict[str, Any]:
    return result.to_dict() if hasattr(result, "to_dict") else result


def _shape_change(row: dict[str, Any]) -> str | None:
    """A single-deletion row's shape change; a study written before the field has only ``downsample``, which
    then meant any change of shape (named a downsampling block, as it was drawn)."""
    if "shape_change" in row:
        return row["shape_change"]
    return "downsampling" if row.get("downsample") else None


def _color(studies: Sequence[dict[str, Any]], i: int) -> str:
    from .style import PLAIN_COLOR, RESIDUAL_COLOR

    kinds = [s.get("residual", True) for s in studies]
    if len(studies) == 1 or (len(studies) == 2 and kinds[0] != kinds[1]):
        # one study, or the usual pair of a ResNet and its plain twin: the colours every figure uses
        return RESIDUAL_COLOR if kinds[i] else PLAIN_COLOR
    return f"C{i}"  # several of a kind (seeds, epochs, test subsets of one net): one colour each


def _labels(studies: Sequence[dict[str, Any]]) -> list[str]:
    """Each study's name in a legend: the arch and the overrides not common to all, and where two would read
    alike, where each came from (its folder) or its place in the command."""
    common = _common_overrides(studies)
    labels = [study_label(s, common) for s in studies]
    sources = [s.get("source") for s in studies]
    distinct = None not in sources and len(set(sources)) == len(sources)
    return [f"{label} [{sources[i] if distinct else i + 1}]" if labels.count(label) > 1 else label
            for i, label in enumerate(labels)]


def _figure_title(studies: Sequence[dict[str, Any]], what: str, width: float) -> str:
    from .style import title

    datasets = sorted({s.get("dataset") or "" for s in studies} - {""})
    common = _common_overrides(studies)
    names = " vs ".join(dict.fromkeys(study_label(s, common) for s in studies))  # one net studied twice: once
    if common:
        from ..registry import label_with_overrides

        names = label_with_overrides(names, common).replace("$", r"\$")
    return title(names, ", ".join(datasets) or None, what, width)


def lesion_plots(results: Any, out_dir: str | Path, suffix: str = "png") -> list[Path]:
    """The figures of Veit et al. 2016 Fig. 3 and 5: error per deleted block, error against k deleted blocks
    and k swapped pairs. ``results``: one study or several (a ``LesionResult`` or its saved ``lesion.json``
    dict), all drawn together: one figure per experiment that a study holds, each study a line in it (a ResNet and
    its plain twin side by side: the contrast the paper draws)."""
    studies = [_as_study(r) for r in (results if isinstance(results, (list, tuple)) else [results])]
    out_dir = Path(out_dir)
    written = []
    if any(s.get("single") for s in studies):
        written.append(_single_plot(studies, out_dir / f"single.{suffix}"))
    for name in ("multi", "reorder"):
        if any(s.get(name) for s in studies):
            written.append(_k_plot(studies, name, out_dir / f"{name}.{suffix}"))
    return written


def _block_names(studies: Sequence[dict[str, Any]]) -> dict[int, str]:
    """Block index -> name over every study (measured blocks and those that could not be removed)."""
    names: dict[int, str] = {}
    for s in studies:
        for r in [*s.get("single", []), *s.get("skipped", [])]:
            names.setdefault(int(r["index"]), r["block"])
    return dict(sorted(names.items()))


def _single_plot(studies: Sequence[dict[str, Any]], path: Path) -> Path:
    from .style import BASELINE_STYLE, COLUMN, HEIGHT, PAGE, chance_line, legend_below, new_figure, save_figure

    names = _block_names(studies)
    width = COLUMN if len(names) <= 24 else PAGE
    fig, ax = new_figure(figsize=(width, HEIGHT + 0.4))
    labels = _labels(studies)
    labelled: set[str] = set()  # each marker in the legend once, whichever study has it first
    for i, s in enumerate(studies):
        color = _color(studies, i)
        by_index = {int(r["index"]): r for r in s.get("single", [])}
        # a layer that cannot be removed is a gap in the line (NaN), never bridged, and marked on the axis
        ys = [100 * by_index[k]["error"] if k in by_index else float("nan") for k in names]
        name = labels[i]
        label = name if len(studies) > 1 else "one block deleted"
        ax.plot(list(names), ys, "o-", color=color, label=label)
        for change, marker in zip(SHAPE_CHANGES, "sD"):
            marked = [r for r in s.get("single", []) if _shape_change(r) == change]
            if marked:
                ax.plot([r["index"] for r in marked], [100 * r["error"] for r in marked], marker, color=color,
                        ms=5 if marker == "s" else 4.5, mfc="none", mew=1.2,
                        label=None if change in labelled else f"{change} block")
                labelled.add(change)
        for j, r in enumerate(s.get("skipped", [])):
            ax.axvspan(r["index"] - 0.4, r["index"] + 0.4, color=color, alpha=0.15, lw=0,
                       label=None if j else (f"{name}: " if len(studies) > 1 else "") + "cannot be removed")
        base = 100 * s["baseline_error"]
        ax.axhline(base, **{**BASELINE_STYLE, "color": color},
                   label=f"no deletion ({base:.1f}%)" if len(studies) == 1 else f"{name} intact ({base:.1f}%)")
    chance_line(ax, studies[0].get("num_classes"))
    ax.set_xticks(list(names), list(names.values()), rotation=90)
    ax.set_xlim(min(names) - 0.6, max(names) + 0.6)
    ax.set_ylim(0, 100)
    ax.set_xlabel("deleted block (forward order)")
    ax.set_ylabel("test error (%)")
    ax.set_title(_figure_title(studies, "one block deleted at a time", width))
    legend_below(fig, [ax])
    save_figure(fig, path)
    return path


_K_LABELS = {"multi": ("blocks deleted at random, k", "k blocks deleted"),
             "reorder": ("pairs of blocks swapped at random, k", "k pairs swapped")}


def _k_plot(studies: Sequence[dict[str, Any]], name: str, path: Path) -> Path:
    from .style import (
        BASELINE_STYLE,
        COLUMN,
        chance_line,
        integer_axis,
        legend_below,
        new_figure,
        percent_bars,
        save_figure,
    )

    xlabel, what = _K_LABELS[name]
    fig, ax = new_figure()
    ks_all: list[int] = []
    labels = _labels(studies)
    for i, s in enumerate(studies):
        rows = s.get(name) or []
        if not rows:
            continue
        color = _color(studies, i)
        # k = 0 is the intact network: the curve starts at the baseline, as the paper's does
        ks = [0] + [r["k"] for r in rows]
        means = [100 * s["baseline_error"]] + [100 * r["mean"] for r in rows]
        stds = [0.0] + [100 * r["std"] for r in rows]
        ks_all += ks
        label = (f"{labels[i]}: " if len(studies) > 1 else "") + "mean ± std"
        ax.errorbar(ks, means, yerr=percent_bars(means, stds), fmt="o-", color=color, capsize=2, label=label)
    if len(studies) == 1:
        base = 100 * studies[0]["baseline_error"]
        ax.axhline(base, **BASELINE_STYLE, label=f"intact network ({base:.1f}%)")
    chance_line(ax, studies[0].get("num_classes"))
    integer_axis(ax.xaxis, ks_all)
    ax.set_ylim(0, 100)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test error (%)")
    ax.set_title(_figure_title(studies, what, COLUMN))
    legend_below(fig, [ax], ncol=1 if len(studies) > 1 else 2)
    save_figure(fig, path)
    return path


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
    print_table(console, table)
    share = sum(r.share for r in result.rows[lo:hi + 1])
    console.print(f"{_pct(share)} of the gradient comes from paths {lo}-{hi} blocks long "
                  f"(the shortest range holding {_pct(result.mass)}), which are "
                  f"{_pct(result.effective_paths_fraction)} of all 2^{result.blocks} paths.  "
                  f"[dim]Veit et al. 2016: 5-17 for ResNet-110 on CIFAR-10.[/dim]")
    console.print("[dim]magnitude = L2 norm of d(loss of one image)/d(input), mean over images and sampled paths; "
                  "share = magnitude x number of paths of that length, normalised[/dim]")
    for note in result.notes:
        console.print(f"[dim]note: {safe(note)}[/dim]")


def gradients_csv(result: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    header = ["k", "paths", "measured", "magnitude", "magnitude_std", "share"]
    return header, [[r.k, r.paths, r.measured, f"{r.magnitude:.6e}", f"{r.magnitude_std:.6e}", f"{r.share:.6f}"]
                    for r in result.rows]


def gradients_plots(result: Any, out_dir: str | Path, suffix: str = "png") -> list[Path]:
    """Veit et al. 2016 Fig. 6: the gradient magnitude of one path of length k (log scale), and each length's
    share of the total gradient (the magnitude times C(n, k))."""
    from .style import HEIGHT, PAGE, integer_axis, legend_below, title

    out_dir = Path(out_dir)
    ks = [r.k for r in result.rows]
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(PAGE, HEIGHT))
    meas = [r for r in result.rows if r.measured]
    ax1.semilogy([r.k for r in meas], [max(r.magnitude, 1e-300) for r in meas], "o-", label="measured")
    ax1.set_xlabel("path length k (residual branches passed)")
    ax1.set_ylabel("gradient norm at the input, one path")
    ax1.set_title("one path of length k")
    ax2.bar(ks, [100 * r.share for r in result.rows], color="C0", width=0.8)
    lo, hi = result.effective_range
    held = sum(r.share for r in result.rows[lo:hi + 1])
    ax2.axvspan(lo - 0.5, hi + 0.5, color="tab:orange", alpha=0.2, lw=0, zorder=0,  # behind the bars
                label=f"lengths {lo}-{hi}: {_pct(held)}")
    ax2.set_xlabel("path length k (residual branches passed)")
    ax2.set_ylabel("share of the total gradient (%)")
    ax2.set_title("all paths of length k")
    for ax in (ax1, ax2):
        integer_axis(ax.xaxis, ks)
    what = study_label(result.to_dict())  # the arch and its overrides, as the lesion figures name it
    fig.suptitle(title(what, getattr(result, "dataset", None) or None, "gradient by path length", PAGE))
    legend_below(fig, [ax1, ax2])
    path = out_dir / f"gradients.{suffix}"
    save_figure(fig, path)
    return [path]
