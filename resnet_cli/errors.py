"""The exceptions the core raises.

Only the CLI turns them into exit codes: every ``ResnetCliError`` is a mistake the user can make (bad name, bad
number, bad file) and becomes one line on stderr and exit code 2, never a traceback. ``cli/failures.py`` decides
the words and the code of every failure (these pass as they are), and ``cli/app.py``'s ``ResnetCliGroup.main``
prints the line and exits.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ResnetCliError(Exception):
    """A user-facing error: the message is shown as is, on one line."""

    exit_code = 2


class CheckpointError(ResnetCliError):
    """A file that cannot be loaded as a checkpoint or state dict."""


class ArchNeededError(CheckpointError):
    """A bare state dict whose architecture its keys and shapes do not settle: ``why`` says what was found; the
    message adds how to name it (``--arch``), which a command without that option replaces with its own hint."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(f"{why}; pass --arch NAME to choose")


class SpecError(ResnetCliError, ValueError):
    """An architecture name or spec field that cannot describe a network."""


class UnknownArchError(SpecError, KeyError):
    """A name that is neither registered nor parsable."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0] if self.args else ""


def did_you_mean(word: str, choices: Iterable[str], n: int = 3, first: Iterable[str] = ()) -> str:
    """' (did you mean a, b?)' for the closest choices (after ``first``: names known to be meant), or '' when
    nothing is close; n names at most."""
    close = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    names = list(dict.fromkeys([*first, *close]))[:n]
    return f" (did you mean {', '.join(names)}?)" if names else ""
