"""One progress protocol for every long run (train, eval, lesion, gradients). Torch-free.

A long-running library function takes ``progress: Progress | None`` and calls it with a ``ProgressEvent`` after
each unit of work (a batch, a step, a sampled path). Every event says the whole stage's state, so a receiver
needs no memory of earlier events to draw it: a bar (render/progress.py on a terminal), a periodic status line
in a log, or a test counting calls. A receiver may raise ``KeyboardInterrupt`` (tests do, to interrupt a run
on cue); the functions that keep resumable state handle it as they handle Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """Where one stage of a run stands.

    ``done`` and ``total`` count ``unit``s of the whole stage (a lesion study: images over all its chunks; a
    training run: optimisation steps over all its epochs); ``total`` is None where it is not known. ``phase``
    names the part the stage is in now ("multi/k=2", "epoch 3/30"); ``advance`` is what this event added to
    ``done`` (0 for an event that only announces a phase); ``status`` is free text for the user ("loss 0.41").
    """

    stage: str  # "train", "eval", "lesion", "gradients"
    done: int
    total: int | None
    unit: str  # "images", "steps", "paths"
    phase: str = ""
    advance: int = 0
    status: str = ""

    @property
    def fraction(self) -> float | None:
        """done / total in [0, 1], or None without a total."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


#: What a long run calls with each event.
Progress = Callable[[ProgressEvent], None]


class Counter:
    """Builds a stage's events: ``tick = Counter(progress, "eval", total, "images"); tick(len(batch))``.

    Holds ``done`` so that the code doing the work says only what it advanced; does nothing without a receiver.
    """

    def __init__(self, progress: Progress | None, stage: str, total: int | None, unit: str,
                 done: int = 0) -> None:
        self.progress, self.stage, self.total, self.unit, self.done = progress, stage, total, unit, done

    def __call__(self, advance: int = 1, *, phase: str = "", status: str = "") -> None:
        self.done += advance
        if self.progress is not None:
            self.progress(ProgressEvent(self.stage, self.done, self.total, self.unit, phase, advance, status))
