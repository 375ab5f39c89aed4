"""``train``, ``eval`` and ``plot-record``: produce and read the trained networks that lesion studies need."""

# Annotations are evaluated here, at import, not by typer at each start (cli/app.py says why).

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ResnetCliError
from ..fileio import check_writable, output_lock
from ..limits import MAX_EPOCHS
from ..render import OutputFormat, check_figure_path, emit, stderr_console
from .app import (
    DATA_DIR_EPILOG,
    LIMIT_ORDER,
    SPEC_OPTIONS,
    BatchSizeOpt,
    CkptArchOpt,
    CkptArg,
    CkptDatasetOpt,
    CkptInputSizeOpt,
    DataDirOpt,
    Device,
    DeviceOpt,
    FormatOpt,
    InputSizeOpt,
    LayersOpt,
    NormalizeOpt,
    PlacementOpt,
    QuietOpt,
    SeedOpt,
    SetOpt,
    ShortcutModeOpt,
    ShortcutOpt,
    SkipBadOpt,
    StochasticDepthOpt,
    WidthsOpt,
    WorkersOpt,
    app,
    in_panel,
    options_given,
    spec_from_options,
    spec_options,
)

DatasetOpt = Annotated[str | None, typer.Option("--dataset", "-d", help="synthetic (the default for "
                                                "train), digits, cifar10, cifar100 or imagefolder.")]
# train's recipe (RECIPE_OPTIONS below) under a heading of its own: one table of all of train's options is so
# crowded at 80 columns that its help and range columns cut words in two
RECIPE = "Training recipe (--resume keeps the checkpoint's own)"
DownloadOpt = Annotated[bool, typer.Option("--download", help="Fetch the official CIFAR archive if it is missing "
                                           "(checks its MD5).")]


@app.command(epilog=DATA_DIR_EPILOG)
def train(
    ctx: typer.Context,
    arch: Annotated[str | None, typer.Option("--arch", "-a", help="Architecture name (see 'archs').")] = None,
    dataset: DatasetOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Checkpoint written after every epoch "
                                                "(default: checkpoint.pt, or the --resume file).")] = None,
    best: Annotated[Path | None, typer.Option("--best", help="Checkpoint of the epoch with the lowest test error "
                                              "(default: OUTPUT with .best before the suffix).")] = None,
    no_best: Annotated[bool, typer.Option("--no-best", help="Do not write a best checkpoint.")] = False,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue a checkpoint written by 'train' "
                                                "(also after Ctrl-C); its arch, data and settings are kept.")]
    = None,
    epochs: Annotated[int | None, typer.Option("--epochs", "-e", min=1, max=MAX_EPOCHS, help="Epochs in total "
                                               "(default 30; with --resume, the saved total).")] = None,
    batch_size: in_panel(BatchSizeOpt, RECIPE) = 128,
    lr: Annotated[float, typer.Option("--lr", rich_help_panel=RECIPE, help="Initial learning rate (divided by 10 at "
                                      "50% and 75% of the epochs).")] = 0.1,
    momentum: Annotated[float, typer.Option("--momentum", rich_help_panel=RECIPE, help="SGD momentum.")] = 0.9,
    weight_decay: Annotated[float, typer.Option("--weight-decay", rich_help_panel=RECIPE,
                                                help="L2 weight decay.")] = 1e-4,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", rich_help_panel=RECIPE, help="Crop and flip "
                                          "where the data allows (no flips for digits).")] = True,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", rich_help_panel=RECIPE,
                                      help="Mixed precision (only on CUDA).")] = True,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help=f"Train on the first N images only, "
                                              f"{LIMIT_ORDER}.")] = None,
    test_limit: Annotated[int | None, typer.Option("--test-limit", min=1, help="Test on the first N test images "
                                                   "only, in the same order.")] = None,
    workers: WorkersOpt = 0,
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    # the spec options (SPEC_OPTIONS in cli/app.py): spec_options(ctx) hands them to the spec
    input_size: InputSizeOpt = None,
    shortcut: ShortcutOpt = None,
    widths: WidthsOpt = None,
    layers: LayersOpt = None,
    stochastic_depth: StochasticDepthOpt = None,
    placement: PlacementOpt = None,
    shortcut_mode: ShortcutModeOpt = None,
    sets: SetOpt = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also plot train and test error per epoch (png, "
                                              "pdf, svg).")] = None,
    seed: in_panel(SeedOpt, RECIPE) = 0,
    device: DeviceOpt = Device.auto,
    sync_bn: Annotated[bool, typer.Option("--sync-bn", rich_help_panel=RECIPE, help="Under torchrun: batch norm "
                                          "statistics over every process's batch (SyncBatchNorm).")] = False,
    quiet: QuietOpt = False,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Train a network with the ResNet paper's recipe; checkpoints every epoch, best checkpoint, --resume."""
    saved = spec = None
    if resume is not None:
        saved, config = _resume_config(ctx, resume, arch, dataset, epochs, workers)
        output = output or resume
        no_best = no_best or (best is None and saved.extra.get("writes_best") is False)  # a --no-best run stays so
    else:
        spec, config = _new_run(ctx, arch, epochs, workers)
        output = output or Path("checkpoint.pt")
    best = _check_outputs(output, best, no_best, plot)
    _train_and_report(spec, dataset or "synthetic", config, saved, output=output, best=best, plot=plot, quiet=quiet,
                      fmt=fmt, device=device.value, data_dir=data_dir, download=download, train_limit=limit,
                      test_limit=test_limit)


# The options of the training recipe, named as TrainConfig's fields and train's parameters: the one list that
# passes them to a new run (_new_run) and that refuses them with --resume (the checkpoint's own are kept), with
# the spec options. --epochs and --workers are not among them: --resume takes those.
RECIPE_OPTIONS = ("batch_size", "lr", "momentum", "weight_decay", "augment", "amp", "seed", "sync_bn")


def _new_run(ctx: typer.Context, arch: str | None, epochs: int | None, workers: int) -> tuple[Any, Any]:
    """The spec (the architecture with the command line's spec options) and the configuration of a new run."""
    if arch is None:
        raise ResnetCliError("name an architecture with --arch (e.g. --arch resnet20), or --resume a checkpoint")
    spec = spec_from_options(arch, **spec_options(ctx))
    from ..training import TrainConfig  # torch: only once the options are known to be good

    recipe = {name: ctx.params[name] for name in RECIPE_OPTIONS}
    return spec, TrainConfig(epochs=epochs or 30, workers=workers, **recipe)


def _resume_config(ctx: typer.Context, resume: Path, arch: str | None, dataset: str | None, epochs: int | None,
                   workers: int) -> tuple[Any, Any]:
    """The checkpoint to continue (loaded once) and the configuration to continue it with: its own, with only
    the total of epochs and the data workers from the command line."""
    from ..checkpoint import check_checkpoint_path, load_checkpoint

    if arch is not None or dataset is not None:
        raise ResnetCliError("--resume continues the checkpoint's own arch and dataset; drop --arch/--dataset")
    kept = options_given(ctx, *RECIPE_OPTIONS, *SPEC_OPTIONS)
    if kept:
        raise ResnetCliError(f"{', '.join(kept)}: not with --resume (the checkpoint's own settings are kept; "
                             f"only --epochs can change)")
    check_checkpoint_path(resume)  # before torch is imported: a mistyped path costs no seconds
    from ..training import TrainConfig, saved_epochs

    saved = load_checkpoint(resume)
    total = saved_epochs(saved)  # checks the whole saved state first, also when --epochs is given
    return saved, TrainConfig(epochs=epochs or total, workers=workers)


def _train_and_report(spec: Any, dataset: str, config: Any, saved: Any, *, output: Path, best: Path | None,
                      plot: Path | None, quiet: bool, fmt: OutputFormat, **data: Any) -> None:
    """Train (``saved``: the checkpoint to continue), holding the checkpoints' files for the run, then plot and
    print the record. ``data``: the device and the data options of ``train`` (training.train's keywords)."""
    from .. import distributed
    from ..registry import spec_label
    from ..render.progress import progress
    from ..render.training import plot_records, record_csv, train_table

    main = distributed.from_environment().main  # under torchrun rank 0 alone shows, prints and writes
    console = stderr_console(quiet or not main)
    from ..training import train as run_training

    # a second run writing the same checkpoint refuses (the best one too); under torchrun rank 0 holds them
    with output_lock(output if main else None, "--output"), output_lock(best if main else None, "--best"), \
            progress(main and not quiet, None if quiet or not main else console) as show:
        result = run_training(spec, dataset, config, checkpoint=output, best_checkpoint=best, resume=saved,
                              progress=show, log=show.log, distributed=True, **data)
    if not main:
        return
    if plot is not None:
        plot_records([(spec_label(result.spec), result.record)], plot,
                     title=f"{spec_label(result.spec)} on {result.dataset.name}: training record")
        console.print(f"plot written to {plot}")
    emit(result, fmt, train_table, record_csv)


def _check_outputs(output: Path, best: Path | None, no_best: bool, plot: Path | None) -> Path | None:
    """Where the best epoch's checkpoint goes (--best, or OUTPUT with .best before the suffix; None with
    --no-best), after checking that every output can be written: before the first epoch, not after the last."""
    if no_best and best is not None:
        raise ResnetCliError("give --best FILE or --no-best, not both")
    if not no_best:
        best = best or output.with_name(f"{output.stem}.best{output.suffix or '.pt'}")
    check_writable(output, "--output")
    if best is not None:
        check_writable(best, "--best")
    if plot is not None:
        check_figure_path(plot)
    return best


@app.command("eval", epilog=DATA_DIR_EPILOG)
def eval_command(
    checkpoint: CkptArg,
    arch: CkptArchOpt = None,
    dataset: CkptDatasetOpt = None,
    split: Annotated[str, typer.Option("--split", help="test or train.")] = "test",
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help=f"Evaluate the first N images only, "
                                              f"{LIMIT_ORDER}.")] = None,
    input_size: CkptInputSizeOpt = None,
    normalize: NormalizeOpt = None,
    batch_size: BatchSizeOpt = 256,
    workers: WorkersOpt = 0,
    skip_bad_images: SkipBadOpt = False,
    device: DeviceOpt = Device.auto,
    quiet: QuietOpt = False,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Test error and accuracy of a checkpoint on its dataset (or --dataset)."""
    from .. import distributed
    from ..analysis.evaluation import evaluate_checkpoint
    from ..render.progress import progress
    from ..render.training import eval_csv, eval_table

    if split not in ("test", "train"):
        raise ResnetCliError(f"--split must be test or train, not {split!r}")
    main = distributed.from_environment().main  # under torchrun rank 0 alone shows and prints
    with progress(main and not quiet) as show:
        report = evaluate_checkpoint(checkpoint, arch=arch, dataset=dataset, split=split, data_dir=data_dir,
                                     download=download, limit=limit, input_size=input_size, batch_size=batch_size,
                                     workers=workers, device=device.value, progress=show, normalize=normalize,
                                     distributed=True, skip_bad=skip_bad_images)
    if main:
        emit(report, fmt, eval_table, eval_csv)


@app.command("plot-record")
def plot_record(
    checkpoints: Annotated[list[Path], typer.Argument(help="Checkpoints from 'train' (several: one line each).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Image file (png, pdf, svg).")] = Path("record.png"),
    title: Annotated[str | None, typer.Option("--title", help="Figure title.")] = None,
    log: Annotated[bool, typer.Option("--log", help="Error on a log scale (where errors span decades).")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Plot train (dashed) and test (solid) error per epoch from checkpoints' training records."""
    from ..checkpoint import load_checkpoint
    from ..registry import spec_label
    from ..render.training import plot_records

    check_figure_path(output, "--output")
    series, datasets = [], []
    for path in checkpoints:
        ckpt = load_checkpoint(path)
        if not ckpt.record:
            raise ResnetCliError(f"{path} has no training record (it was not written by 'train')")
        name = spec_label(ckpt.spec)
        series.append((f"{name} ({path.name})" if len(checkpoints) > 1 else name, ckpt.record))
        datasets.append(ckpt.dataset.name)
    data = ", ".join(dict.fromkeys(datasets))
    default_title = (f"training record on {data}" if len(checkpoints) > 1
                     else f"{series[0][0]} on {data}: training record")
    plot_records(series, output, title=title or default_title, log=log)
    stderr_console(quiet).print(f"plot written to {output}")
