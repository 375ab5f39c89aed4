"""Every size limit of resnet-cli, in one place, and the checks that apply them before any work starts.

Files come from other people (checkpoints from the internet, CIFAR copies, image folders) and sizes are typed:
a 196-byte PNG can ask for gigapixels, a 2 MB zip can inflate to gigabytes, ``layers=1000000000,1,1`` is one
typo. Each limit is far beyond any published network or dataset and far below what would exhaust a machine; a
refusal names the limit. The README's "Reliability" section lists them. Torch-free.
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any

from .errors import ResnetCliError, SpecError

# --------------------------------------------------------------------------- architectures
#: Residual blocks in one network (ResNet-1202 has 600, pre-activation ResNet-1001 333). Also the cap of
#: ``paths --blocks``, whose exact rows stay under a second or two at this size.
MAX_BLOCKS = 20_000
#: Stages (entries of ``layers``).
MAX_STAGES = 64
#: Planes of a stage, stem width, growth rate, groups and width per group (WRN-28-10 has 640 planes,
#: wide_resnet101_2 a bottleneck width of 2048).
MAX_WIDTH = 16_384
#: Input height and width in pixels, each (a 224 ImageNet net at 8192 px is 1,300x the activations).
MAX_INPUT_SIZE = 8192
MAX_IN_CHANNELS = 4096
MAX_CLASSES = 1_000_000
#: Characters of an architecture name.
MAX_NAME_LENGTH = 200

# --------------------------------------------------------------------------- runs
#: Measurements of one lesion study (``--samples`` per k times ``--max-k``, plus the single deletions).
MAX_LESION_MEASUREMENTS = 100_000
#: ``--samples`` of ``lesion`` and ``gradients``.
MAX_SAMPLES = 10_000
#: Epochs of one training run, typed or read from a checkpoint being resumed (the papers train 164 to 300 on
#: CIFAR, 90 to 120 on ImageNet): past it a typo trains for ever, and the record of every epoch stays a tenth of
#: MAX_CHECKPOINT_ITEMS.
MAX_EPOCHS = 10_000
#: Data-loading processes (``--workers``): each is a copy of the run, and past the cores they only slow it (100,000
#: of them froze the machine).
MAX_WORKERS = 64
#: ``--seed``: what numpy's and most tools' seeding takes (torch takes up to 2**64-1); its bound printed in --help
#: fits the help's range column at 80 columns, where 2**63-1 was cut in two.
MAX_SEED = 2**32 - 1
#: Share of the memory available when a run starts that its estimated need may take (weights, gradients,
#: optimizer state, one batch's activations, images held in memory).
MEMORY_SHARE = 0.9

# --------------------------------------------------------------------------- files
#: Pixels of one image before it is decoded (Pillow's own bomb limit is 89M; 8192 x 8192 is 67M), and of the
#: image after its resize for ``--input-size`` (a 1 x 60000 strip resized to a 256-pixel short side would be
#: 256 x 15,360,000).
MAX_IMAGE_PIXELS = 8192 * 8192
#: Inflated size of one checkpoint (all its zip records together) and of its pickle record; torch stores records
#: uncompressed, so a real checkpoint inflates to its own size, and a record that inflates to more than
#: MAX_CHECKPOINT_INFLATION times the file is a zip bomb.
MAX_CHECKPOINT_BYTES = 8 * 2**30
#: The pickle holds about 100 bytes per tensor (a ResNet-1202's training checkpoint has under 1 MB of it); torch
#: builds each tensor it names: 450,000 entries in a 43 MB pickle took torch.load 18 s and 1 GB, and 160,000 in
#: 15 MB 17 s and 500 MB on a loaded 2-core machine. The same limit holds for the pickles of torch's format
#: before zip (checkpoint._check_legacy_pickles).
MAX_CHECKPOINT_PICKLE_BYTES = 8 * 2**20
MAX_CHECKPOINT_INFLATION = 4
#: Records (files) in a checkpoint's zip: torch writes one per tensor storage, a few thousand for a ResNet-1202
#: with its optimizer state.
MAX_CHECKPOINT_RECORDS = 100_000
#: Values in a checkpoint's lists and dicts, each reference to a shared one counted (a ResNet-1202's state dict,
#: optimizer state and a 1000-epoch record hold under 100,000).
MAX_CHECKPOINT_ITEMS = 2_000_000
#: One CIFAR batch file (CIFAR-100's train is 155 MB) and the images in it (50,000).
MAX_CIFAR_BATCH_BYTES = 400 * 2**20
MAX_CIFAR_BATCH_IMAGES = 60_000
#: A JSON file read back (measurements.json of a lesion study); nesting too deep for Python's parser is refused
#: as such.
MAX_JSON_BYTES = 256 * 2**20
#: Bytes of one file or folder name, and of a whole path, as typed: NAME_MAX and PATH_MAX (less its closing NUL)
#: of Linux's file systems (ext4, xfs, btrfs, tmpfs). Names are counted in bytes: 'é' is two.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4095


class LimitError(ResnetCliError, ValueError):
    """A size past one of the limits above."""


def _printable(name: str) -> bool:
    return all(ch.isprintable() for ch in name)


def check_spec(spec: Any) -> None:
    """Refuse a spec past the architecture limits, or with a name that would send control bytes to a terminal.

    Called by ``ArchSpec.validate`` (every spec: typed, registered, parsed from a name or read from a checkpoint),
    before anything loops over its blocks."""
    if not isinstance(spec.name, str) or not spec.name.strip() or len(spec.name) > MAX_NAME_LENGTH or \
            not _printable(spec.name):
        raise SpecError(f"an architecture name must be 1 to {MAX_NAME_LENGTH} printable characters "
                        f"(got {ascii(spec.name)[:80]})")
    if len(spec.layers) > MAX_STAGES:
        raise SpecError(f"at most {MAX_STAGES} stages are supported (got {len(spec.layers):,})")
    blocks = sum(spec.layers)
    if blocks > MAX_BLOCKS:
        raise SpecError(f"at most {MAX_BLOCKS:,} blocks are supported (got {blocks:,}; ResNet-1202 has 600)")
    widths = (*spec.widths, spec.stem_width, spec.growth_rate, spec.groups, spec.width_per_group)
    if max(widths) > MAX_WIDTH:
        raise SpecError(f"widths, stem_width, growth_rate, groups and width_per_group are at most {MAX_WIDTH:,} "
                        f"(got {max(widths):,})")
    if not 1 <= spec.num_classes <= MAX_CLASSES:
        raise SpecError(f"num_classes must be between 1 and {MAX_CLASSES:,} (got {spec.num_classes})")
    if not 1 <= spec.in_channels <= MAX_IN_CHANNELS:
        raise SpecError(f"in_channels must be between 1 and {MAX_IN_CHANNELS} (got {spec.in_channels})")
    check_input_size(spec.input_size, "input_size", SpecError)
    if spec.input_width is not None:
        check_input_size(spec.input_width, "input_width", SpecError)


def check_input_size(size: int, what: str = "--input-size", error: type[ResnetCliError] | None = None) -> int:
    if not 1 <= size <= MAX_INPUT_SIZE:
        raise (error or LimitError)(f"{what} must be between 1 and {MAX_INPUT_SIZE} pixels (got {size})")
    return size


_INPUT_SIZE = re.compile(r"\s*(\d+)\s*(?:[x×]\s*(\d+)\s*)?", re.ASCII | re.IGNORECASE)


def parse_input_size(value: Any, what: str = "input size") -> tuple[int, int]:
    """(height, width) in pixels of ``224`` (square), ``"224"``, ``"224x320"`` or ``(224, 320)``, each side
    between 1 and MAX_INPUT_SIZE; anything else is refused with the form to use."""
    if isinstance(value, str):
        match = _INPUT_SIZE.fullmatch(value)
        if match is None:
            raise LimitError(f"{what} {_shown(value)}: give H or HxW in pixels, e.g. 224 or 224x320")
        sides = (match[1], match[2] or match[1])
        if any(len(side.lstrip("0")) > len(str(MAX_INPUT_SIZE)) for side in sides):  # int() refuses 4,300 digits
            raise LimitError(f"{what} {_shown(value)}: each side must be between 1 and {MAX_INPUT_SIZE} pixels")
        hw = (int(sides[0]), int(sides[1]))
    elif isinstance(value, int) and not isinstance(value, bool):
        hw = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        hw = (value[0], value[1])
    else:
        raise LimitError(f"{what} {_shown(value)}: give H or HxW in pixels, e.g. 224 or 224x320")
    for side in hw:
        check_input_size(side, f"{what} {_shown(value)}: each side")
    return hw


def _shown(value: Any) -> str:
    """``value`` as typed, for a message: its repr, cut to 40 characters (a typo can be 5,000 digits)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def check_samples(samples: int, option: str = "--samples") -> int:
    if samples > MAX_SAMPLES:
        raise LimitError(f"{option} is at most {MAX_SAMPLES:,} (got {samples:,})")
    return samples


def check_path_length(path: Any, what: str, error: type[ResnetCliError] | None = None, *, reserve: int = 0) -> None:
    """Refuse ``path`` (``what``: "--output", "a checkpoint") when one of its names is longer than MAX_NAME_BYTES or
    the whole is longer than MAX_PATH_BYTES: the file system would refuse it, maybe only after the work.

    ``reserve``: bytes that files made beside an output add to its name (its temporary file while it is written)."""
    raw = os.fsencode(path)
    names = [name for name in raw.split(b"/") if name]
    longest = max(names, key=len, default=b"")
    last = names[-1] if names else b""
    shown = os.fsdecode(raw[:60]) + ("..." if len(raw) > 60 else "")
    if len(longest) > MAX_NAME_BYTES:
        raise (error or LimitError)(f"{what} {shown}: a file or folder name is at most {MAX_NAME_BYTES} bytes "
                                    f"(this one has {len(longest):,})")
    if len(last) + reserve > MAX_NAME_BYTES:
        raise (error or LimitError)(f"{what} {shown}: the name of a file written is at most "
                                    f"{MAX_NAME_BYTES - reserve} bytes, the file system's {MAX_NAME_BYTES} less "
                                    f"{reserve} for its temporary file (this one has {len(last):,})")
    if len(raw) + reserve > MAX_PATH_BYTES:
        raise (error or LimitError)(f"{what} {shown}: a path is at most {MAX_PATH_BYTES - reserve:,} bytes, and this "
                                    f"one has {len(raw):,}")


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words ("a named pipe (FIFO)"), from its ``st_mode``."""
    return next((name for test, name in _FILE_KINDS if test(mode)), "a special file")


_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a device"),
               (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def check_workers(workers: int) -> int:
    if not 0 <= workers <= MAX_WORKERS:
        raise LimitError(f"--workers must be between 0 and {MAX_WORKERS} (got {workers:,})")
    return workers


def check_file_size(path: Any, limit: int, what: str, error: type[ResnetCliError] | None = None) -> int:
    """The size of ``path`` in bytes, refused before anything opens it (``what``: "a checkpoint"): past ``limit``,
    or not a regular file: a FIFO blocks on open and a device such as /dev/zero reads forever, and neither has a
    size to check. An ``OSError`` (a missing file, a symlink loop) is the caller's to put into words."""
    check_path_length(path, what, error)
    status = os.stat(path)
    if not stat.S_ISREG(status.st_mode):
        kind = file_kind(status.st_mode)
        raise (error or LimitError)(f"{path} is {kind}, not a regular file: {what} is read from a file")
    if status.st_size > limit:
        raise (error or LimitError)(f"{path} is {status.st_size:,} bytes, past the limit of {limit:,} bytes for "
                                    f"{what}")
    return status.st_size


def check_image_pixels(width: int, height: int, what: str) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise LimitError(f"{what} would be {width:,} x {height:,} pixels, past the limit of "
                         f"{MAX_IMAGE_PIXELS:,} pixels per image")


# --------------------------------------------------------------------------- memory
# What a network's run needs is estimated where the memory rule lives (analysis/memory.py: run_bytes and
# check_run_memory); these are the checks on a need in bytes.
def available_memory() -> int | None:
    """Bytes of memory available now (Linux: MemAvailable; elsewhere the physical memory), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError, AttributeError):
        return None


def check_memory(need: int, what: str, available: int | None = None) -> None:
    """Refuse, before allocating it, ``need`` bytes for ``what`` where the machine has not that much available."""
    have = available_memory() if available is None else available
    if have is not None and need > MEMORY_SHARE * have:
        raise LimitError(f"{what} would need about {need / 2**30:.1f} GiB of memory and {have / 2**30:.1f} GiB are "
                         f"available: lower --batch-size, --input-size or --limit")


def images_bytes(count: int, channels: int, size: int, copies: int = 1) -> int:
    """float32 bytes of ``count`` images of ``channels`` x ``size`` x ``size`` (``copies`` alive at once)."""
    return 4 * count * channels * size * size * copies
