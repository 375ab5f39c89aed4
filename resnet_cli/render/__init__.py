"""Rendering: the only package that knows rich and matplotlib.

Every command hands a result (a dataclass with ``to_dict()``) to ``emit`` with the user's ``--format``:
``json`` prints one JSON document on stdout and nothing else; ``csv`` prints rows; ``table`` calls the
command's table renderer with a rich console. Progress and messages go to stderr.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from .style import new_figure, save_figure

__all__ = ["OutputFormat", "emit", "new_figure", "print_table", "save_figure", "to_csv", "to_json"]


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


# Wide enough for any table this tool draws, so none is cut; nothing drawn stretches to the console's width.
NATURAL_WIDTH = 1000


def stdout_console():
    from rich.console import Console

    # emoji=False: ":name:" in a name or a path is text, not an emoji code (rich would otherwise also load its
    # table of 4,000 emoji names at the first cell, ≈ 3 ms of every table's start).
    console = Console(highlight=False, emoji=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        # A file or a pipe has no width: lay tables out at their natural width (rich would assume 80 columns
        # and cut headers, "histogr…"). An explicit COLUMNS still wins, as on a terminal.
        console.width = NATURAL_WIDTH
    console.on_broken_pipe = _broken_pipe  # rich would exit 1 itself; cli/failures.py ends every command alike
    return console


def print_table(console: Any, table: Any) -> None:
    """Print a rich ``table`` with its title kept whole: rich wraps a title at the width of its table, so a title
    longer than a narrow table broke mid-phrase even in a file ("augmentation" / "crop (pad 4)"). Such a title is
    printed first, as a line of its own that wraps only at the console's width; one that fits is left to rich."""
    import copy

    from rich.measure import Measurement

    title = table.title
    if isinstance(title, str):
        title = console.render_str(title, style=table.title_style or "table.title", highlight=False)
    if title is not None and title.cell_len > Measurement.get(console, console.options, table).maximum:
        # left-justified text pads to the width it is given: the title's own, never the 1,000 columns of a file
        console.print(title, width=min(title.cell_len, console.width), justify=table.title_justify)
        table = copy.copy(table)
        table.title = None
    console.print(table)


def _broken_pipe() -> None:
    import errno

    raise BrokenPipeError(errno.EPIPE, "the reader of stdout went away")


def stderr_console(quiet: bool = False):
    from rich.console import Console

    # soft_wrap: a message is one line however narrow the terminal (the terminal folds it; rich would break
    # it at 80 columns when stderr is a file or pipe, splitting "3.9 s" from its unit in logs).
    # markup=False: messages carry paths and names the user chose ('-o "mk/[/c].pt"' is a fine file name).
    return Console(stderr=True, highlight=False, quiet=quiet, soft_wrap=True, markup=False, emoji=False)


def printable(text: Any) -> str:
    """``text`` with terminal control bytes (the ESC of OSC/CSI sequences, BEL, ...) shown escaped, not sent."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ascii(ch)[1:-1] for ch in str(text))


def safe(text: Any) -> str:
    """User text (a name, a path, a note naming a path) for a rich string: markup escaped, control bytes shown.

    Every renderer passes what the user chose through this before rich parses its own ``[bold]`` markup."""
    from rich.markup import escape

    return escape(printable(text))


def emit(
    result: Any,
    fmt: OutputFormat | str,
    table: Callable[[Any, Any], None],
    csv_rows: Callable[[Any], tuple[Sequence[str], Iterable[Sequence[Any]]]] | None = None,
    loading: dict[str, Any] | None = None,
) -> None:
    """Write ``result`` to stdout in the chosen format, flushed: a full disk under ``> file`` is reported here.
    ``loading`` (``Checkpoint.loading_report()``: how the arch was found, the key mappings and normalisation of
    the checkpoint read) joins the JSON document and follows the table."""
    import errno

    from ..errors import ResnetCliError

    fmt = OutputFormat(fmt)
    try:
        if fmt is OutputFormat.json:
            data, not_finite = finite_json({**result.to_dict(), **(loading or {})})
            sys.stdout.write(to_json(data) + "\n")
            if not_finite:
                stderr_console().print(f"note: {not_finite} number{'s are' if not_finite > 1 else ' is'} NaN or "
                                       f"infinite (the loss or the weights diverged); JSON shows null")
        elif fmt is OutputFormat.csv:
            if csv_rows is None:
                raise ValueError("this command has no CSV form")
            header, rows = csv_rows(result)
            sys.stdout.write(to_csv(header, rows))
        else:
            console = stdout_console()
            table(result, console)
            if loading:
                loading_lines(loading, console)
        sys.stdout.flush()
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise  # a reader that went away: cli/failures.py ends quietly
        raise ResnetCliError(f"cannot write the results to standard output: {exc.strerror or exc}") from None


def loading_lines(loading: dict[str, Any], console: Any) -> None:
    """How the arch was found (a bare state dict), one line listing what the loader mapped (if anything), one
    naming the normalisation (if data was read)."""
    found = loading.get("inferred_arch")  # JSON keeps the fields (checkpoint.inference.ArchChoice); a person reads
    if found and found["by"] == "given":  # a sentence
        console.print(f"[dim]note: a bare state dict, read as {safe(loading['arch'])} (--arch)[/dim]")
    elif found:
        aside = "".join(f" ({', '.join(s['archs'])} {s['reason']})" for s in found["set_aside"])
        console.print(f"[dim]note: inferred {safe(found['name'])} from the state dict's keys and shapes"
                      f"{safe(aside)}[/dim]")
    mappings = loading.get("key_mappings") or []
    if mappings:  # the entries beside the weights are the file's own names: user text
        console.print("[dim]mapped: " + "; ".join(f"{safe(m['change'])} ({safe(m['layout'])})" for m in mappings)
                      + "[/dim]")
    norm = loading.get("normalization")
    if norm:
        values = f"mean {', '.join(f'{v:g}' for v in norm['mean'])}; std {', '.join(f'{v:g}' for v in norm['std'])}"
        console.print(f"[dim]normalised: {safe(norm['name'])} ({values}; {safe(norm['source'])})[/dim]")


def to_json(data: Any) -> str:
    """Strict JSON (RFC 8259): NaN and infinities are written null, which every parser reads."""
    import json  # here: a table needs neither json nor csv, and importing them is a few ms of every start

    return json.dumps(finite_json(data)[0], indent=2, allow_nan=False)


def finite_json(data: Any) -> tuple[Any, int]:
    """``data`` as plain JSON values, with each NaN or infinite float replaced by None; and how many were."""
    count = 0

    def plain(obj: Any) -> Any:
        nonlocal count
        if isinstance(obj, float) and not math.isfinite(obj):
            count += 1
            return None
        if isinstance(obj, dict):
            return {k: plain(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [plain(v) for v in obj]
        if obj is None or isinstance(obj, (str, int, float)):
            return obj
        return plain(_json_default(obj))

    return plain(data), count


def _json_default(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


# --------------------------------------------------------------------------- number formats
def fmt_int(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def fmt_si(n: float | None, unit: str = "") -> str:
    """12_345_678 -> '12.35M'."""
    if n is None:
        return "-"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"


def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


# File types matplotlib's Agg backend writes; the type follows the file's suffix.
FIGURE_SUFFIXES = ("png", "pdf", "svg", "svgz", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp")


def check_figure_path(path: str | Path, option: str = "--plot") -> Path:
    """Refuse, *before* any work is done, a figure path that cannot be written: a file type matplotlib does not
    know, or a place where no file can be created (user errors, exit 2)."""
    from ..fileio import check_writable

    return check_writable(_figure_path(path, option), option)


def _figure_path(path: str | Path, option: str) -> Path:
    from ..errors import ResnetCliError

    path = Path(path)
    if path.suffix.lstrip(".").lower() not in FIGURE_SUFFIXES:
        raise ResnetCliError(f"{option} {path}: the file type follows the suffix, one of "
                             f"{', '.join('.' + s for s in FIGURE_SUFFIXES)}")
    return path
