"""Progress bars on stderr: shown only on a terminal, never when quiet or when stdout is JSON."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _NoProgress:
    """Same interface as rich's Progress for the calls we make, doing nothing."""

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> int:
        return 0

    def update(self, task_id: int, **kwargs: Any) -> None:
        pass

    def advance(self, task_id: int, advance: float = 1) -> None:
        pass


@contextmanager
def progress(enabled: bool = True) -> Iterator[Any]:
    """``with progress(not quiet and fmt == 'table') as p: t = p.add_task('train', total=n); p.advance(t)``."""
    if not enabled or not sys.stderr.isatty():
        yield _NoProgress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                  console=Console(stderr=True), transient=False) as bar:
        real_add = bar.add_task

        def add_task(description: str, total: float | None = None, **fields: Any) -> int:
            fields.setdefault("status", "")
            return real_add(description, total=total, **fields)

        bar.add_task = add_task  # type: ignore[method-assign]
        yield bar
