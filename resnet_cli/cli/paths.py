"""``paths``: the 2ⁿ paths of a residual network and the exact distribution of their lengths (no torch)."""

# Annotations are evaluated here, at import, not by typer at each start (cli/app.py says why).

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ResnetCliError
from ..limits import MAX_BLOCKS
from ..render import OutputFormat, check_figure_path
from .app import (
    SPEC_OPTIONS,
    FormatOpt,
    LayersOpt,
    SetOpt,
    StochasticDepthOpt,
    app,
    options_given,
    spec_from_options,
    spec_options,
)


class Scale(str, Enum):
    linear = "linear"
    log = "log"


@app.command()
def paths(
    ctx: typer.Context,
    blocks: Annotated[int | None, typer.Option("--blocks", "-n", min=1, max=MAX_BLOCKS,
                                               help="Number of residual blocks n.")] = None,
    arch: Annotated[str | None, typer.Option("--arch", "-a", help="Count the residual blocks of an architecture "
                                             "(see 'archs'); a plain net has one path.")] = None,
    mass: Annotated[float, typer.Option("--mass", help="Share of all paths the central range must hold, in "
                                        "(0, 1].")] = 0.95,
    ranges: Annotated[list[str] | None, typer.Option("--range", "-r", help="A range of lengths FIRST:LAST "
                                                     "(inclusive, e.g. 19:35) to report the share of; "
                                                     "repeatable.")] = None,
    survival: Annotated[str | None, typer.Option("--survival", help="Stochastic depth schedule: linear:P_LAST "
                                                 "(Huang et al. 2016; linear:0.5 in the paper) or constant:P. "
                                                 "An arch built with stochastic depth uses its own.")] = None,
    # the spec options (SPEC_OPTIONS in cli/app.py): spec_options(ctx) hands them to the spec of --arch
    layers: LayersOpt = None,
    stochastic_depth: StochasticDepthOpt = None,
    sets: SetOpt = None,
    all_lengths: Annotated[bool, typer.Option("--all-lengths", help="List every length 0..n, however small its "
                                              "share (default: lengths holding at least 1e-30 of the paths; the "
                                              "rest are summed).")] = False,
    rows: Annotated[int, typer.Option("--rows", min=1, help="Table: at most this many rows; more lengths are "
                                      "grouped into equal bins (JSON and CSV are never grouped).")] = 60,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a bar chart of the shares (png, pdf, svg "
                                             "by suffix), shading the central range.")] = None,
    scale: Annotated[Scale, typer.Option("--scale", help="y axis of --plot.", case_sensitive=False)]
    = Scale.linear,
    list_paths: Annotated[bool, typer.Option("--list", help="Enumerate the paths themselves (blocks passed "
                                             "through), shortest first, streaming.")] = False,
    length: Annotated[int | None, typer.Option("--length", "-k", min=0, help="With --list: only paths of this "
                                               "length.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="With --list: stop after this many paths.")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="With --list: allow listing more than 100,000 "
                                        "paths.")] = False,
    indices: Annotated[bool, typer.Option("--indices", help="With --list: name blocks by index (0-based) "
                                          "instead of layer2.0-style names.")] = False,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """The 2ⁿ paths of n residual blocks (Veit et al. 2016): exact counts per length, central range, stochastic depth.

    Counts C(n, k) are exact integers; with stochastic depth, also the depth and the alive paths of a training step.
    """
    from ..analysis import paths as analysis

    _refuse_contradictions(ctx, blocks=blocks, arch=arch, list_paths=list_paths, plot=plot,
                           survival=survival, stochastic_depth=stochastic_depth,
                           listing_only=length is not None or limit is not None or force or indices)
    if plot is not None:
        check_figure_path(plot)
    spec, n, residual = _network(ctx, analysis, arch, blocks)
    if list_paths:
        _list(analysis, spec, n, residual, length, limit, force, indices, fmt)
        return
    _show(_distribution(analysis, spec, n, survival, mass=mass, ranges=ranges or (),
                        min_share=0.0 if all_lengths else analysis.DEFAULT_MIN_SHARE), fmt, rows, plot, scale)


def _network(ctx: typer.Context, analysis, arch: str | None, blocks: int | None):
    """(the spec of --arch with its spec options, or None for --blocks; its residual blocks n; whether it is
    residual: a plain net has one path)."""
    if arch is None:
        return None, analysis.check_blocks(blocks), True
    spec = spec_from_options(arch, **spec_options(ctx))
    return spec, analysis.check_blocks(spec.num_blocks), bool(spec.residual)


def _distribution(analysis, spec, n: int, survival: str | None, **options):
    """The distribution of the path lengths of --arch's network (its own stochastic depth, or --survival's), or of
    --blocks N."""
    if spec is not None:
        return analysis.path_lengths_for_spec(spec, survival_text=survival, **options)
    return analysis.path_lengths_for_blocks(n, survival_text=survival, **options)


# The options that describe the lengths' distribution, which --list does not print.
DISTRIBUTION_OPTIONS = ("mass", "ranges", "survival", "all_lengths", "rows", "plot", "scale")


def _refuse_contradictions(ctx: typer.Context, *, blocks: int | None, arch: str | None, list_paths: bool,
                           plot: Path | None, survival: str | None, stochastic_depth: float | None,
                           listing_only: bool) -> None:
    """Refuse option combinations where one option would be silently ignored."""
    if (blocks is None) == (arch is None):
        raise ResnetCliError("give either --blocks N or --arch NAME (exactly one)")
    if arch is None and options_given(ctx, *SPEC_OPTIONS):
        raise ResnetCliError("--layers, --stochastic-depth and --set modify an --arch; with --blocks use "
                             "--survival for stochastic depth")
    if not list_paths and listing_only:
        raise ResnetCliError("--length, --limit, --force and --indices go with --list")
    distribution_only = options_given(ctx, *DISTRIBUTION_OPTIONS)
    if list_paths and distribution_only:
        raise ResnetCliError(f"{', '.join(distribution_only)}: not with --list (they describe the lengths' "
                             f"distribution, which --list does not print)")
    if plot is None and options_given(ctx, "scale"):
        raise ResnetCliError("--scale sets the y axis of --plot: give --plot FILE too")
    if stochastic_depth is not None and survival is not None:
        raise ResnetCliError("give --stochastic-depth (the arch's own linear schedule) or --survival, not both")


def _show(report, fmt: OutputFormat, rows: int, plot: Path | None, scale: Scale) -> None:
    from ..render import emit
    from ..render.paths import big_ints, paths_csv, paths_plot, paths_table

    if plot is not None:
        try:
            paths_plot(report, plot, scale.value)
        except OSError as exc:
            raise ResnetCliError(f"cannot write the plot {plot}: {exc.strerror or exc}") from None
    with big_ints():
        emit(report, fmt, lambda r, console: paths_table(r, console, rows), paths_csv)
    if plot is not None and fmt is OutputFormat.table:
        typer.echo(f"plot written to {plot}", err=True)


def _list(analysis, spec, n: int, residual: bool, length: int | None, limit: int | None, force: bool,
          indices: bool, fmt: OutputFormat) -> None:
    import itertools
    import sys

    from ..render.paths import write_listing

    if length is not None and not 0 <= length <= n:
        raise ResnetCliError(f"a path of a {n}-block network has length 0..{n}, not {length}")
    wanted = analysis.check_enumeration(n, length, limit, residual, force)
    names = analysis.block_names(spec, n) if (spec is not None and not indices) else [str(i) for i in range(n)]
    # islice stops at sys.maxsize at most; a listing that long never ends anyway (2^64 paths with --force)
    stream = itertools.islice(analysis.iter_paths(n, length, residual), min(wanted, sys.maxsize))
    header = {"arch": spec.name if spec is not None else None, "blocks": n, "residual": residual,
              "length": length, "available": analysis.count_paths(n, length, residual), "listed": wanted,
              "order": "shortest first, then lexicographic by block index"}
    try:
        write_listing(stream, names, fmt.value, header=header)
    except BrokenPipeError:  # `resnet-cli paths --list ... | head` is normal use
        import os
        import sys

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
