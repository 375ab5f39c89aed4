"""Running under ``torchrun`` (torch.distributed): the one module that knows about process groups.

``torchrun --nproc-per-node N -m resnet_cli lesion ...`` starts N copies of the command, each with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` in its environment. ``start(device)`` reads them: without them (or with a
world of one) nothing changes; with them it joins the process group, gloo on the CPU, NCCL on CUDA with each
process bound to the GPU of its ``LOCAL_RANK``.

What the commands split (``World.part``): the images (lesion, eval, gradients) in whole batches, a contiguous
run of batches per rank, so every image is counted exactly once (no padding, unlike ``DistributedSampler``) and
every batch is the very batch one process would run (the same counts, bit for bit, on the CPU). Rank 0 alone
prints, shows progress and writes files; the others only compute.

One GPU, several processes (a smoke test of the distributed path on a one-GPU machine): NCCL refuses two ranks
on one GPU, so ``RESNET_CLI_DIST_BACKEND=gloo`` takes gloo on CUDA too (its collectives go through the host:
slower, but few), and under gloo local ranks beyond the node's GPUs share them round-robin.

Failures: every collective has the timeout ``RESNET_CLI_DIST_TIMEOUT`` (seconds, default 600), so a rank that
hangs ends the run instead of blocking it; a collective that fails (a peer died) becomes ``PeerFailed``, one
line. When one process fails, torchrun stops the others with SIGTERM; rank 0 then says so in one line.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from typing import Any

from .errors import ResnetCliError

TIMEOUT_ENV = "RESNET_CLI_DIST_TIMEOUT"
BACKEND_ENV = "RESNET_CLI_DIST_BACKEND"
DEFAULT_TIMEOUT_S = 600.0


class PeerFailed(ResnetCliError):
    """Another process of the run failed, or a collective timed out."""

    exit_code = 1


class StoppedByLauncher(ResnetCliError):
    """torchrun stopped this process (SIGTERM) because another one failed."""

    exit_code = 143


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process prints, shows progress and writes files (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def part(self, start: int, stop: int, batch_size: int) -> tuple[int, int]:
        """This rank's images of ``start..stop``: batches of ``batch_size`` counted from ``start`` (as one process
        would run them), dealt out as one contiguous run of whole batches per rank."""
        batches = -(-(stop - start) // batch_size)
        lo, hi = self.rank * batches // self.size, (self.rank + 1) * batches // self.size
        return min(stop, start + lo * batch_size), min(stop, start + hi * batch_size)

    def sum(self, tensor: Any) -> Any:
        """``tensor`` summed over every rank, in place (one all-reduce)."""
        if self.distributed:
            _collective(lambda: _dist().all_reduce(tensor))
        return tensor

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (a broadcast of a picklable object)."""
        if not self.distributed:
            return obj
        box = [obj]
        _collective(lambda: _dist().broadcast_object_list(box, src=0))
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.size
        _collective(lambda: _dist().all_gather_object(out, obj))
        return out


SINGLE = World()
_started: World | None = None


def from_environment() -> World:
    """The world torchrun describes in the environment (a single process without it)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ResnetCliError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (set by torchrun)") from None
    return World(rank, size, local) if size > 1 else SINGLE


def timeout_s() -> float:
    try:
        value = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    except ValueError:
        raise ResnetCliError(f"{TIMEOUT_ENV} must be a number of seconds") from None
    if not value > 0:
        raise ResnetCliError(f"{TIMEOUT_ENV} must be positive")
    return value


def backend_for(device: Any) -> str:
    """The process group's backend: NCCL on CUDA, gloo on the CPU, or ``RESNET_CLI_DIST_BACKEND``'s."""
    chosen = os.environ.get(BACKEND_ENV, "").strip().lower()
    if not chosen:
        return "nccl" if device.type == "cuda" else "gloo"
    if chosen not in ("gloo", "nccl"):
        raise ResnetCliError(f"{BACKEND_ENV} must be gloo or nccl, not {chosen!r}")
    if chosen == "nccl" and device.type != "cuda":
        raise ResnetCliError(f"{BACKEND_ENV}=nccl needs CUDA (--device cuda)")
    return chosen


def rank_gpu(local_rank: int, gpus: int, backend: str) -> int:
    """The GPU index of ``local_rank`` on a node with ``gpus``: its own (NCCL wants one process per GPU), or
    under gloo, where ranks may share, round-robin."""
    if local_rank < gpus:
        return local_rank
    if backend == "gloo" and gpus:
        return local_rank % gpus
    raise ResnetCliError(f"LOCAL_RANK {local_rank} has no GPU: this node has {gpus}; start at most that many "
                         f"processes per node (or share them with {BACKEND_ENV}=gloo)")


def start(device: Any) -> tuple[World, Any]:
    """Join the run torchrun launched (once per process) and bind this rank to its device.

    ``device`` is what ``resolve_device`` chose; under torchrun a CUDA device becomes ``cuda:LOCAL_RANK``. Returns
    the world and the device to compute on. A single process gets ``SINGLE`` and ``device`` unchanged.
    """
    global _started
    import torch

    world = from_environment()
    if not world.distributed:
        return world, device
    device = torch.device(device)
    if device.type not in ("cuda", "cpu"):
        raise ResnetCliError(f"torchrun runs on CUDA (NCCL) or the CPU (gloo), not {device.type}")
    backend = backend_for(device)
    if device.type == "cuda":
        device = torch.device("cuda", rank_gpu(world.local_rank, torch.cuda.device_count(), backend))
        torch.cuda.set_device(device)
    if _started is None:
        import datetime

        dist = _dist()
        kwargs = {"device_id": device} if backend == "nccl" else {}
        try:
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s()), **kwargs)
        except (RuntimeError, ValueError) as exc:
            raise PeerFailed(f"cannot join the torchrun process group: {_first_line(exc)}") from None
        _started = world
        import atexit

        atexit.register(_leave)
        if world.main:
            _stop_on_sigterm()
    return world, device


def started() -> World | None:
    """The world of this process once ``start`` joined a process group, else None."""
    return _started


def error_prefix() -> str | None:
    """How this process prefixes its error line: '' (a single process, or rank 0), 'rank N: ' (another rank
    once the run has started: its failure is its own), or None (another rank before that: the same input
    gives every rank the same error, and rank 0 says it)."""
    world = from_environment() if _started is None else _started
    if world.main:
        return ""
    return f"rank {world.rank}: " if _started is not None else None


def finish() -> None:
    """End a command together, once this process's part has succeeded: a barrier every rank reaches (the group
    itself is closed at exit). Without it a rank that is done first (rank 0, having printed) exits and closes its
    connections while another is still in the command's last collective, which then fails: the launch exits 1."""
    if _started is not None and _dist().is_initialized():
        _collective(_dist().barrier)


def _leave() -> None:
    dist = _dist()
    if dist.is_initialized():
        dist.destroy_process_group()


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise StoppedByLauncher("stopped by torchrun: another process of the run failed (its error is above); "
                                "what was finished is kept")

    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGTERM, handler)


def _collective(call: Any) -> None:
    try:
        call()
    except RuntimeError as exc:  # DistBackendError and gloo's errors are RuntimeErrors
        raise PeerFailed(f"another process of the run failed or did not answer within {timeout_s():g} s "
                         f"({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _dist() -> Any:
    import torch.distributed as dist

    return dist
