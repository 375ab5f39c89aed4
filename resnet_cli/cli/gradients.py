"""``gradients CKPT``: how much gradient paths of each length carry (Veit et al. 2016, §6, Fig. 6)."""

# Annotations are evaluated here, at import, not by typer at each start (cli/app.py says why).

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ResnetCliError
from ..limits import MAX_SAMPLES
from ..render import OutputFormat, emit
from .app import (
    DATA_DIR_EPILOG,
    LIMIT_ORDER,
    BatchSizeOpt,
    CkptArchOpt,
    CkptArg,
    CkptDatasetOpt,
    DataDirOpt,
    Device,
    DeviceOpt,
    FormatOpt,
    NormalizeOpt,
    QuietOpt,
    SeedOpt,
    SkipBadOpt,
    WorkersOpt,
    app,
)
from .lesion import FigureTypeOpt, figure_types, study_inputs


@app.command(epilog=DATA_DIR_EPILOG)
def gradients(
    checkpoint: CkptArg,
    arch: CkptArchOpt = None,
    dataset: CkptDatasetOpt = None,
    data_dir: DataDirOpt = None,
    normalize: NormalizeOpt = None,
    split: Annotated[str, typer.Option("--split", help="train (as Veit et al.) or test.")] = "train",
    limit: Annotated[int, typer.Option("--limit", min=1, help=f"Images to average over: the first N of the split, "
                                       f"{LIMIT_ORDER}.")] = 64,
    samples: Annotated[int, typer.Option("--samples", min=1, max=MAX_SAMPLES,
                                         help="Random paths per length and batch.")] = 4,
    step: Annotated[int, typer.Option("--step", min=1, help="Measure every STEP-th length (0, STEP, ..., n); "
                                      "the others are interpolated log-linearly.")] = 1,
    mass: Annotated[float, typer.Option("--mass", help="Report the shortest range of lengths holding this "
                                        "fraction of the gradient.")] = 0.9,
    seed: SeedOpt = 0,
    device: DeviceOpt = Device.auto,
    batch_size: BatchSizeOpt = 32,
    workers: WorkersOpt = 0,
    skip_bad_images: SkipBadOpt = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for gradients.json and "
                                             "its figure.")] = None,
    figure_type: FigureTypeOpt = "png",
    fmt: FormatOpt = OutputFormat.table,
    quiet: QuietOpt = False,
) -> None:
    """Gradient magnitude of one path of each length, and each length's share of the total gradient.

    For each length k: sample k blocks and backpropagate through their residual branches only.

    Every other block passes the gradient through its shortcut; the magnitude is the gradient norm at the input.
    """
    suffixes = figure_types(figure_type)
    _check_options(split, mass, out)
    with study_inputs(checkpoint, out, device=device, split=split, arch=arch, dataset=dataset, data_dir=data_dir,
                      limit=limit, normalize=normalize, workers=workers,
                      skip_bad=skip_bad_images) as (inputs, world, torch_device):
        result = _measure(inputs, world, torch_device, step=step, samples=samples, batch_size=batch_size, seed=seed,
                          mass=mass, quiet=quiet)
        if world.main:
            _report(result, inputs, out, suffixes, fmt, quiet)


def _check_options(split: str, mass: float, out: Path | None) -> None:
    if split not in ("train", "test"):
        raise ResnetCliError(f"--split must be train or test, not {split!r}")
    if not 0 < mass <= 1:
        raise ResnetCliError("--mass is a fraction in (0, 1]")
    if out is not None:
        from ..fileio import check_writable

        check_writable(out, "--out", folder=True)


def _measure(inputs, world, torch_device, *, step: int, quiet: bool, **options):
    """The gradient of paths of every STEP-th length (and n) through ``inputs``' network, with a progress bar."""
    from ..analysis.gradients import gradient_flow
    from ..render.progress import progress

    n = len(inputs.model.residual_blocks())
    lengths = sorted(set(range(0, n + 1, step)) | {n})
    with progress(world.main and not quiet) as show:
        return gradient_flow(inputs.model, inputs.data, lengths=lengths, device=torch_device, progress=show,
                             arch=inputs.checkpoint.arch, dataset=inputs.dataset, world=world, **options)


def _report(result, inputs, out: Path | None, suffixes: list[str], fmt: OutputFormat, quiet: bool) -> None:
    """gradients.json and its figures into ``out`` (said in one line), and the result printed."""
    from ..fileio import atomic_write_text
    from ..render import stderr_console, to_json
    from ..render.lesion import gradients_csv, gradients_plots, gradients_table

    if out is not None:
        atomic_write_text(out / "gradients.json", to_json(result.to_dict()) + "\n")
        plots = [p for suffix in suffixes for p in gradients_plots(result, out, suffix)]
        stderr_console(quiet).print(f"wrote {out / 'gradients.json'} and {', '.join(str(p) for p in plots)}")
    emit(result, fmt, gradients_table, gradients_csv, loading=inputs.checkpoint.loading_report())
