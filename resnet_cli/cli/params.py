"""``archs``, ``params`` and ``compare``: sizes by arithmetic (no torch) or by fvcore over the built module."""

# Annotations are evaluated here, at import, not by typer at each start (cli/app.py says why).

from enum import Enum
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from ..analysis.memory import DTYPE_BYTES
from ..errors import ResnetCliError
from ..render import OutputFormat, emit
from .app import (
    NETWORK_OPTIONS,
    SPEC_OPTIONS,
    FormatOpt,
    InputHWOpt,
    LayersOpt,
    NumClassesOpt,
    PlacementOpt,
    QuietOpt,
    SetOpt,
    ShortcutModeOpt,
    ShortcutOpt,
    StochasticDepthOpt,
    WidthsOpt,
    app,
    column_network,
    options_given,
    spec_from_options,
    spec_options,
)


class Engine(str, Enum):
    analytic = "analytic"
    fvcore = "fvcore"


class BlockKind(str, Enum):
    basic = "basic"
    bottleneck = "bottleneck"


# --dtype of the memory estimates: the element types analysis/memory.py knows the bytes of
Dtype = Enum("Dtype", {name: name for name in DTYPE_BYTES}, type=str)


@app.command()
def archs(
    # what PATTERN matches is said in the docstring too: typer 0.25 under click 8.5 shows no argument's help
    pattern: Annotated[str | None, typer.Argument(help="Glob filter of names, e.g. 'resnet*' or "
                                                  "'*plain*', or a word, e.g. 'cifar', found in a name, family or "
                                                  "description.")] = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """List the registered architectures with family, depth, residual blocks, params and MACs.

    PATTERN: a glob of names ('resnet1*', '*plain*') or a word found in a name, family or description ('cifar').

    A parametric name (cifar_resnet<depth>, ...) matches by its template or with the pattern's numbers in it.
    """
    from ..analysis.catalog import catalog
    from ..render.params import archs_csv, archs_table

    report = catalog(pattern)
    if not report.rows and not report.parametric:
        raise ResnetCliError(f"no architecture matches {pattern!r}; try 'resnet-cli archs' for the full list")
    emit(report, fmt, archs_table, archs_csv)


@app.command()
def params(
    ctx: typer.Context,
    arch: Annotated[str | None, typer.Option("--arch", "-a", help="Architecture name (see 'archs').")] = None,
    from_ckpt: Annotated[Path | None, typer.Option("--from", help="Count the network in this checkpoint or state "
                                                   "dict (any layout 'eval' reads) instead of --arch.")] = None,
    # the spec options (SPEC_OPTIONS in cli/app.py): spec_options(ctx) hands them to the spec
    input_size: InputHWOpt = None,
    num_classes: NumClassesOpt = None,
    shortcut: ShortcutOpt = None,
    widths: WidthsOpt = None,
    layers: LayersOpt = None,
    placement: PlacementOpt = None,
    shortcut_mode: ShortcutModeOpt = None,
    stochastic_depth: StochasticDepthOpt = None,
    sets: SetOpt = None,
    depth: Annotated[int, typer.Option("--depth", min=1, max=3,
                                       help="Rows down to: 1 stages, 2 blocks, 3 layers.")] = 1,
    engine: Annotated[Engine, typer.Option("--engine", help="analytic: arithmetic from the spec (fast, no "
                                           "torch); fvcore: build the module and run fvcore over it too.")]
    = Engine.analytic,
    block: Annotated[BlockKind | None, typer.Option("--block", help="Count one block instead of a network "
                                                    "(basic vs bottleneck, He et al. 2015 Fig. 5).")] = None,
    channels: Annotated[int, typer.Option("--channels", min=1, help="With --block: input = output channels.")]
    = 256,
    feature_size: Annotated[int, typer.Option("--feature-size", min=1, help="With --block: feature map size "
                                              "for MACs.")] = 56,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per batch of "
                                            "the memory estimates (shown with --depth 2 or this option; always in "
                                            "JSON).")] = 1,
    # the choices in the help text: as a metavar they are cut in two at 80 columns
    dtype: Annotated[Dtype, typer.Option("--dtype", case_sensitive=False, metavar="TYPE", help="Element type of "
                                         f"the memory estimates: {', '.join(list(DTYPE_BYTES)[:-1])} or "
                                         f"{list(DTYPE_BYTES)[-1]}.")] = Dtype["float32"],
    fmt: FormatOpt = OutputFormat.table,
    quiet: QuietOpt = False,
) -> None:
    """Parameters and MACs (multiply-adds, the papers' FLOPs), in total and per stage, block or layer."""
    if block is not None:
        _params_of_block(ctx, block, arch, from_ckpt, channels, feature_size, fmt)
        return
    if from_ckpt is not None and arch is not None:
        raise ResnetCliError("give either --arch or --from, not both (a checkpoint names its own network)")
    if arch is None and from_ckpt is None:
        raise ResnetCliError("name an architecture with --arch (see 'resnet-cli archs'), a checkpoint with --from, "
                             "or a block with --block")
    block_only = options_given(ctx, *BLOCK_OPTIONS)
    if block_only:
        raise ResnetCliError(f"{', '.join(block_only)}: only with --block (a network's sizes come from --arch)")
    counts = partial(_count_network, ctx, depth=depth, engine=engine, batch_size=batch_size, dtype=dtype.value,
                     fmt=fmt, quiet=quiet)
    if from_ckpt is not None:
        _params_of_checkpoint(ctx, from_ckpt, input_size, counts)
    else:
        _params_of_arch(ctx, arch, counts)


# The options of each mode of ``params``, for refusing those that a mode would silently ignore: --block's own, and
# how a network's counts are made and shown (with SPEC_OPTIONS, what --block refuses).
BLOCK_OPTIONS = ("channels", "feature_size")
MEMORY_OPTIONS = ("batch_size", "dtype")
NETWORK_COUNT_OPTIONS = ("depth", "engine", *MEMORY_OPTIONS)


def _params_of_block(ctx: typer.Context, block: BlockKind, arch: str | None, from_ckpt: Path | None,
                     channels: int, feature_size: int, fmt: OutputFormat) -> None:
    """``params --block``: one block's weights and MACs (He et al. 2015 Fig. 5)."""
    from ..analysis.counts import count_block
    from ..render.params import block_csv, block_table

    if arch is not None or from_ckpt is not None:
        raise ResnetCliError("give either --arch/--from or --block, not both")
    network_only = options_given(ctx, *SPEC_OPTIONS, *NETWORK_COUNT_OPTIONS)
    if network_only:
        raise ResnetCliError(f"{', '.join(network_only)}: not with --block (a block takes only --channels and "
                             f"--feature-size)")
    try:
        report = count_block(block.value, channels, feature_size)
    except ValueError as exc:
        raise ResnetCliError(str(exc)) from None
    emit(report, fmt, block_table, block_csv)


def _params_of_arch(ctx: typer.Context, arch: str, counts) -> None:
    """``params --arch``: the named architecture with the command line's spec options."""
    counts(spec_from_options(arch, **spec_options(ctx)))


def _params_of_checkpoint(ctx: typer.Context, path: Path, input_size: str | None, counts) -> None:
    """``params --from``: the network in a checkpoint (torch is imported here, to read the file), with what loading
    it mapped. Only --input-size may change it: the weights fix everything else."""
    fixed = options_given(ctx, *NETWORK_OPTIONS)
    if fixed:
        raise ResnetCliError(f"{', '.join(fixed)}: not with --from (the checkpoint's weights fix the network; "
                             f"only --input-size can change)")
    from ..checkpoint import load_checkpoint
    from .app import input_size_fields

    fields = input_size_fields(input_size) if input_size is not None else None  # a bad size before the file is read
    ckpt = load_checkpoint(path)
    counts(ckpt.spec.replace(**fields) if fields is not None else ckpt.spec, loading=ckpt.loading_report())


def _count_network(ctx: typer.Context, spec, *, depth: int, engine: Engine, batch_size: int, dtype: str,
                   fmt: OutputFormat, quiet: bool, loading: dict | None = None) -> None:
    """A network's counts (by arithmetic, or by fvcore over the built module), printed; ``loading``: what reading
    its checkpoint mapped."""
    from ..render.params import params_csv, params_table

    if engine is Engine.fvcore:
        report = _count_with_fvcore(spec, depth=depth, batch_size=batch_size, dtype=dtype, quiet=quiet)
    else:
        from ..analysis.counts import count_params

        report = count_params(spec, detail=depth, batch_size=batch_size, dtype=dtype)
    # the memory table with the blocks (--depth 2 and more), or when its options are given
    with_memory = depth >= 2 or bool(options_given(ctx, *MEMORY_OPTIONS))
    emit(report, fmt, partial(params_table, memory=with_memory), params_csv, loading=loading)


def _count_with_fvcore(spec, *, depth: int, batch_size: int, dtype: str, quiet: bool):
    import sys

    from ..analysis.fvcore_engine import count_with_fvcore
    from ..render import stderr_console
    from ..render.progress import progress

    shown = not quiet  # status on stderr whatever stdout holds: a JSON document stays one document
    with progress(shown, stderr_console(quiet)) as show:
        if shown and not sys.stderr.isatty():  # a log sees what the next seconds are spent on
            show.log(f"fvcore: building {spec.name} and tracing it with fvcore (seconds; a minute for the "
                     f"largest nets)")
        return count_with_fvcore(spec, detail=depth, progress=show, batch_size=batch_size, dtype=dtype)


@app.command()
def compare(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Two or more architectures or checkpoints; ratios are to the "
                                               "first. One column's own overrides follow its name: "
                                               "NAME:FIELD=VALUE[:FIELD=VALUE...], e.g. resnet110:shortcut_mode=conv; "
                                               "a checkpoint's weights fix its network.",
                                               metavar="ARCH|CHECKPOINT...")],
    input_size: InputHWOpt = None,
    num_classes: NumClassesOpt = None,
    shortcut: ShortcutOpt = None,
    placement: PlacementOpt = None,
    shortcut_mode: ShortcutModeOpt = None,
    sets: SetOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Compare architectures or checkpoints side by side: depth, blocks, params, MACs and ratios to the first.

    The options apply to every arch column; a column's own FIELD=VALUE overrides (after its name) apply over them.

    A checkpoint column is the network its file holds (only --input-size changes it).
    """
    from ..analysis.counts import CompareReport, count_params
    from ..render.params import compare_csv, compare_table

    if len(names) < 2:
        raise ResnetCliError("compare takes two or more architectures or checkpoints (for one, see "
                             "'resnet-cli params --arch' or '--from')")
    from ..registry import column_label

    networks = [column_network(ctx, column, input_size=input_size, num_classes=num_classes, shortcut=shortcut,
                               placement=placement, shortcut_mode=shortcut_mode, sets=sets) for column in names]
    emit(CompareReport([count_params(spec) for spec, _ in networks],
                       [column_label(column, *network) for column, network in zip(names, networks)]),
         fmt, compare_table, compare_csv)

