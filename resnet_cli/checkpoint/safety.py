"""The hostile-file defence: a checkpoint comes from the internet, so it is read without running code and without
letting a small file ask for gigabytes.

Before torch reads a file: its path (a folder, a FIFO, a name too long), its size, its zip directory and records
(a zip bomb), the pickles of torch's format before zip. Torch then reads it weights-only (tensors and plain
containers; a pickled class is refused by name, found from the opcodes, never run), and the containers it
built are counted (one object named many times). Every refusal is one ``CheckpointError`` line naming the
limit (``limits.py``) or what the file is.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import CheckpointError


def check_checkpoint_path(path: Path) -> Path:
    """Refuse a path that holds no checkpoint file, at once: before torch is imported (seconds) or any data is
    loaded. Also a name too long, a FIFO or device (/dev/zero would be read forever) and a file past the limit."""
    from ..limits import MAX_CHECKPOINT_BYTES, check_file_size, check_path_length

    path = Path(path)
    check_path_length(path, "a checkpoint", CheckpointError)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    try:
        check_file_size(path, MAX_CHECKPOINT_BYTES, "a checkpoint", CheckpointError)
    except FileNotFoundError:
        raise CheckpointError(f"no such checkpoint: {path}") from None
    except OSError as exc:  # a symlink loop, a folder without read permission
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    return path


def read_checkpoint_file(path: Path) -> Any:
    """The object in a checkpoint file, read with torch's weights-only unpickler after the file's size and zip
    records were checked against the limits (a small file must not inflate to gigabytes). ``path`` has passed
    ``check_checkpoint_path`` (``load_checkpoint``, the one caller, checks it before torch is imported)."""
    import pickle
    import warnings
    import zipfile

    import torch

    data = _read_bytes(path)
    _check_zip_records(data, path)  # first: a zip's directory is counted before anything lists it
    foreign = foreign_format(data)
    if foreign:
        raise CheckpointError(f"{path} is {foreign}")
    _check_legacy_pickles(data, path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before it fails: one line, not three
            warnings.simplefilter("ignore")
            return _check_items(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True), path)
    except pickle.UnpicklingError as exc:
        code = _foreign_globals(data)
        if code:
            raise CheckpointError(
                f"{path} holds pickled Python objects ({', '.join(code[:3])}), not only tensors and plain data; it "
                f"is refused because loading it could run code (save model.state_dict() instead)") from None
        why = "truncated or corrupt" if data[:2] == b"PK" else "corrupt or not a torch file"
        raise CheckpointError(f"{path} is {why} ({_torch_reason(exc)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError,
            AttributeError, TypeError, UnicodeDecodeError) as exc:
        text = str(exc).lower()
        zip_incomplete = data[:2] == b"PK" and not zipfile.is_zipfile(io.BytesIO(data))
        if zip_incomplete or isinstance(exc, EOFError) or "truncat" in text or "end of file" in text or \
                "central directory" in text:
            why = "truncated or corrupt"
        else:
            why = "corrupt or not a torch file"
        raise CheckpointError(f"{path} is {why} ({type(exc).__name__}: {first_line(exc)})") from None


def _check_items(obj: Any, path: Path) -> Any:
    """``obj``, refused when its containers hold more than MAX_CHECKPOINT_ITEMS values counted as a tree.

    A pickle may name one object many times: 30 levels of ``[x, x]`` are 2**30 values to whatever walks them (the
    record's check, --resume's save, a spec's fields) from a 200 kB file. Counted without recursion, and without
    listing a container that would pass the limit."""
    from ..limits import MAX_CHECKPOINT_ITEMS

    pending, counted = [obj], 0
    while pending:
        item = pending.pop()
        if not isinstance(item, (dict, list, tuple, set, frozenset)):
            continue  # a tensor, a number, a string: one value, counted by its container
        counted += 2 * len(item) if isinstance(item, dict) else len(item)  # a dict's keys and values
        if counted > MAX_CHECKPOINT_ITEMS:
            raise CheckpointError(f"{path} is refused: its lists and dicts hold more than {MAX_CHECKPOINT_ITEMS:,} "
                                  f"values (counting each reference to a shared one), past the limit for a checkpoint")
        pending.extend([*item.keys(), *item.values()] if isinstance(item, dict) else item)
    return obj


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise CheckpointError(f"{path} is empty, not a checkpoint")
    return data


# Leading bytes of formats people hand over for a checkpoint, each with what the file is. A torch checkpoint starts
# with "PK" (a zip, since torch 1.6) or with a pickle's 0x80 (the format before zip), which none of these do.
_MAGIC = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model?), not a torch checkpoint"),
    (b"\x93NUMPY", "a NumPy array file (.npy), not a torch checkpoint"),
    (b"\x1f\x8b", "a gzip-compressed file, not a torch checkpoint (unpack it first)"),
    (b"BZh", "a bzip2-compressed file, not a torch checkpoint (unpack it first)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file, not a torch checkpoint (unpack it first)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive, not a torch checkpoint (unpack it first)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image, not a torch checkpoint"),
    (b"\xff\xd8\xff", "a JPEG image, not a torch checkpoint"),
    (b"GGUF", "a GGUF model file, not a torch checkpoint"),
)


def foreign_format(data: bytes) -> str | None:
    """What a file that is not a torch checkpoint is, from its first bytes, as "a PNG image, not a torch
    checkpoint" (None: it may be one; torch decides).

    torch's own message for these is a pickle opcode ("Unsupported operand 35", "KeyError: 101"), which tells a
    user nothing about the file they gave."""
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return what
    if _is_onnx(data):
        return "an ONNX model, not a torch checkpoint (resnet-cli reads what torch.save wrote)"
    if len(data) > 10 and data[8:10] in (b'{"', b"{}"):  # its header's length, then the header as JSON
        return "a safetensors file, not a torch checkpoint (safetensors.torch.load_file reads it; torch.save its dict)"
    if len(data) > 262 and data[257:262] == b"ustar":
        return _foreign_tar(data)
    if data[:2] == b"PK":
        return _foreign_zip(data)
    return _text_format(data[:4096])


def _is_onnx(data: bytes) -> bool:
    """An ONNX ModelProto opens with its ir_version (protobuf field 1, a small varint: 0x08 N) and then one of its
    string fields, producer_name first when set (torch.onnx writes 'pytorch'): no torch file starts with 0x08."""
    return len(data) > 4 and data[0] == 0x08 and data[1] < 0x80 and data[2] in (0x12, 0x1A, 0x22, 0x2A, 0x3A, 0x42)


def _foreign_tar(data: bytes) -> str | None:
    import itertools
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = {member.name for member in itertools.islice(tar, 8)}
    except (tarfile.TarError, ValueError, OSError, EOFError):
        return None
    if "pickle" in names:
        return None  # torch's oldest format: a tar of "sys_info", "pickle", "storages" and "tensors"
    return "a tar archive, not a torch checkpoint (unpack it first)"


def _foreign_zip(data: bytes) -> str | None:
    import zipfile

    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return None  # a damaged zip: torch's reader says what is wrong with it
    if not names or any(n.endswith("data.pkl") for n in names):
        return None
    if all(n.endswith(".npy") for n in names):
        return "a NumPy archive (.npz), not a torch checkpoint"
    shown = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
    return f"a zip archive of other files ({shown}), not a torch checkpoint"


def _text_format(head: bytes) -> str | None:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of the sample
            return None
        text = head[:exc.start].decode("utf-8")
    if not text or not all(ch.isprintable() or ch in "\n\r\t" for ch in text):
        return None
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        return "a JSON document (text), not a torch checkpoint"
    first = stripped.splitlines()[0] if stripped.strip() else ""
    what = f"a text file (it starts {first[:40]!r})" if first else "a text file of blank lines"
    return f"{what}, not a torch checkpoint"


def _check_zip_records(data: bytes, path: Path) -> None:
    """Refuse a zip checkpoint whose records would inflate past the limits, before torch inflates them."""
    import zipfile

    from ..limits import (
        MAX_CHECKPOINT_BYTES,
        MAX_CHECKPOINT_INFLATION,
        MAX_CHECKPOINT_PICKLE_BYTES,
        MAX_CHECKPOINT_RECORDS,
    )

    if data[:2] != b"PK":
        return
    entries = _zip_directory_entries(data)
    if entries > MAX_CHECKPOINT_RECORDS:
        raise CheckpointError(f"{path} is refused: its zip directory lists {entries:,} records, past the limit of "
                              f"{MAX_CHECKPOINT_RECORDS:,} for a checkpoint")
    try:
        records = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return  # torch's reader says what is wrong with it
    total = sum(r.file_size for r in records)
    pickled = max((r.file_size for r in records if r.filename.endswith(".pkl")), default=0)
    limit = min(MAX_CHECKPOINT_BYTES, MAX_CHECKPOINT_INFLATION * len(data))
    if total > limit or pickled > MAX_CHECKPOINT_PICKLE_BYTES:
        big = max(records, key=lambda r: r.file_size)
        raise CheckpointError(f"{path} is refused: its zip records inflate to {total:,} bytes from a "
                              f"{len(data):,}-byte file ({big.filename!r}: {big.file_size:,}); the limits are "
                              f"{MAX_CHECKPOINT_INFLATION}x the file, {MAX_CHECKPOINT_BYTES:,} bytes in all and "
                              f"{MAX_CHECKPOINT_PICKLE_BYTES:,} for the pickle")


def _check_legacy_pickles(data: bytes, path: Path) -> None:
    """Refuse a checkpoint in torch's format before zip (akamaster's files are in it) whose pickles pass the
    limit a zip checkpoint's pickle has, before torch builds what they name (9 MiB of them: 4 s and 300 MB)."""
    from ..limits import MAX_CHECKPOINT_PICKLE_BYTES

    if data[:2] == b"PK":
        return
    stream = io.BytesIO(data)
    try:
        for _op in _legacy_pickle_ops(stream):
            if stream.tell() > MAX_CHECKPOINT_PICKLE_BYTES:
                raise CheckpointError(
                    f"{path} is refused: its pickled part passes {MAX_CHECKPOINT_PICKLE_BYTES:,} bytes, the limit "
                    f"for a checkpoint's pickle (torch builds every tensor and value it names)")
    except (ValueError, EOFError, UnicodeDecodeError):
        return  # not pickles as torch writes them: torch's reader says what is wrong with the file


def _legacy_pickle_ops(stream: io.BytesIO) -> Iterator[tuple[Any, Any, Any]]:
    """The opcodes (read, never run) of a file in torch's format before zip: five pickles (magic number,
    protocol, system information, the object, its storage keys), then the raw tensor data; a bare pickle is the
    first of them only."""
    import pickletools

    end = len(stream.getbuffer())
    for _ in range(5):
        yield from pickletools.genops(stream)
        if stream.tell() >= end:
            return


def _zip_directory_entries(data: bytes) -> int:
    """How many records the zip's central directory lists, counted before ``zipfile`` parses it (one ZipInfo per
    record: 300,000 empty records took 425 MB), in the bytes ``zipfile`` would read: the directory ends where the
    end-of-directory record (or its zip64 form) starts. Every entry starts with PK\\1\\2, so counting those bytes
    counts at least every entry. 0 when there is no end record (``zipfile`` refuses that file itself)."""
    import struct

    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if end < 0 or end + 22 > len(data):
        return 0
    (size,) = struct.unpack_from("<I", data, end + 12)
    start = end
    locator = end - 20
    if locator >= 0 and data[locator:locator + 4] == b"PK\x06\x07":  # zip64: the directory ends at its record
        (record,) = struct.unpack_from("<Q", data, locator + 8)
        if data[record:record + 4] == b"PK\x06\x06":
            (size,) = struct.unpack_from("<Q", data, record + 40)
            start = record
    return data[max(0, start - size):start].count(b"PK\x01\x02")


#: Globals a torch checkpoint of tensors and plain containers names (what weights-only loading builds).
_TENSOR_GLOBALS = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set", "builtins.frozenset",
                   "__builtin__.set", "__builtin__.frozenset")
#: ... except torch's own classes of code rather than data: a pickled nn.Module or optimizer (torch.save(model)).
_TORCH_CODE_GLOBALS = ("torch.nn.", "torch.optim.", "torch.jit.", "torch.fx.", "torch.ao.", "torch.utils.data.")


def _foreign_globals(data: bytes) -> list[str]:
    """The Python objects (module.name) the checkpoint's pickle would build that are not tensors or plain data:
    read from the pickle's opcodes (never run), so the verdict does not hang on one torch version's wording."""
    import pickletools
    import zipfile

    pickled = data
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                pickled = z.read(name) if name else b""
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError):
            return []
    found: list[str] = []
    strings: list[str] = []
    # a zip's data.pkl is one pickle; the older format's object is its fourth
    ops = pickletools.genops(io.BytesIO(pickled)) if data[:2] == b"PK" else _legacy_pickle_ops(io.BytesIO(data))
    try:
        for op, arg, _pos in ops:
            if isinstance(arg, str):
                strings.append(arg)
            if op.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:
        pass
    foreign = {g for g in found if not g.startswith(_TENSOR_GLOBALS) or g.startswith(_TORCH_CODE_GLOBALS)}
    # the classes first (what the file really holds: a model, an optimizer), the builtins it also names after
    return sorted(foreign, key=lambda g: (g.startswith(("__builtin__.", "builtins.", "collections.")), g))


def _torch_reason(exc: BaseException) -> str:
    import re

    detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
    return _first_sentence(detail.group(1).strip()) if detail else "unpickling failed"


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return _first_sentence(lines[0] if lines else type(exc).__name__)


def _first_sentence(text: str, most: int = 160) -> str:
    """A library's reason, short enough for one line: its first sentence where the text runs on (torch follows the
    reason with advice: "This is an internal miniz error. If you are seeing this error, ..."), else cut at a word."""
    if len(text) <= most:
        return text
    end = text.find(". ", 20)
    if 0 < end < most:
        return text[:end + 1]
    return text[:most].rsplit(" ", 1)[0] + " ..."

