"""``export ARCH|CHECKPOINT -o model.onnx``: the network as an ONNX file, for Netron and for runtimes."""

# Annotations are evaluated here, at import, not by typer at each start (cli/app.py says why).

from pathlib import Path
from typing import Annotated

import typer

from ..onnx_export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from ..render import OutputFormat, emit, stderr_console
from .app import (
    CkptArchOpt,
    FormatOpt,
    InputHWOpt,
    NormalizeOpt,
    NumClassesOpt,
    PlacementOpt,
    QuietOpt,
    SetOpt,
    ShortcutModeOpt,
    ShortcutOpt,
    app,
    column_network,
)


@app.command()
def export(
    ctx: typer.Context,
    network: Annotated[str, typer.Argument(
        help="An architecture (see 'archs'; untrained weights) or a checkpoint (its weights; any layout 'eval' "
             "reads).", metavar="ARCH|CHECKPOINT", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The ONNX file to write (NAME.onnx).",
                                         show_default=False)] = ...,
    # these change the network of an arch name; a checkpoint's weights fix its network (all but --input-size)
    num_classes: NumClassesOpt = None,
    shortcut: ShortcutOpt = None,
    placement: PlacementOpt = None,
    shortcut_mode: ShortcutModeOpt = None,
    sets: SetOpt = None,
    opset: Annotated[int, typer.Option("--opset", min=MIN_OPSET, max=MAX_OPSET, help="ONNX operator set version "
                                       "(older runtimes read only older ones).")] = DEFAULT_OPSET,
    input_size: InputHWOpt = None,
    arch: CkptArchOpt = None,
    normalize: NormalizeOpt = None,
    quiet: QuietOpt = False,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Write a network as an ONNX file: open it in Netron, or run it with onnxruntime, TensorRT, OpenVINO.

    Input 'images' (batch x channels x height x width; any batch), output 'logits' (batch x classes).

    The network is in eval mode: no dropout; with stochastic depth, every block runs.

    An architecture (see 'archs') is written with untrained weights, for its graph; a checkpoint with its own.

    Metadata, output and JSON name the normalisation a runtime must apply: eval's for the checkpoint, or --normalize.

    Needs the packages of the onnx extra (onnx, onnxscript).
    """
    from ..onnx_export import check_onnx_path, export_onnx, require_exporter

    check_onnx_path(output)
    require_exporter()
    if normalize is not None:  # a typo is one line now, before a checkpoint is read
        from ..data.normalization import parse_normalization

        parse_normalization(normalize)
    spec, checkpoint = column_network(ctx, network, arch=arch, input_size=input_size, num_classes=num_classes,
                                      shortcut=shortcut, placement=placement, shortcut_mode=shortcut_mode, sets=sets)
    if checkpoint is not None:
        model = checkpoint.build_model()
    else:
        from ..models import build_model

        model = build_model(spec)
    from ..registry import spec_label

    stderr_console(quiet).print(f"exporting {spec_label(spec)} with torch.onnx (opset {opset}; a few seconds)")
    report = export_onnx(model, spec, output, opset=opset, checkpoint=checkpoint, normalize=normalize)
    # the normalisation is a line of the loading report, as in eval; an arch name's only with --normalize
    loading = checkpoint.loading_report() if checkpoint is not None else (
        {"normalization": report.normalization} if report.normalization else None)
    emit(report, fmt, *_renderers(), loading=loading)


def _renderers():
    from ..render.export import export_csv, export_table

    return export_table, export_csv
