"""``lesion CKPT``: delete and reorder the blocks of a trained network (Veit et al. 2016) and measure its error."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ResnetCliError
from ..render import OutputFormat, emit
from .app import (
    BatchSizeOpt,
    CkptArchOpt,
    CkptArg,
    CkptDatasetOpt,
    DataDirOpt,
    Device,
    DeviceOpt,
    FormatOpt,
    QuietOpt,
    SeedOpt,
    app,
    options_given,
)


def load_study_inputs(ckpt_path: Path, arch: str | None, dataset: str | None, data_dir: Path | None,
                      limit: int | None, split: str = "test") -> tuple[Any, Any, Any, Any, str]:
    """(checkpoint, model on the CPU in eval mode, images N x C x H x W, labels N, dataset name)."""
    import torch

    from ..checkpoint import load_checkpoint

    ckpt = load_checkpoint(ckpt_path, arch=arch)
    model = ckpt.build_model()
    data, info = ckpt.load_data(split, dataset=dataset, data_dir=data_dir, limit=limit)
    if hasattr(data, "get_batch"):
        images, labels = data.get_batch(torch.arange(len(data)))
    else:
        pairs = [data[i] for i in range(len(data))]
        images = torch.stack([p[0] for p in pairs])
        labels = torch.tensor([int(p[1]) for p in pairs], dtype=torch.long)
    return ckpt, model, images.float().contiguous(), labels.long(), info.name


@app.command()
def lesion(
    ctx: typer.Context,
    checkpoint: CkptArg,
    arch: CkptArchOpt = None,
    dataset: CkptDatasetOpt = None,
    data_dir: DataDirOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Use the first N test images.")] = None,
    experiments: Annotated[str, typer.Option("--experiments", "-e", help="Comma-separated: single, multi, "
                                             "reorder.")] = "single,multi,reorder",
    max_k: Annotated[int, typer.Option("--max-k", min=1, help="multi/reorder: up to K blocks deleted or K pairs "
                                       "swapped.")] = 10,
    samples: Annotated[int, typer.Option("--samples", min=1, help="multi/reorder: random samples per k.")] = 10,
    seed: SeedOpt = 0,
    device: DeviceOpt = Device.auto,
    batch_size: BatchSizeOpt = 256,
    engine: Annotated[str, typer.Option("--engine", help="cached (shared prefixes computed once) or naive (a full "
                                        "forward pass per configuration: the reference).")] = "cached",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for every measurement (JSON, CSV), the "
                                             "results and the plots; kept when interrupted.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the study kept in --out.")] = False,
    fmt: FormatOpt = OutputFormat.table,
    quiet: QuietOpt = False,
) -> None:
    """Lesion study (Veit et al. 2016): delete each block, k random blocks, or swap k pairs; measure the error.

    A deleted block keeps its shortcut (the projection on a downsampling block).

    On a plain net an identity replaces a layer where the shapes allow.
    """
    from ..analysis.lesion import EXPERIMENTS, lesion_study, measurements_csv
    from ..devices import resolve_device
    from ..fileio import atomic_write_text
    from ..render import stderr_console, to_csv, to_json
    from ..render.lesion import lesion_csv, lesion_plots, lesion_table
    from ..render.progress import progress

    chosen = [e.strip().lower() for e in experiments.split(",") if e.strip()]
    bad = [e for e in chosen if e not in EXPERIMENTS]
    if bad or not chosen:
        raise ResnetCliError(f"--experiments takes a comma-separated list of {', '.join(EXPERIMENTS)} "
                             f"(got {experiments!r})")
    sampled = options_given(ctx, "max_k", "samples")
    if sampled and not {"multi", "reorder"} & set(chosen):
        raise ResnetCliError(f"{', '.join(sampled)}: only with multi or reorder in --experiments (single deletes "
                             f"each block once)")
    if engine not in ("cached", "naive"):
        raise ResnetCliError(f"--engine must be cached or naive, not {engine!r}")
    if resume and out is None:
        raise ResnetCliError("--resume continues the study kept in --out DIR: give --out")
    if out is not None:
        from ..fileio import check_writable

        check_writable(out, "--out", folder=True)
    torch_device = resolve_device(device.value)
    ckpt, model, images, labels, data_name = load_study_inputs(checkpoint, arch, dataset, data_dir, limit)
    err = stderr_console(quiet or fmt is not OutputFormat.table)
    state_path = out / "measurements.json" if out is not None else None

    def write_measurements(state: dict[str, Any]) -> None:
        header, rows = measurements_csv(state)
        atomic_write_text(out / "measurements.csv", to_csv(header, rows))  # type: ignore[operator]

    with progress(not quiet and fmt is OutputFormat.table) as bar:
        task = bar.add_task("lesion", total=None)

        def on_progress(n: int, label: str) -> None:
            bar.update(task, advance=n, status=label)

        result = lesion_study(
            model, images, labels, experiments=chosen, max_k=max_k, samples=samples, seed=seed,
            batch_size=batch_size, device=torch_device, engine=engine, state_path=state_path, resume=resume,
            on_start=lambda total: bar.update(task, total=total), on_progress=on_progress,
            on_chunk=write_measurements if out is not None else None,
            arch=ckpt.arch, dataset=data_name, residual=ckpt.spec.residual,
        )
    if out is not None:
        atomic_write_text(out / "lesion.json", to_json(result.to_dict()) + "\n")
        plots = lesion_plots(result, out)
        err.print(f"wrote {out / 'lesion.json'}, {out / 'measurements.csv'} and "
                  f"{', '.join(p.name for p in plots)} to {out}")
    emit(result, fmt, lesion_table, lesion_csv)
