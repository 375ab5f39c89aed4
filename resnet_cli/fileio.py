"""Writing results so that a file is there whole or not at all, and holding an output so that two runs never
write one folder or checkpoint at once."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path`` (atomic on POSIX).

    If the block raises (or the process is interrupted), ``path`` keeps its old content and the
    temporary file is removed; one left by a killed run (SIGKILL mid-save) is removed by the next write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
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
    from .limits import check_path_length, file_kind

    # a name the file system refuses is refused now, not when the finished run saves (a folder's own files have
    # short fixed names; a file's temporary file adds TEMP_NAME_EXTRA bytes to its name)
    check_path_length(path, option, ResnetCliError, reserve=0 if folder else TEMP_NAME_EXTRA)
    path = Path(path)
    target = path if folder else path.parent
    if path.exists() and path.is_dir() != folder:
        raise ResnetCliError(f"{option} {path} is a {'file' if folder else 'folder'}, not a "
                             f"{'folder' if folder else 'file'}")
    if not folder and path.exists() and not path.is_file():  # the atomic rename would replace the node itself
        raise ResnetCliError(f"{option} {path} is {file_kind(path.stat().st_mode)}, not a regular file: results are "
                             f"written to a file (a new one, or one that they replace)")
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


# --------------------------------------------------------------------------- temporary files and locks
#: What a temporary file's name adds to the name it is written for: '.', '.PID.' (Linux pids have at most 7
#: digits: pid_max is at most 2**22), mkstemp's 8 random characters and '.tmp'.
TEMP_NAME_EXTRA = len(".") + len(".4194304.") + 8 + len(".tmp")


def _temp_prefix(path: Path) -> str:
    """Temporary files beside ``path`` are named ``.NAME.PID.XXXX.tmp``: the pid says whose they are, so a run
    can remove the ones a killed run (SIGKILL mid-save) left behind."""
    return f".{path.name}.{os.getpid()}."


def remove_stale_temps(path: Path) -> None:
    """Remove temporary files of ``path`` whose writer is no longer running."""
    head = f".{path.name}."
    try:
        entries = list(path.parent.iterdir()) if path.parent.is_dir() else []
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(head) and name.endswith(".tmp")):
            continue
        pid = name[len(head):].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                entry.unlink()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a process of another user counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31
    return True


LOCK_NAME = ".resnet-cli.lock"


def lock_file_for(path: str | os.PathLike[str], *, folder: bool) -> Path:
    """The lock of an output: ``DIR/.resnet-cli.lock`` for a folder, ``.NAME.lock`` beside a file."""
    path = Path(path)
    return path / LOCK_NAME if folder else path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], option: str, *, folder: bool = False) -> Iterator[Path]:
    """Hold the output ``path`` (a folder, or a file) for this run: a second run on it refuses with one line.

    The lock is a file holding the owner's pid and host, created with O_EXCL (atomic on POSIX); a lock whose pid
    no longer runs on this host is stale (a killed run) and is taken over. Removed when the block ends."""
    from .errors import ResnetCliError

    lock = lock_file_for(path, folder=folder)
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = f"{os.getpid()} {socket.gethostname()}\n"
    for _attempt in range(3):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            owner = _lock_owner(lock)
            if owner is None:  # stale: its run is gone
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                continue
            raise ResnetCliError(f"{option} {path} is in use by another resnet-cli run ({owner}); wait for it to "
                                 f"end, or delete {lock} if that run is gone") from None
        except OSError as exc:
            raise ResnetCliError(f"{option} {path}: cannot create the lock file {lock} "
                                 f"({exc.strerror or exc})") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(me)
        break
    else:
        raise ResnetCliError(f"{option} {path}: cannot take the lock {lock} (other runs keep taking it)")
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError):
            if lock.read_text() == me:
                lock.unlink()


def _lock_owner(lock: Path) -> str | None:
    """'pid N on HOST' of a live lock; None when the lock is stale (its pid is gone on this host) or unreadable
    garbage older than a minute."""
    try:
        text = lock.read_text(errors="replace")
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return None
    except OSError:
        return "unreadable lock"
    parts = text.split()
    if len(parts) >= 2 and parts[0].isdigit():
        pid, host = int(parts[0]), parts[1]
        if host != socket.gethostname():
            return f"pid {pid} on {host}"
        return f"pid {pid}" if pid_alive(pid) else None
    return None if age > 60 else "a run that is starting"


def output_lock(path: str | os.PathLike[str] | None, option: str, *, folder: bool = False):
    """``locked(path)``, or nothing to hold when there is no such output (``path`` None)."""
    return contextlib.nullcontext() if path is None else locked(path, option, folder=folder)
