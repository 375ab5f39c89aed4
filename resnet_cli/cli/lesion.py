"""``lesion CKPT``: delete and reorder the blocks of a trained network (Veit et al. 2016) and measure its error."""

# Annotations are evaluated here, at import, not by typer at each start (cli/app.py says why).

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

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
    options_given,
)

FigureTypeOpt = Annotated[str, typer.Option("--figure-type", help="File type of the figures written to --out: png, "
                                            "pdf, svg, ... (several: comma-separated, e.g. png,pdf).")]


def figure_types(value: str) -> list[str]:
    """``png,pdf`` -> ['png', 'pdf'], refused before any work when matplotlib cannot write one of them."""
    from ..render import FIGURE_SUFFIXES

    types = [t.strip().lstrip(".").lower() for t in value.split(",") if t.strip()]
    bad = [t for t in types if t not in FIGURE_SUFFIXES]
    if bad or not types:
        raise ResnetCliError(f"--figure-type takes {', '.join(FIGURE_SUFFIXES)} (comma-separated), not {value!r}")
    return types


@app.command(epilog=DATA_DIR_EPILOG)
def lesion(
    ctx: typer.Context,
    checkpoint: CkptArg,
    arch: CkptArchOpt = None,
    dataset: CkptDatasetOpt = None,
    data_dir: DataDirOpt = None,
    normalize: NormalizeOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help=f"Use the first N test images, "
                                              f"{LIMIT_ORDER}.")] = None,
    experiments: Annotated[str, typer.Option("--experiments", help="Comma-separated: single, multi, "
                                             "reorder.")] = "single,multi,reorder",
    max_k: Annotated[int, typer.Option("--max-k", min=1, help="multi/reorder: up to K blocks deleted or K pairs "
                                       "swapped.")] = 10,
    samples: Annotated[int, typer.Option("--samples", min=1, max=MAX_SAMPLES,
                                         help="multi/reorder: random samples per k.")] = 10,
    seed: SeedOpt = 0,
    device: DeviceOpt = Device.auto,
    batch_size: BatchSizeOpt = 256,
    workers: WorkersOpt = 0,
    skip_bad_images: SkipBadOpt = False,
    engine: Annotated[str, typer.Option("--engine", help="cached (shared prefixes computed once), stacked (the "
                                        "same, with branches that run the same block batched together: for small "
                                        "nets on a GPU) or naive (a full forward pass per configuration: the "
                                        "reference).")] = "cached",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for every measurement (JSON, CSV), the "
                                             "results and the plots; kept when interrupted.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the study kept in --out.")] = False,
    figure_type: FigureTypeOpt = "png",
    fmt: FormatOpt = OutputFormat.table,
    quiet: QuietOpt = False,
) -> None:
    """Lesion study (Veit et al. 2016): delete each block, k random blocks, or swap k pairs; measure the error.

    A deleted block keeps its shortcut (the projection on a downsampling block).

    On a plain net an identity replaces a layer where the shapes allow.
    """
    from ..analysis.lesion import LesionConfig
    from ..render.lesion import lesion_csv, lesion_table

    chosen = _check_options(ctx, experiments, engine, resume, out)
    suffixes = figure_types(figure_type)
    config = LesionConfig(experiments=tuple(chosen), max_k=max_k, samples=samples, seed=seed,
                          batch_size=batch_size, engine=engine)
    with study_inputs(checkpoint, out, device=device, arch=arch, dataset=dataset, data_dir=data_dir, limit=limit,
                      normalize=normalize, workers=workers, skip_bad=skip_bad_images) as (inputs, world, torch_device):
        result = _run_study(inputs, world, torch_device, config, out, resume, quiet)
        if not world.main:
            return
        if out is not None:
            _write_study(result, out, suffixes, quiet)
        emit(result, fmt, lesion_table, lesion_csv, loading=inputs.checkpoint.loading_report())


def _run_study(inputs: Any, world: Any, torch_device: Any, config: Any, out: Path | None, resume: bool,
               quiet: bool) -> Any:
    """The lesion study of ``inputs``, its measurements kept in ``out`` as it runs (``resume``: continued from
    there), with a progress bar; its errors said in the options' terms."""
    from ..analysis.lesion import lesion_study
    from ..fileio import atomic_write_text
    from ..render import stderr_console, to_csv
    from ..render.lesion import measurements_csv
    from ..render.progress import progress

    if resume and world.main and not (out / "measurements.json").exists():  # a typo must not pass for a resume
        stderr_console(quiet).print(f"note: --resume: {out} holds no study yet (no measurements.json), so "
                                    f"this one starts from the beginning")

    def write_measurements(state: dict[str, Any]) -> None:
        atomic_write_text(out / "measurements.csv", to_csv(*measurements_csv(state)))  # type: ignore[operator]

    with progress(world.main and not quiet) as show, _errors_in_option_terms():
        return lesion_study(
            inputs.model, inputs.data, config=config, device=torch_device,
            state_path=out / "measurements.json" if out is not None else None, resume=resume, progress=show,
            on_chunk=write_measurements if out is not None and world.main else None, world=world,
        )


@contextmanager
def study_inputs(checkpoint: Path, out: Path | None, *, device: Device, split: str = "test", arch: str | None = None,
                 **data: Any) -> Iterator[tuple[Any, Any, Any]]:
    """What ``lesion`` and ``gradients`` run on: (the checkpoint's network and its data streamed, this process's
    place in the run, its device). The checkpoint is read first (its path checked before torch is imported: a
    typo costs no seconds); ``--out`` is locked for the run (a second run on it refuses; under torchrun rank 0
    alone writes, so it alone holds it); under torchrun each rank joins the run and reads only its share of the
    images."""
    from .. import distributed
    from ..analysis.inputs import load_study_inputs
    from ..checkpoint import load_checkpoint
    from ..devices import resolve_device
    from ..fileio import output_lock

    ckpt = load_checkpoint(checkpoint, arch=arch)
    with output_lock(out if distributed.from_environment().main else None, "--out", folder=True):
        torch_device = resolve_device(device.value)
        inputs = load_study_inputs(ckpt, split=split, pin_memory=torch_device.type == "cuda", **data)
        world, torch_device = distributed.start(torch_device)
        yield inputs, world, torch_device


def _write_study(result: Any, out: Path, suffixes: list[str], quiet: bool) -> None:
    """lesion.json and the figures into ``out`` (beside the measurements kept as the study ran), said in one line."""
    from ..fileio import atomic_write_text
    from ..render import stderr_console, to_json
    from ..render.lesion import lesion_plots

    atomic_write_text(out / "lesion.json", to_json(result.to_dict()) + "\n")
    plots = [p for suffix in suffixes for p in lesion_plots(result, out, suffix)]
    written = ["lesion.json", "measurements.json", "measurements.csv", *(p.name for p in plots)]
    stderr_console(quiet).print(f"wrote {', '.join(written[:-1])} and {written[-1]} to {out}")


# The options of the sampled experiments (multi, reorder): single deletes each block once and takes neither.
SAMPLING_OPTIONS = ("max_k", "samples")


def _check_options(ctx: typer.Context, experiments: str, engine: str, resume: bool, out: Path | None) -> list[str]:
    """The experiments asked for, after refusing option combinations that cannot mean what they say."""
    from ..analysis.lesion import ENGINES, EXPERIMENTS

    chosen = [e.strip().lower() for e in experiments.split(",") if e.strip()]
    bad = [e for e in chosen if e not in EXPERIMENTS]
    if bad or not chosen:
        raise ResnetCliError(f"--experiments takes a comma-separated list of {', '.join(EXPERIMENTS)} "
                             f"(got {experiments!r})")
    sampled = options_given(ctx, *SAMPLING_OPTIONS)
    if sampled and not {"multi", "reorder"} & set(chosen):
        raise ResnetCliError(f"{', '.join(sampled)}: only with multi or reorder in --experiments (single deletes "
                             f"each block once)")
    if engine not in ENGINES:
        raise ResnetCliError(f"--engine must be {', '.join(ENGINES[:-1])} or {ENGINES[-1]}, not {engine!r}")
    if resume and out is None:
        raise ResnetCliError("--resume continues the study kept in --out DIR: give --out")
    if out is not None:
        from ..fileio import check_writable

        check_writable(out, "--out", folder=True)
    return chosen


@contextmanager
def _errors_in_option_terms() -> Iterator[None]:
    """The study's errors speak of resuming and of its folder; here they are said with the options."""
    from ..analysis.lesion import LesionInterrupted
    from ..analysis.lesion_state import StudyExistsError, StudyMismatchError

    try:
        yield
    except LesionInterrupted as exc:
        raise LesionInterrupted(exc.kept, "run again with --resume to continue") from None
    except StudyExistsError as exc:
        raise StudyExistsError(f"{exc}: pass --resume to continue it, or choose another --out") from None
    except StudyMismatchError as exc:
        raise StudyMismatchError(f"{exc}: resume with the same checkpoint and options, or choose another "
                                 f"--out") from None


@app.command("plot-lesion")
def plot_lesion(
    studies: Annotated[list[Path], typer.Argument(help="Studies written by 'lesion --out' (their folders or "
                                                 "lesion.json files), drawn together: one line each.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the figures (single, multi, "
                                      "reorder).")]
    = Path("lesion-plots"),
    figure_type: FigureTypeOpt = "png",
    quiet: QuietOpt = False,
) -> None:
    """Draw saved lesion studies together: a ResNet and its plain twin in one figure (Veit et al. 2016 Fig. 3).

    One figure per experiment (single, multi, reorder) that any of the studies holds, each study a line in it.
    """
    import json

    from ..analysis.lesion_state import check_saved_study
    from ..fileio import check_writable
    from ..limits import MAX_JSON_BYTES, check_file_size
    from ..render import stderr_console
    from ..render.lesion import lesion_plots

    suffixes = figure_types(figure_type)
    loaded = []
    for path in studies:
        file = path / "lesion.json" if path.is_dir() else path
        try:
            check_file_size(file, MAX_JSON_BYTES, "a lesion study", ResnetCliError)
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ResnetCliError(f"{file}: no such file (give a folder written by 'lesion --out' or its "
                                 f"lesion.json)") from None
        except RecursionError:
            raise ResnetCliError(f"{file}: not a lesion study (it is nested too deeply)") from None
        except (OSError, ValueError) as exc:  # not JSON, not UTF-8, an integer of more than 4,300 digits
            raise ResnetCliError(f"{file}: not a lesion study ({exc})") from None
        study = check_saved_study(data, file)
        # where it came from, for a legend that must tell two studies of one net apart
        study["source"] = file.parent.name if file.name == "lesion.json" else file.stem
        loaded.append(study)
    check_writable(out, "--out", folder=True)
    plots = [p for suffix in suffixes for p in lesion_plots(loaded, out, suffix)]
    stderr_console(quiet).print(f"wrote {', '.join(p.name for p in plots)} to {out}")
