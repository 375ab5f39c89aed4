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


# What runs where on a GPU: one home for the choices that the trainer, ``evaluate`` and the lesion study share.
# Each takes the device and returns a decision, so that the CUDA choices are unit-tested on a CPU-only machine
# (``torch.device("cuda")`` can be made without a GPU).

#: Data held whole on the GPU when it takes less than this (a lesion study's images, an in-memory training or
#: test set): no host-to-device copy per batch at all. CIFAR-10's 50,000 training images are 150 MB as uint8.
KEEP_ON_DEVICE_BYTES = 2 * 1024**3


def keeps_on_device(device, *tensors) -> bool:
    """Whether ``tensors`` (together) go to the GPU whole rather than batch by batch."""
    size = sum(t.numel() * t.element_size() for t in tensors)
    return device.type == "cuda" and size < KEEP_ON_DEVICE_BYTES


def autocast_dtype(device, amp: bool = True):
    """The dtype of mixed precision on ``device``, or None for none (off CUDA, or ``amp`` off).

    bfloat16 where the GPU has it (Ampere and later): it keeps float32's exponent range, so small gradients do
    not underflow and training needs no loss scaling (no GradScaler, whose overflow check waits for the GPU every
    step). float16 before that, with a GradScaler in training. Inference (lesion, eval) uses the same dtype, so a
    lesion study's baseline and ``eval`` agree on the same GPU.
    """
    import torch

    if not amp or device.type != "cuda":
        return None
    try:  # the hardware's answer: torch's default also says yes for a bf16 emulated (slowly) on older GPUs
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # an older torch without the argument does not count emulation either
        native = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if native else torch.float16


def channels_last_for(device, x) -> bool:
    """Whether batch ``x`` (and the model it enters) should be channels_last (NHWC): image batches on CUDA, where
    cuDNN's fastest convolutions (tensor cores) take NHWC; NCHW elsewhere (the CPU path stays as tested)."""
    return device.type == "cuda" and x.dim() == 4


def to_device(x, device, channels_last: bool = False):
    """Batch ``x`` on ``device`` without making the host wait for the copy: a CPU batch bound for a GPU is
    page-locked first (from ordinary pageable memory the copy is synchronous whatever ``non_blocking`` says),
    then copied with ``non_blocking``; ``channels_last`` makes it NHWC. On the CPU it is ``x`` itself."""
    import torch

    if pins(x, device):
        x = x.pin_memory()
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def pins(x, device) -> bool:
    """Whether ``to_device`` page-locks ``x`` first: a CPU tensor bound for a GPU, not pinned already (a
    DataLoader with ``pin_memory`` pins its batches in a background thread)."""
    return device.type == "cuda" and x.device.type == "cpu" and not x.is_pinned()
