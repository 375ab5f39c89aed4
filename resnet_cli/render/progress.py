"""Drawing ``resnet_cli.progress`` events on stderr: a rich bar per stage on a terminal; where stderr is not a
terminal (a log file, a batch job), one status line per stage every ``STATUS_EVERY_S`` seconds; nothing when
quiet or when stdout is JSON."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..progress import ProgressEvent

#: Seconds between two status lines of one stage when stderr is not a terminal (short runs print none);
#: $RESNET_CLI_STATUS_EVERY sets another interval (a batch job's log may want one a minute, a test one at once).
STATUS_EVERY_S = 30.0


def _status_every() -> float:
    try:
        return max(0.0, float(os.environ["RESNET_CLI_STATUS_EVERY"]))
    except (KeyError, ValueError):
        return STATUS_EVERY_S


class ProgressDisplay:
    """A ``Progress`` receiver (call it with events) that also prints log lines (``display.log(line)``) where
    they do not tear the bars: above them on a terminal."""

    def __init__(self, bar: Any = None, console: Any = None, status_lines: bool = False) -> None:
        self.bar, self.tasks = bar, {}
        self.status_lines, self.last_line = status_lines, {}
        self._console = console

    def __call__(self, event: ProgressEvent) -> None:
        if self.bar is not None:
            self._draw(event)
        elif self.status_lines:
            self._status_line(event)

    def log(self, line: str) -> None:
        console = self.bar.console if self.bar is not None else self._console
        if console is not None:
            console.print(line)

    def _draw(self, event: ProgressEvent) -> None:
        status = "  ".join(s for s in (event.phase, event.status) if s)
        task = self.tasks.get(event.stage)
        if task is None:
            self.tasks[event.stage] = self.bar.add_task(event.stage, total=event.total, completed=event.done,
                                                        status=status)
        else:
            self.bar.update(task, total=event.total, completed=event.done, status=status)

    def _status_line(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        last = self.last_line.setdefault(event.stage, now)  # the first line comes one interval in
        if now - last < _status_every():
            return
        self.last_line[event.stage] = now
        print(status_line(event), file=sys.stderr, flush=True)


def status_line(event: ProgressEvent) -> str:
    """'lesion multi/k=2: 1,200/4,800 images (25%)  <status>'."""
    where = f"{event.stage} {event.phase}".strip()
    count = f"{event.done:,}" + (f"/{event.total:,}" if event.total else "") + f" {event.unit}"
    share = f" ({100 * event.fraction:.0f}%)" if event.fraction is not None else ""
    return f"{where}: {count}{share}" + (f"  {event.status}" if event.status else "")


@contextmanager
def progress(enabled: bool = True, console: Any = None) -> Iterator[ProgressDisplay]:
    """``with progress(not quiet and fmt == 'table') as show: run(..., progress=show, log=show.log)``.

    ``console`` prints the log lines where no bar is drawn (None: they are dropped).
    """
    if not enabled:
        yield ProgressDisplay(console=console)
        return
    if not sys.stderr.isatty():
        yield ProgressDisplay(console=console, status_lines=True)
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
        yield ProgressDisplay(bar)
