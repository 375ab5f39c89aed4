"""Table, CSV, plot and path listings for ``resnet-cli paths``.

Integers with thousands of digits (C(20000, 10000) has 6,019) exceed CPython's default limit for int-to-str
conversion (4,300 digits); ``big_ints`` lifts it while one output is written, so JSON and CSV stay exact.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from . import fmt_int, print_table, safe

BAR_WIDTH = 40
_EIGHTHS = " ▏▎▍▌▋▊▉█"


@contextlib.contextmanager
def big_ints() -> Iterator[None]:
    """Allow int <-> str conversions of any length inside the block (exact counts of 10,000+ blocks)."""
    get = getattr(sys, "get_int_max_str_digits", None)
    if get is None:  # Python < 3.10.7 has no limit
        yield
        return
    old = get()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(old)


# --------------------------------------------------------------------------- number formats
def fmt_count(n: int, max_digits: int = 24) -> str:
    """Exact with thousands separators up to ``max_digits`` digits; beyond that 1.2346e+3008 (from log10)."""
    if n < 10 ** max_digits:
        return fmt_int(n)
    exponent = math.floor(math.log10(n))
    mantissa = 10 ** (math.log10(n) - exponent)
    if mantissa >= 9.99995:  # rounding would print 10.0000e+k
        mantissa, exponent = 1.0, exponent + 1
    return f"{mantissa:.4f}e+{exponent}"


def fmt_share(share: float, log10: float | None = None) -> str:
    """A share in percent, one unit down a whole column: 12.34%, then 3.00e-13% where two decimals would show 0,
    then 10^-310.2% where the float itself underflows (``log10`` of the share, from the exact counts)."""
    if share >= 1e-4:
        return f"{100 * share:.2f}%"
    if share > 0:
        return f"{100 * share:.2e}%"
    if log10 is not None and math.isfinite(log10):
        return f"10^{log10 + 2:.1f}%"
    return "0"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar ``fraction`` (0..1) of ``width`` cells, in eighths."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"


# --------------------------------------------------------------------------- table
def _groups(report: Any, max_rows: int) -> list[tuple[int, int]]:
    """Shown lengths as (first, last) groups: one length per row, or equal-width bins when more than
    ``max_rows`` lengths are shown (the counts of a bin are summed exactly)."""
    first, last = report.first_shown, report.last_shown
    width = max(1, math.ceil((last - first + 1) / max_rows))
    return [(a, min(a + width - 1, last)) for a in range(first, last + 1, width)]


def _title(report: Any) -> str:
    n = report.blocks
    name = f"{safe(report.arch)}: " if report.arch else ""
    if report.residual:
        return f"{name}{n} residual block{'s' if n != 1 else ''} → 2^{n} = {fmt_count(report.total, 40)} paths"
    return f"{name}{n} blocks without shortcuts → 1 path"


def _columns(report: Any, groups: list[tuple[int, int]]) -> dict[str, list[str]]:
    """The table's text columns (all but the histogram), by header: one cell per group of lengths."""
    counts = [sum(report.counts[a:b + 1]) for a, b in groups]
    grouped = any(a != b for a, b in groups)
    columns = {
        "lengths" if grouped else "length": [_span(a, b) for a, b in groups],
        "paths": [fmt_count(count) for count in counts],
        "share": [fmt_share(count / report.total, _log10_ratio(count, report.total)) for count in counts],
    }
    sd = report.stochastic
    if sd:
        columns["P(depth)"] = [fmt_share(math.fsum(sd.depth[a:b + 1])) for a, b in groups]
        columns["alive share"] = [fmt_share(math.fsum(sd.alive_share[a:b + 1])) for a, b in groups]
    return columns


def paths_table(report: Any, console: Any, max_rows: int = 60) -> None:
    from rich import box
    from rich.table import Table

    groups = _groups(report, max(1, max_rows))
    columns = _columns(report, groups)
    counts = [sum(report.counts[a:b + 1]) for a, b in groups]
    peak = max(counts) or 1
    central = report.central
    # The histogram takes the width the other columns leave: with collapsed padding a SIMPLE_HEAD row costs 2
    # cells between columns and 1 at each edge; never narrower than its header.
    widths = [max(len(head), *(len(c) for c in cells)) for head, cells in columns.items()]
    width = max(len("histogram"), min(BAR_WIDTH, console.width - sum(widths) - 2 * (len(widths) + 1)))

    table = Table(title=_title(report), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    heads = list(columns)
    for head in heads[:3]:
        table.add_column(head, justify="right", no_wrap=True)
    table.add_column("histogram", no_wrap=True, min_width=width, max_width=width)
    for head in heads[3:]:
        table.add_column(head, justify="right", no_wrap=True)
    for row, ((a, b), count) in enumerate(zip(groups, counts)):
        inside = central.first <= a and b <= central.last
        cells = [columns[h][row] for h in heads]
        table.add_row(*cells[:3], f"[{'cyan' if inside else 'dim'}]{bar(count / peak, width)}[/]", *cells[3:])
    print_table(console, table)
    grouped = any(a != b for a, b in groups)
    for line in summary_lines(report, grouped_by=groups[0][1] - groups[0][0] + 1 if grouped else 1):
        console.print(line)


def _log10_ratio(count: int, total: int) -> float | None:
    return math.log10(count) - math.log10(total) if count else None


def summary_lines(report: Any, grouped_by: int = 1) -> list[str]:
    n = report.blocks
    c = report.central
    lines = []
    if report.residual:
        modes = " and ".join(str(k) for k in report.modes)
        lines.append(f"mean length {report.mean:g} blocks (n/2), std {report.std:.4g} blocks (√n/2); "
                     f"most paths have length {modes}: C({n}, {report.modes[0]}) = "
                     f"{fmt_count(report.counts[report.modes[0]], 40)}")
    else:
        lines.append(f"{report.notes[0] if report.notes else 'one path'}: length {n}")
    lines.append(f"{report.mass:.4g} central range: {_lengths(c.first, c.last)} "
                 f"{fmt_count(c.paths, 40)} {_plural(c.paths, 'path')} = {_pct(c.share)} of all "
                 f"(the shortest range holding at least "
                 f"{report.mass:.4g}; cyan in the histogram)")
    for r in report.ranges:
        lines.append(f"range {_span(r.first, r.last)}: {fmt_count(r.paths, 40)} {_plural(r.paths, 'path')} = "
                     f"{_pct(r.share)}")
    for r in report.omitted:
        if r.paths == 0:
            lines.append(f"[dim]lengths {_span(r.first, r.last)}: no paths[/dim]")
            continue
        lines.append(f"[dim]not listed: lengths {_span(r.first, r.last)}, {fmt_count(r.paths)} paths "
                     f"({fmt_share(r.share, _log10_ratio(r.paths, r.total))}); --all-lengths lists them[/dim]")
    if grouped_by > 1:
        lines.append(f"[dim]rows group {grouped_by} lengths each (--rows N for more rows); JSON and CSV give "
                     f"each length its own row[/dim]")
    sd = report.stochastic
    if sd:
        d, a = sd.depth_range, sd.alive_range
        lines.append(f"stochastic depth {sd.schedule}: expected depth {sd.expected_depth:.4g} of {n} blocks "
                     f"(std {sd.depth_std:.3g}); {_pct(d.probability)} of training steps run "
                     f"{_span(d.first, d.last)} blocks")
        alive = (f"{sd.expected_alive_paths:.4g}" if math.isfinite(sd.expected_alive_paths)
                 else f"10^{sd.log10_expected_alive_paths:.1f}")
        lines.append(f"alive paths per step: {alive} expected (Π(1+p_l), of 2^{n}); mean alive length "
                     f"{sd.alive_mean_length:.4g} blocks; {_pct(a.probability)} of them are "
                     f"{_span(a.first, a.last)} blocks long")
    lines.append("[dim]length = residual branches a path passes through (Veit et al. 2016); paths of a "
                 "length = C(n, k), exact[/dim]")
    return lines


def _lengths(first: int, last: int) -> str:
    return f"length {first} holds" if first == last else f"lengths {first}–{last} hold"


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def _pct(x: float) -> str:
    if 0 < x < 5e-7:  # would print as 0.0000%: a fraction in scientific notation, as in the table's share column
        return f"{x:.2e}"
    return f"{100 * x:.4f}%" if x < 0.9999995 else f"{100 * x:.7g}%"


def _pct_legend(x: float) -> str:
    """A share in a figure's legend, to a tenth of a percent (the table keeps every digit); below that, as a
    fraction in scientific notation."""
    return f"{x:.1e}" if 0 < x < 5e-4 else f"{100 * x:.1f}%"


# --------------------------------------------------------------------------- csv
def paths_csv(report: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    header = ["length", "paths", "share", "log10_share"]
    sd = report.stochastic
    if sd:
        header += ["depth_probability", "alive_share", "expected_alive_paths"]

    def rows() -> Iterator[list[Any]]:
        for k in report.shown:
            count = report.counts[k]
            row: list[Any] = [k, count, repr(report.share(k)), repr(report.log10_share(k)) if count else ""]
            if sd:
                row += [repr(sd.depth[k]), repr(sd.alive_share[k]), repr(sd.expected_alive(k))]
            yield row

    return header, rows()


# --------------------------------------------------------------------------- plot
def paths_plot(report: Any, path: Any, scale: str = "linear") -> None:
    """The share of paths of each length (Veit et al. 2016 Fig. 2's distribution), its central range, the
    ranges asked for and, with stochastic depth, the depth and alive-path distributions of a training step."""
    from .style import PAGE, legend_below, new_figure, save_figure, title

    fig, ax = new_figure(figsize=(PAGE / 1.4, 2.8))
    ks = list(report.shown)
    pairs = [(k, report.share(k)) for k in ks]
    if scale == "log":  # a share of 0 has no place on a log axis
        pairs = [(k, share) for k, share in pairs if share > 0]
    c = report.central
    ax.axvspan(c.first - 0.5, c.last + 0.5, color="C0", alpha=0.12, lw=0,
               label=f"{report.mass:.4g} central range {_span(c.first, c.last)} ({_pct_legend(c.share)})")
    ax.bar([p[0] for p in pairs], [p[1] for p in pairs], width=1.0 if len(ks) > 80 else 0.8, color="C0",
           label="share of all paths")
    _plot_ranges(ax, report)
    _plot_stochastic(ax, report, ks, scale)
    ax.set_yscale(scale)
    if scale == "log" and pairs:
        # Stochastic-depth curves reach far smaller values than the paths' shares; keep the bars readable.
        ax.set_ylim(bottom=min(p[1] for p in pairs) / 10)
    ax.set_xlabel("path length (residual blocks passed through)")
    ax.set_ylabel("share of paths" + (" (log scale)" if scale == "log" else ""))
    name = report.arch or f"{report.blocks} blocks"
    ax.set_title(title(name, extra=f"2^{report.blocks} paths by length" if report.residual else "one path",
                       width=PAGE / 1.4))
    legend_below(fig, [ax])  # outside the axes: on a log scale the bars reach every corner
    save_figure(fig, path)


def _plot_ranges(ax: Any, report: Any) -> None:
    for r in report.ranges:
        ax.axvline(r.first - 0.5, color="tab:red", ls="--", lw=1)
        ax.axvline(r.last + 0.5, color="tab:red", ls="--", lw=1,
                   label=f"range {_span(r.first, r.last)} ({_pct_legend(r.share)})")


def _plot_stochastic(ax: Any, report: Any, ks: Sequence[int], scale: str) -> None:
    sd = report.stochastic
    if not sd:
        return
    # Both curves count blocks on the same axis: how many blocks a training step runs, and how long the paths
    # that exist in such a step are.
    for values, label, color in ((sd.depth, f"blocks a training step runs (stochastic depth {sd.schedule})",
                                  "tab:orange"),
                                 (sd.alive_share, "lengths of the paths alive in a step", "tab:green")):
        pts = [(k, values[k]) for k in ks if scale != "log" or values[k] > 0]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, lw=1.5, label=label)


# --------------------------------------------------------------------------- listings
def write_listing(paths: Iterable[tuple[int, ...]], names: Sequence[str], fmt: str, out: Any = None,
                  header: dict[str, Any] | None = None) -> int:
    """Stream paths to ``out`` (stdout): table = one path per line (length, then the blocks), csv = rows,
    json = one document whose ``paths`` array is written item by item. Returns how many were written."""
    out = out or sys.stdout
    written = 0
    if fmt == "json":
        import json  # here: the table does without it (≈ 2 ms of its start)

        head = json.dumps(header or {}, indent=2)
        out.write(head[:-1].rstrip() + (",\n" if header else "\n") + '  "paths": [')
        for path in paths:
            item = {"length": len(path), "blocks": list(path), "names": [names[i] for i in path]}
            out.write(("," if written else "") + "\n    " + json.dumps(item))
            written += 1
        out.write(("\n  " if written else "") + "]\n}\n")
    elif fmt == "csv":
        out.write("index,length,blocks,names\n")
        for path in paths:
            out.write(f"{written},{len(path)},{' '.join(map(str, path))},{' '.join(names[i] for i in path)}\n")
            written += 1
    else:
        for path in paths:
            out.write(f"{len(path):>5}  {' '.join(names[i] for i in path) or '(identity: no residual branch)'}\n")
            written += 1
    out.flush()
    return written
