"""The one place that turns a failure reaching the CLI into one line on stderr and an exit code.

- 2: the user's to fix — a ``ResnetCliError`` (bad name, number or file), a file or folder that cannot be read
  or written (``OSError``: permissions, a full disk, a name too long), an image Pillow refuses (a decompression
  bomb), a run too large for the memory there is (``MemoryError``, torch's "can't allocate memory"), torch's
  ``RuntimeError``s from reading or writing a file (a full disk during ``torch.save``).
- 1: an internal error (a bug): one line, the exception's type and message, and a hint to report it; set
  ``RESNET_CLI_TRACEBACK=1`` to see the traceback instead.
- 130: Ctrl-C.
- A closed stdout (``resnet-cli paths --list ... | head -3``) ends quietly with exit 0 — the reader had what it
  wanted, as ``paths --list`` always treated it — without "Exception ignored" noise from the interpreter's flush.

Importing this never imports torch or Pillow: exceptions are recognised by their class and module names.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from typing import Any

from ..errors import ResnetCliError

TRACEBACK_ENV = "RESNET_CLI_TRACEBACK"
REPORT_HINT = (f"this is a bug in resnet-cli; please report it with the command you ran "
               f"({TRACEBACK_ENV}=1 shows the traceback)")
BROKEN_PIPE_EXIT = 0

# Words in a torch RuntimeError that mean a file could not be read or written (torch's C++ zip reader and
# writer raise RuntimeError, not OSError): the user's disk or file, not a bug.
_TORCH_IO_WORDS = ("pytorchstreamwriter", "pytorchstreamreader", "file write failed", "unexpected pos",
                   "no space left", "inline_container", "failed finding central directory")
_MEMORY_WORDS = ("can't allocate memory", "cannot allocate memory", "out of memory", "not enough memory")


class Failure(ResnetCliError):
    """A failure already put into words, with its exit code (an empty message prints nothing)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _is_broken_pipe(exc: BaseException) -> bool:
    return isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError) and exc.errno == errno.EPIPE)


def _os_error(exc: OSError) -> str:
    what = exc.strerror or _first_line(exc)
    where = exc.filename if exc.filename is not None else None
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device{f' writing {where}' if where else ''} (free some space and run again)"
    if exc.errno == errno.ENAMETOOLONG:
        from ..limits import MAX_NAME_BYTES, MAX_PATH_BYTES

        shown = str(where) if where else ""
        named = f" ({shown[:60]}{'...' if len(shown) > 60 else ''})" if shown else ""
        return (f"a file name is too long for the file system: a name is at most {MAX_NAME_BYTES} bytes and a path "
                f"{MAX_PATH_BYTES:,}{named}")
    return f"{where}: {what}" if where else what


def translate(exc: BaseException) -> BaseException:
    """The ``Failure`` (or ``ResnetCliError``) to report for ``exc``; exits and click's own exceptions pass as
    they are."""
    if isinstance(exc, (ResnetCliError, SystemExit)) or type(exc).__module__.startswith(("typer", "click")):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted", 130)
    if _is_broken_pipe(exc):
        quiet_stdout()
        return Failure("", BROKEN_PIPE_EXIT)
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or (
            isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in _MEMORY_WORDS)):
        return Failure("not enough memory for this run (lower --batch-size, --input-size or --limit)", 2)
    if type(exc).__module__.startswith("PIL"):  # DecompressionBombError, UnidentifiedImageError, ...
        return Failure(f"an image cannot be read: {_first_line(exc)}", 2)
    if isinstance(exc, OSError):
        return Failure(_os_error(exc), 2)
    if isinstance(exc, RuntimeError) and str(exc).lstrip().startswith("DataLoader worker"):
        from ..data.stream import worker_failure_message  # torch is loaded: one of its loaders raised this

        return Failure(worker_failure_message(exc), 2)
    if isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in _TORCH_IO_WORDS):
        return Failure(f"a file could not be read or written ({_first_line(exc)})", 2)
    if isinstance(exc, RecursionError):
        return Failure("an input is nested too deeply to read", 2)
    return Failure(f"internal error: {type(exc).__name__}: {_first_line(exc)} ({REPORT_HINT})", 1)


def quiet_stdout() -> None:
    """Point stdout at /dev/null: the reader went away, and Python's flush at exit must not complain."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):  # no real stdout (a test runner's capture)
        pass


def show_traceback() -> bool:
    return os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


def one_line(message: str) -> str:
    """``message`` on one line with terminal control bytes (ESC of OSC/CSI sequences, ...) shown, not sent."""
    from ..render import printable

    return printable(" ".join(str(message).split()))


def run_main(app: Callable[[], Any]) -> None:
    """Run the CLI, then flush stdout inside the handler: a full disk or a closed pipe under ``> file`` or
    ``| head`` is reported (or ends quietly) here, not by the interpreter's "Exception ignored" at exit."""
    code: Any = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    try:
        sys.stdout.flush()
    except Exception as exc:
        failure = translate(exc)
        if getattr(failure, "exit_code", 1) and str(failure):
            print(f"Error: {one_line(str(failure))}", file=sys.stderr)
        quiet_stdout()
        code = code or getattr(failure, "exit_code", 1)
    sys.exit(code)
