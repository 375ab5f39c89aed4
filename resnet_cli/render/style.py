"""One style for every figure the tool draws (train, plot-record, lesion, gradients, paths, the examples).

Figures are sized in inches for a two-column paper: ``COLUMN`` wide (one column) or ``PAGE`` wide (both), with
8 pt text, so they stay readable when a paper prints them at their natural size. Axis labels carry their units;
titles name what was built (the arch with its overrides) and the data. The file type follows the suffix (PNG at
300 dpi, PDF, SVG).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLUMN = 3.4  # inches: one column of a two-column paper (CVPR, NeurIPS, ICML: 3.25-3.5 in)
PAGE = 7.0  # inches: both columns
HEIGHT = 2.5  # inches: the usual height of one panel

RC: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "pdf.fonttype": 42,  # TrueType in PDFs: text stays text (editable, searchable)
    "svg.fonttype": "none",
}

# One colour per kind of net, the same in every figure: residual nets blue, their plain twins orange.
RESIDUAL_COLOR = "C0"
PLAIN_COLOR = "C1"
BASELINE_STYLE = {"color": "0.45", "ls": "--", "lw": 0.8}
CHANCE_STYLE = {"color": "tab:red", "ls": ":", "lw": 0.9}


def new_figure(*args: Any, **kwargs: Any):
    """``plt.subplots`` on the non-interactive Agg backend (no display needed), in the tool's style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(RC)
    kwargs.setdefault("figsize", (COLUMN, HEIGHT))
    kwargs.setdefault("layout", "constrained")  # room for labels and for legends placed outside the axes
    return plt.subplots(*args, **kwargs)


def save_figure(fig: Any, path: str | Path, dpi: int | None = None) -> None:
    """Save a figure atomically; the format follows the file's suffix (png, pdf, svg, ...); raster formats at
    ``dpi`` (default RC's 300)."""
    from ..errors import ResnetCliError
    from ..fileio import atomic_open
    from . import _figure_path

    path = _figure_path(path, "figure")
    try:
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format=path.suffix.lstrip(".").lower(), bbox_inches="tight", dpi=dpi or RC["savefig.dpi"])
    except OSError as exc:
        raise ResnetCliError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def title(what: str, dataset: str | None = None, extra: str = "", width: float = COLUMN) -> str:
    """``resnet20 (input_size=16) on digits: one block deleted``: what was built, the data, the figure; folded
    to the figure's width (about 16 characters of 8 pt text per inch)."""
    import textwrap

    text = what + (f" on {dataset}" if dataset else "")
    text = f"{text}: {extra}" if extra else text
    return "\n".join(textwrap.wrap(text, width=int(16 * width)))


def integer_axis(axis: Any, values: Sequence[int] = ()) -> None:
    """Whole-number ticks only (k, epochs): never 1.25. With one or two values, tick exactly those."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))
    shown = sorted(set(values))
    if 0 < len(shown) < 3:
        axis.set_ticks(shown)


def percent_bars(means: Sequence[float], stds: Sequence[float]) -> list[list[float]]:
    """Asymmetric error bars (in %) for mean ± std of an error rate, clipped to 0..100 %: an error below 0 is
    meaningless, so the lower bar stops at 0 (``matplotlib``'s ``yerr`` form: [below, above])."""
    below = [min(s, m) for m, s in zip(means, stds)]
    above = [min(s, 100.0 - m) for m, s in zip(means, stds)]
    return [below, above]


def chance_line(ax: Any, num_classes: int | None) -> None:
    """The error of guessing uniformly among ``num_classes``: where a network that learnt nothing sits."""
    if num_classes and num_classes > 1:
        chance = 100.0 * (1 - 1 / num_classes)
        ax.axhline(chance, **CHANCE_STYLE, label=f"chance ({chance:.0f}%)")


def legend_below(fig: Any, axes: Sequence[Any], ncol: int = 2) -> None:
    """One legend for the figure, below the axes, where it cannot cover data (entries of several axes merged
    by label)."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncol=ncol)
