"""Lay out a ``Drawing`` (analysis/drawing.py) with matplotlib: columns of boxes top to bottom, as He et al. 2015
draw their Figures 3 and 5 and He et al. 2016 their Figure 4. Everything drawn comes from the drawing's data;
this module decides only where it goes.

Units are inches (the axes span the figure one to one), so text keeps its size whatever the column's length:
a box is ``BOX_W`` × ``BOX_H`` with 6.5 pt text, a paper's small print.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from ..analysis.drawing import Box, Column, Drawing

BOX_W, BOX_H, GAP = 1.32, 0.17, 0.085  # inches: a box, and the arrow between two boxes
ROW = BOX_H + GAP
SIZE_W = 0.36  # left of a column: the output sizes (network) or the weights (block)
ARC_W = 0.26  # right of a column: the shortcuts
FOLD_W = 0.42  # right of the shortcuts: "× n" brackets (where a column of the figure has some)
LABEL_W = 0.3  # right of the shortcuts: their labels (where a shortcut of the figure has one)
HEADER = 0.55  # title, subtitle and the params/MACs line above each column (a title of one line)
TITLE_WRAP, TITLE_LINE = 30, 0.13  # characters of a title's line; inches a further line takes
FOOTER = 0.42  # the legend

# Pastel fills, one per run of boxes of one output size (the paper colours its stages), then one per box kind.
STAGE_FILLS = ("#dbe8f6", "#e3f1dc", "#fbe7d3", "#efe0f3", "#fdf3c8", "#dcefef", "#f6dcdc")
KIND_FILLS = {"input": "white", "pool": "#ececec", "fc": "#e0e0ea", "se": "#f8dbe8", "bn": "#fdf3c8",
              "relu": "#e3f1dc", "add": "white", "conv": "#dbe8f6"}
LINESTYLES = {"solid": "-", "dotted": (0, (1, 1.2)), "dashed": (0, (3, 1.5))}
# A DenseNet's concatenation is solid like an identity, but it adds no maps: drawn in blue to tell them apart.
EDGE_COLORS = {"concat": "#2a6fb0"}
LEGEND_TEXT = {
    "identity": "identity shortcut",
    "projection": "projection shortcut (1×1 conv)",
    "zero_pad": "zero-padding shortcut (option A)",
    "concat": "concatenation (dense layer)",
}
TEXT = 6.5  # pt
# How large a figure may grow: ResNet-1202 unfolded is 1,205 rows (307 in; 127 million pixels at 300 dpi, about
# 500 MB while Agg draws it). Past these the figure is refused before it is drawn, with what to do instead.
MAX_ROWS = 1500
MAX_PIXELS = 2**27
RASTER = ("png", "jpg", "jpeg", "tif", "tiff", "webp")


def column_rows(columns: list[Column]) -> list[list[int]]:
    """The row of each box of each column. Network columns are aligned stage by stage, as the paper aligns its
    three nets: the boxes of one output size start on one row in every column (a column with fewer such boxes
    leaves a longer arrow). Where sizes do not fall steadily in every column, each column is just stacked."""
    keys = [[_group(box) for box in column.boxes] for column in columns]
    order = sorted({k for ks in keys for k in ks}, key=lambda k: (-k[0], -k[1]))
    steady = all(ks == sorted(ks, key=order.index) for ks in keys)
    # one column's sizes hold every other's (VGG-19's 224 ... 7 hold ResNet-34's 112 ... 7; not CIFAR's 32 ... 8)
    nested = any(all(set(ks) <= set(widest) for ks in keys) for widest in keys)
    if not (steady and nested) or any(column.kind != "network" for column in columns):
        return [list(range(len(column.boxes))) for column in columns]
    start, row = {}, 0
    for key in order:
        start[key] = row
        row += max(ks.count(key) for ks in keys)
    rows = []
    for ks in keys:
        seen: dict[tuple, int] = {}
        column_rows_ = []
        for k in ks:
            column_rows_.append(start[k] + seen.get(k, 0))
            seen[k] = seen.get(k, 0) + 1
        rows.append(column_rows_)
    return rows


def _group(box: Box) -> tuple[int, int]:
    """Which stage a box is aligned with: its block's output size; the input above all, the head (pool to 1×1
    and fc) below all."""
    if box.kind == "input":
        return (10**9, 10**9)
    if box.block_size in ((0, 0), (1, 1)):
        return (-1, -1)
    return box.block_size


def draw(drawing: Drawing, path: str | Path, *, dpi: int | None = None) -> None:
    """Write ``drawing`` to ``path`` (png, pdf, svg, ... by the suffix; a raster at ``dpi``, default 300)."""
    from matplotlib.lines import Line2D

    from .style import new_figure, save_figure

    columns = drawing.columns
    rows = column_rows(columns)
    n_rows = max((max(r) + 1 for r in rows if r), default=1)
    header = HEADER + TITLE_LINE * max(len(_title_lines(column)) - 1 for column in columns)
    # room right of the shortcuts for their labels ("1−g") and for "× n" brackets, where the figure has them
    arc_w = ARC_W + (LABEL_W if any(edge.label for column in columns for edge in column.edges) else 0)
    col_w = SIZE_W + BOX_W + arc_w + (FOLD_W if any(column.folds for column in columns) else 0.12)
    width, height = col_w * len(columns), header + n_rows * ROW + FOOTER
    _check_size(n_rows, width, height, Path(path), dpi or 300)
    fig, ax = new_figure(figsize=(width, height), layout=None)
    ax.set_position((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(-height, 0)
    ax.axis("off")
    kinds: dict[str, None] = {}
    for i, (column, column_rows_) in enumerate(zip(columns, rows)):
        centre = i * col_w + SIZE_W + BOX_W / 2
        ys = [-(header + r * ROW + BOX_H / 2) for r in column_rows_]
        _header(ax, column, centre)
        _boxes(ax, column, centre, ys)
        for edge in column.edges:
            kinds.setdefault(edge.kind)
        _edges(ax, column, centre, ys)
        _folds(ax, column, centre + arc_w - ARC_W, ys)
        _left_notes(ax, column, centre, ys)
    handles = [Line2D([], [], color=EDGE_COLORS.get(k, "0.15"), lw=0.9, ls=LINESTYLES[_style(k)],
                      label=LEGEND_TEXT[k]) for k in kinds]
    notes = []
    if any(column.folds for column in columns):
        notes.append("× n: n identical blocks, drawn once")
    if any(column.kind == "network" for column in columns):
        notes.append("left of a column: output size (px); \"/2\": stride 2")
    else:
        notes.append("left of a conv: its weights")
    for text in notes:
        handles.append(Line2D([], [], color="none", label=text))
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3 if width > 5 else 2),
                   fontsize=TEXT, handlelength=2.4, columnspacing=1.2, borderaxespad=0.2)
    save_figure(fig, path, dpi)


def _check_size(rows: int, width: float, height: float, path: Path, dpi: int) -> None:
    from ..errors import ResnetCliError

    if rows > MAX_ROWS:
        raise ResnetCliError(f"the figure would be {rows:,} boxes tall (at most {MAX_ROWS:,} are drawn): fold the "
                             f"repeated blocks (--fold, the default beyond 60 boxes) instead of --unfold")
    pixels = round(width * dpi) * round(height * dpi)
    if path.suffix.lstrip(".").lower() in RASTER and pixels > MAX_PIXELS:
        raise ResnetCliError(f"the figure would be {round(width * dpi):,} x {round(height * dpi):,} px at --dpi "
                             f"{dpi} (past {MAX_PIXELS:,} pixels): lower --dpi, or write .pdf or .svg")


def _style(kind: str) -> str:
    from ..analysis.drawing import EDGE_STYLES

    return EDGE_STYLES[kind]


def _title_lines(column: Column) -> list[str]:
    return textwrap.wrap(column.title, TITLE_WRAP) or [" "]


def _header(ax: Any, column: Column, centre: float) -> None:
    title = _title_lines(column)
    lines = len(title) - 1
    ax.text(centre, -0.06, "\n".join(title), ha="center", va="top", fontsize=8, fontweight="bold")
    sub = column.subtitle
    if column.kind == "network":
        from . import fmt_si

        sub += f"\n{fmt_si(column.params)} params · {fmt_si(column.macs)} MACs"
    else:
        sub += f"\n{column.params:,} conv weights"
    ax.text(centre, -0.2 - TITLE_LINE * lines, sub, ha="center", va="top", fontsize=TEXT, color="0.3",
            linespacing=1.25)


def _fill(column: Column, index: int, box: Box) -> str:
    if column.kind == "network" and box.kind in ("conv",):
        span = next((k for k, s in enumerate(column.sizes) if s.first <= index <= s.last), 0)
        return STAGE_FILLS[span % len(STAGE_FILLS)]
    return KIND_FILLS.get(box.kind, "white")


def _boxes(ax: Any, column: Column, centre: float, ys: list[float]) -> None:
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    for index, (box, y) in enumerate(zip(column.boxes, ys)):
        round_ = box.kind in ("input", "add")
        style = "round,pad=0,rounding_size=0.06" if round_ else "square,pad=0"
        ax.add_patch(FancyBboxPatch((centre - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H, boxstyle=style,
                                    fc=_fill(column, index, box), ec="0.25", lw=0.6))
        ax.text(centre, y, box.label, ha="center", va="center", fontsize=TEXT)
        if index:  # the arrow from the box above
            ax.add_patch(FancyArrowPatch((centre, ys[index - 1] - BOX_H / 2), (centre, y + BOX_H / 2),
                                         arrowstyle="-|>", mutation_scale=5, lw=0.6, color="0.25",
                                         shrinkA=0, shrinkB=0))


def _edges(ax: Any, column: Column, centre: float, ys: list[float]) -> None:
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path as MPath

    right = centre + BOX_W / 2
    for edge in column.edges:
        # leaves just above the block's first box, joins just below its last (or the addition box itself), so an
        # arc hugs its block however long the arrow into the block is
        y0 = ys[edge.source + 1] + BOX_H / 2 + GAP / 2
        y1 = ys[edge.target] if column.kind == "block" else ys[edge.target] - BOX_H / 2 - GAP / 2
        bulge = right + ARC_W * 0.85
        path = MPath([(right, y0), (bulge, y0), (bulge, y1), (right, y1)],
                     [MPath.MOVETO, MPath.CURVE4, MPath.CURVE4, MPath.CURVE4])
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=5, lw=0.8,
                                     color=EDGE_COLORS.get(edge.kind, "0.15"),
                                     linestyle=LINESTYLES[edge.style], shrinkA=0, shrinkB=0))
        if edge.label:
            ax.text(right + ARC_W * 0.7, (y0 + y1) / 2, edge.label, ha="left", va="center", fontsize=5.5,
                    color="0.2")


def _folds(ax: Any, column: Column, centre: float, ys: list[float]) -> None:
    x = centre + BOX_W / 2 + ARC_W + 0.06
    for fold in column.folds:
        top, bottom = ys[fold.first] + BOX_H / 2, ys[fold.last] - BOX_H / 2
        ax.plot([x - 0.04, x, x, x - 0.04], [top, top, bottom, bottom], color="0.2", lw=0.7)
        ax.text(x + 0.04, (top + bottom) / 2, f"×{fold.times}", ha="left", va="center", fontsize=7,
                fontweight="bold")


def _left_notes(ax: Any, column: Column, centre: float, ys: list[float]) -> None:
    x = centre - BOX_W / 2 - 0.05
    if column.kind == "block":
        for box, y in zip(column.boxes, ys):
            if box.kind == "conv":
                ax.text(x, y, f"{box.weights:,}", ha="right", va="center", fontsize=5.5, color="0.3")
        return
    for span in column.sizes:
        top, bottom = ys[span.first] + BOX_H / 2, ys[span.last] - BOX_H / 2
        ax.plot([x, x], [top - 0.015, bottom + 0.015], color="0.55", lw=0.6)  # apart from the next span's
        ax.text(x - 0.04, (top + bottom) / 2, span.label, ha="right", va="center", fontsize=6, color="0.3")


def drawing_rows(drawing: Drawing) -> list[list[Any]]:
    """One row per column: what it is, its boxes (the image not counted; a folded run's once), conv boxes,
    shortcuts, of them projections and zero-paddings, and its folded runs."""
    rows = []
    for column in drawing.columns:
        kinds = [edge.kind for edge in column.edges]
        rows.append([column.title, column.subtitle, len(column.boxes) - 1, column.count("conv"), len(kinds),
                     kinds.count("projection"), kinds.count("zero_pad"), " ".join(f"x{f.times}" for f in column.folds)])
    return rows


DRAWING_HEADER = ["column", "drawn as", "boxes", "conv", "shortcuts", "projections", "zero_pad", "folded"]


def drawing_table(drawing: Drawing, console: Any) -> None:
    from rich import box as rich_box
    from rich.table import Table

    from . import print_table, safe

    table = Table(title=f"drawn to {safe(drawing.output)}", title_justify="left", box=rich_box.SIMPLE_HEAD)
    for name in ("column", "boxes", "conv", "shortcuts", "projection", "zero-pad", "folded"):
        # the name may wrap (a block's placement on a narrow terminal): the counts are never cut
        table.add_column(name, justify="left" if name in ("column", "folded") else "right", no_wrap=name != "column")
    for column, (title, subtitle, *counts, folded) in zip(drawing.columns, drawing_rows(drawing)):
        # a block's title ("bottleneck, 256-d") is the same under every placement: its row names the placement too,
        # as the figure's subtitle does
        name = f"{title}, {subtitle}" if column.kind == "block" else title
        table.add_row(safe(name), *map(str, counts), folded or "-")
    print_table(console, table)
    console.print("[dim]boxes: the layers drawn (a folded run's once); shortcuts: projections are dotted, "
                  "zero-paddings dashed, identities solid[/dim]")


def drawing_csv(drawing: Drawing) -> tuple[list[str], list[list[Any]]]:
    return DRAWING_HEADER, drawing_rows(drawing)
