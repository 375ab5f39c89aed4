"""Writing results so that a file is there whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path`` (atomic on POSIX).

    If the block raises (or the process is interrupted), ``path`` keeps its old content and the
    temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates the file 0600; give it the mode a plain open() would (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_writable(path: str | os.PathLike[str], option: str, *, folder: bool = False) -> Path:
    """Fail now, as a one-line user error, if ``path`` (a file, or with ``folder`` a folder) cannot be written.

    Commands call this before their work, so that a mistyped output path costs seconds, not a training run.
    Creates the missing parent folders (writing would create them anyway) and probes with a temporary file.
    """
    from .errors import ResnetCliError

    path = Path(path)
    target = path if folder else path.parent
    if path.exists() and path.is_dir() != folder:
        raise ResnetCliError(f"{option} {path} is a {'file' if folder else 'folder'}, not a "
                             f"{'folder' if folder else 'file'}")
    blocker = next((p for p in (target, *target.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ResnetCliError(f"{option} {path}: {blocker} is a file, not a folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ResnetCliError(f"{option} {path}: cannot write there ({exc.strerror or exc})") from None
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)

