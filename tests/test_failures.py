"""``failures.translate``: every kind of exception that can reach the CLI -> the exit code and the one line shown.

In-process and torch-free (exceptions are built here, as torch, Pillow and the OS raise them), so the table runs in
well under a second; tests/test_hostile_*.py and test_full_disk.py show the same failures arising for real in the CLI.
"""

from __future__ import annotations

import errno

import pytest

from resnet_cli.checkpoint import CheckpointError
from resnet_cli.cli import failures
from resnet_cli.cli.app import Interrupted
from resnet_cli.errors import ResnetCliError, SpecError, UnknownArchError
from resnet_cli.limits import LimitError

TORCH_IO = ("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file write "
            "failed")
TORCH_READ = "PytorchStreamReader failed reading zip archive: failed finding central directory"
TORCH_POS = "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
CPU_OOM = ("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate "
           "17179869184 bytes.")


def _pil(name: str):
    """Pillow's exception class ``name`` as Pillow defines it (by module), without importing Pillow."""
    base = OSError if name == "UnidentifiedImageError" else Exception
    return type(name, (base,), {"__module__": "PIL.Image"})


OutOfMemoryError = type("OutOfMemoryError", (RuntimeError,), {"__module__": "torch.cuda"})  # torch.cuda's

# exception -> exit code, words the line must hold
CASES = [
    (OSError(errno.ENOSPC, "No space left on device"), 2, "no space left on the device (free some space"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/run.pt"), 2, "no space left on the device writing "
                                                                          "/data/run.pt"),
    (PermissionError(errno.EACCES, "Permission denied", "/root/net.pt"), 2, "/root/net.pt: Permission denied"),
    (OSError(errno.ENAMETOOLONG, "File name too long", "a" * 300), 2, "a name is at most 255 bytes and a path 4,095"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "x.pt"), 2, "x.pt: No such file or directory"),
    (OSError(errno.EIO, "Input/output error"), 2, "Input/output error"),
    (MemoryError(), 2, "not enough memory for this run"),
    (RuntimeError(CPU_OOM), 2, "not enough memory for this run"),
    (OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), 2, "not enough memory"),
    (RuntimeError(TORCH_IO), 2, "a file could not be read or written ([enforce fail"),
    (RuntimeError(TORCH_READ), 2, "a file could not be read or written (PytorchStreamReader"),
    (RuntimeError(TORCH_POS), 2, "a file could not be read or written"),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)"), 1,
     "internal error: RuntimeError: mat1 and mat2 shapes"),
    (RuntimeError("stack expects a non-empty TensorList"), 1, "this is a bug in resnet-cli"),
    (ValueError("too many values to unpack (expected 2)"), 1, "internal error: ValueError"),
    (KeyError("state_dict"), 1, "internal error: KeyError: 'state_dict'"),
    (_pil("DecompressionBombError")("Image size (196000000 pixels) exceeds limit of 178956970 pixels"), 2,
     "an image cannot be read: Image size (196000000 pixels)"),
    (_pil("UnidentifiedImageError")("cannot identify image file 'cat.png'"), 2, "an image cannot be read: cannot "
                                                                                "identify image file 'cat.png'"),
    (RecursionError("maximum recursion depth exceeded"), 2, "nested too deeply"),
    (KeyboardInterrupt(), 130, "interrupted"),
]


@pytest.mark.parametrize("exc, code, words", CASES, ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)])
def test_each_failure_gets_its_exit_code_and_one_line(exc, code, words):
    reported = failures.translate(exc)
    assert isinstance(reported, failures.Failure)
    assert reported.exit_code == code
    line = failures.one_line(str(reported))
    assert words in line
    assert line == str(reported)  # already one line of printable text: nothing for one_line to change
    assert (code == 1) == ("report it" in line)  # only a bug asks to be reported


def test_a_message_from_outside_is_shown_on_one_line_with_its_control_bytes_escaped():
    """An exception's text comes from a file or from torch: a second line (a C++ backtrace) is dropped, and an
    escape sequence in a file name is shown, never sent to the terminal."""
    reported = failures.translate(RuntimeError("bad shape\nException raised from conv2d at Convolution.cpp:42"))
    assert str(reported) == "internal error: RuntimeError: bad shape (" + failures.REPORT_HINT + ")"
    reported = failures.translate(PermissionError(errno.EACCES, "Permission denied", "net\x1b]0;owned\x07.pt"))
    line = failures.one_line(str(reported))
    assert line == "net\\x1b]0;owned\\x07.pt: Permission denied"
    assert all(ch.isprintable() for ch in line)
    reported = failures.translate(ValueError("x" * 10_000))
    assert len(str(reported)) < 500  # a huge message is cut, not printed whole


@pytest.mark.parametrize("exc", [BrokenPipeError(errno.EPIPE, "Broken pipe"), OSError(errno.EPIPE, "Broken pipe")])
def test_a_closed_pipe_ends_quietly_with_exit_0(exc, monkeypatch):
    quieted = []
    monkeypatch.setattr(failures, "quiet_stdout", lambda: quieted.append(True))
    reported = failures.translate(exc)
    assert (reported.exit_code, str(reported)) == (0, "")
    assert quieted == [True]  # stdout pointed at /dev/null, so the interpreter's flush at exit stays silent


@pytest.mark.parametrize("exc, code", [
    (ResnetCliError("bad --widths"), 2), (SpecError("at most 20,000 blocks"), 2), (UnknownArchError("no resnet7"), 2),
    (LimitError("--samples is at most 10,000"), 2), (CheckpointError("net.pt is truncated or corrupt"), 2),
    (Interrupted("interrupted"), 130), (SystemExit(3), None),
])
def test_the_projects_own_errors_and_exits_pass_unchanged(exc, code):
    """They are already one line with their exit code (the CLI prints them as they are)."""
    assert failures.translate(exc) is exc
    assert getattr(exc, "exit_code", None) == code


def test_clicks_own_exceptions_pass_unchanged():
    from click.exceptions import BadParameter

    exc = BadParameter("not a number")
    assert failures.translate(exc) is exc  # click words its usage errors itself ("Invalid value for ...")
