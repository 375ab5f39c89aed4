"""``draw``: the papers' pictures of a network (He et al. 2015 Fig. 3) or of one block (Fig. 5; He et al. 2016
Fig. 4), from the plan. Arch names need no torch; a checkpoint is read with it."""

# Annotations are evaluated here, at import, not by typer at each start (cli/app.py says why).

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..analysis.drawing import FOLD_ABOVE
from ..errors import ResnetCliError
from ..render import OutputFormat, check_figure_path, emit, stderr_console
from .app import (
    SPEC_OPTIONS,
    FormatOpt,
    InputHWOpt,
    NumClassesOpt,
    QuietOpt,
    SetOpt,
    ShortcutModeOpt,
    ShortcutOpt,
    app,
    column_network,
    options_given,
)


class BlockKind(str, Enum):
    basic = "basic"
    bottleneck = "bottleneck"


@app.command()
def draw(
    ctx: typer.Context,
    columns: Annotated[list[str] | None, typer.Argument(
        help="Architectures or checkpoints, one column each, left to right; one column's own overrides follow its "
             "name: NAME:FIELD=VALUE[:FIELD=VALUE...], e.g. resnet110:shortcut_mode=conv.",
        metavar="ARCH|CHECKPOINT...", show_default=False)] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Image file (png, pdf, svg, ... by the suffix).",
                                         show_default=False)] = ...,
    block: Annotated[list[BlockKind] | None, typer.Option(
        "--block", help="Draw one block instead of networks (He et al. 2015 Fig. 5); repeatable: --block basic "
                        "--block bottleneck side by side.", show_default=False)] = None,
    # named as the spec field, so that a checkpoint column refuses it with the other NETWORK_OPTIONS
    placement: Annotated[list[str] | None, typer.Option(
        "--placement", help="Where BN and ReLU sit (He et al. 2016 Fig. 4): original, bn_after_add, "
                            "relu_before_add, relu_preact, full_preact. With --block repeatable (one column each; "
                            "all five: Fig. 4); for networks, once.", show_default=False)] = None,
    shortcut_mode: ShortcutModeOpt = None,
    shortcut: ShortcutOpt = None,
    sets: SetOpt = None,
    input_size: InputHWOpt = None,
    num_classes: NumClassesOpt = None,
    channels: Annotated[int, typer.Option("--channels", min=4, max=16384, help="With --block: input = output "
                                          "channels.")] = 256,
    fold: Annotated[bool | None, typer.Option(
        "--fold/--unfold", help="Draw a run of identical blocks once with '× n' (--fold), or every block "
                                f"(--unfold). Default: fold a column of more than {FOLD_ABOVE} boxes.",
        show_default=False)] = None,
    dpi: Annotated[int, typer.Option("--dpi", min=50, max=1200, help="Resolution of a raster image (png, jpg).")]
    = 300,
    fmt: FormatOpt = OutputFormat.table,
    quiet: QuietOpt = False,
) -> None:
    """Draw networks as He et al. 2015 draw theirs in Fig. 3, or one block (--block) under each BN/ReLU placement.

    A box per layer with the paper's label, shortcuts (dotted where they project), output sizes; blocks with weights.

    The drawing's content (boxes, shortcuts, labels) is also in --format json.
    """
    check_figure_path(output, "--output")
    placements = _placements(placement)
    if block:
        drawing = _block_drawing(ctx, columns, [b.value for b in block], placements, channels)
    else:
        drawing = _network_drawing(ctx, columns, placements, fold, input_size=input_size, num_classes=num_classes,
                                   shortcut=shortcut, shortcut_mode=shortcut_mode, sets=sets)
    from ..render.draw import draw as draw_figure
    from ..render.draw import drawing_csv, drawing_table

    draw_figure(drawing, output, dpi=dpi)
    drawing.output = str(output)
    emit(drawing, fmt, drawing_table, drawing_csv)
    if OutputFormat(fmt) is not OutputFormat.table:
        stderr_console(quiet).print(f"figure written to {output}")


def _placements(typed: list[str] | None) -> list[str]:
    from ..spec import PLACEMENTS

    placements = [p.lower().replace("-", "_") for p in typed or []]
    for placement in placements:
        if placement not in PLACEMENTS:
            raise ResnetCliError(f"--placement must be one of {', '.join(PLACEMENTS)}, not {placement!r}")
    return list(dict.fromkeys(placements))


def _block_drawing(ctx: typer.Context, columns: list[str] | None, blocks: list[str], placements: list[str],
                   channels: int):
    """He et al. 2015 Fig. 5 (several --block) or He et al. 2016 Fig. 4 (several --placement)."""
    from ..analysis.drawing import block_drawing

    if columns:
        raise ResnetCliError("give either architectures or --block, not both (a block is drawn on its own)")
    network_only = [name.replace("--fold", "--fold/--unfold") for name in options_given(
        ctx, *(name for name in SPEC_OPTIONS if name != "placement"), "fold")]  # a block takes --placement
    if network_only:
        raise ResnetCliError(f"{', '.join(network_only)}: not with --block (a block takes --placement and "
                             f"--channels)")
    try:
        return block_drawing(list(dict.fromkeys(blocks)), placements or ["original"], channels)
    except ValueError as exc:  # a bottleneck of channels not divisible by 4
        raise ResnetCliError(f"--channels {channels}: {exc}") from None


def _network_drawing(ctx: typer.Context, columns: list[str] | None, placements: list[str], fold: bool | None,
                     **options):
    """He et al. 2015 Fig. 3: one column per arch or checkpoint."""
    from ..analysis.drawing import network_drawing
    from ..registry import column_label

    if not columns:
        raise ResnetCliError("name one or more architectures (see 'resnet-cli archs') or checkpoints, or a "
                             "block with --block")
    if options_given(ctx, "channels"):
        raise ResnetCliError("--channels: only with --block (a network's widths come from its spec)")
    if len(placements) > 1:
        raise ResnetCliError("--placement once for networks; one column's own: ARCH:placement=full_preact")
    placement = placements[0] if placements else None
    networks = [column_network(ctx, c, placement=placement, **options) for c in columns]
    drawing = network_drawing([spec for spec, _ in networks], fold)
    for column, name, network in zip(drawing.columns, columns, networks):
        column.title = column_label(name, *network)  # a checkpoint's by its file too
    return drawing
