"""Choosing the torch device: ``auto`` picks CUDA, then MPS, then the CPU."""

from __future__ import annotations

from .errors import ResnetCliError


def resolve_device(name: str = "auto"):
    """A ``torch.device`` for auto|cpu|cuda|mps (or 'cuda:1'); an unavailable device is a user error."""
    import torch

    name = (getattr(name, "value", name) or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ResnetCliError("--device cuda was asked for, but torch sees no CUDA device here (try --device auto)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ResnetCliError("--device mps was asked for, but MPS is not available here (try --device auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ResnetCliError(f"unknown device {name!r}: use auto, cpu, cuda or mps") from None
