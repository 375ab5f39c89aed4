"""Hostile checkpoint files (zip bombs, pickled code, billion laughs, truncated and damaged records), made here:
each refused in one line, within bounded time and memory, before any work."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hostile_runner import assert_refused, run_cases


def _payload(path):
    import torch

    return torch.load(path, weights_only=True)


def _save(payload, path):
    import torch

    torch.save(payload, path)
    return path


class Evil:
    """Pickles as a call of os.system: what a checkpoint from a stranger might hold."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _deflated_zeros(mebibytes: int) -> bytes:
    """A raw deflate stream that inflates to ``mebibytes`` MiB of zero bytes, made in milliseconds: after a full
    flush the compressor starts afresh, so every further MiB of zeros compresses to the same 1 kB, repeated here
    instead of compressed again (deflating 2 GiB took 11 s)."""
    import zlib

    mib = bytes(2**20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert again == first  # what makes the repetition a valid stream
    return first * mebibytes + compressor.flush(zlib.Z_FINISH)


def _write_zip(path: Path, records: list[tuple[str, int, int, bytes, int]]) -> Path:
    """A zip of ``records`` (name, method, CRC-32, data as stored, inflated size), written as the format says."""
    import struct

    body, directory = bytearray(), bytearray()
    for name, method, crc32, data, size in records:
        raw = name.encode()
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc32, len(data),
                                 size, len(raw), 0, 0, 0, 0, 0, len(body)) + raw
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc32, len(data), size, len(raw),
                            0) + raw + data
    count = min(len(records), 0xFFFF)  # past 65,535 the count field is a placeholder (zip64's); zipfile reads on
    path.write_bytes(bytes(body + directory + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count,
                                                          len(directory), len(body), 0)))
    return path


def _zip_bomb(source: Path, path: Path, mebibytes: int = 2048) -> Path:
    """``source`` with its first tensor's record replaced by ``mebibytes`` MiB of deflated zero bytes (2 MB on
    disk), the zip written record by record (zipfile cannot take a stream deflated already)."""
    import zipfile
    import zlib

    assert zlib.decompress(_deflated_zeros(3), -15) == bytes(3 * 2**20)  # the stream inflates to what it claims
    mib, crc = bytes(2**20), 0
    for _ in range(mebibytes):
        crc = zlib.crc32(mib, crc)
    records = []  # (name, method, crc, data, inflated size)
    with zipfile.ZipFile(source) as src:
        for info in src.infolist():
            if info.filename.endswith("/data/0"):
                records.append((info.filename, zipfile.ZIP_DEFLATED, crc, _deflated_zeros(mebibytes),
                                mebibytes * 2**20))
            else:
                data = src.read(info)
                records.append((info.filename, zipfile.ZIP_STORED, zlib.crc32(data), data, len(data)))
    _write_zip(path, records)
    with zipfile.ZipFile(path) as bomb:  # a well-formed zip, as zipfile (and the checkpoint check) reads it
        assert sum(i.file_size for i in bomb.infolist()) > mebibytes * 2**20
    assert path.stat().st_size < 4 * 2**20
    return path


def _legacy_checkpoint(path: Path, pickled: bytes) -> Path:
    """``pickled`` as the object of a checkpoint in torch's format before zip (akamaster's files): torch's own
    first three pickles (magic number, protocol, system information), then ``pickled``, then no storage keys."""
    import io
    import pickle
    import pickletools

    import torch

    buf = io.BytesIO()
    torch.save([], buf, _use_new_zipfile_serialization=False)
    stream = io.BytesIO(buf.getvalue())
    for _ in range(3):
        for _op in pickletools.genops(stream):
            pass
    path.write_bytes(buf.getvalue()[:stream.tell()] + pickled + pickle.dumps([], protocol=2))
    return path


@pytest.fixture(scope="module")
def corpus(trained, tmp_path_factory):
    """name -> a hostile file made from the trained checkpoint."""
    import pickle
    import zlib

    import torch

    good, _ = trained
    folder = tmp_path_factory.mktemp("corpus")
    files = {}
    files["zip_bomb"] = _zip_bomb(good, folder / "bomb.pt")
    files["many_records"] = _write_zip(folder / "many.pt", [(f"many/data/{i}", 0, 0, b"", 0) for i in range(150_000)])
    pickled = b"\x80\x02]" + b"N" * 9 * 2**20 + b"."  # a list of 9,437,184 Nones: past the 8 MiB pickle limit
    files["big_pickle"] = _write_zip(folder / "big_pickle.pt", [("big/data.pkl", 0, zlib.crc32(pickled), pickled,
                                                                  len(pickled))])
    files["legacy_big_pickle"] = _legacy_checkpoint(folder / "legacy_big_pickle.th", pickled)
    files["code_zip"] = _save({"x": Evil()}, folder / "code.pt")
    files["code_legacy"] = folder / "code_legacy.th"  # torch's format before zip: its object is the 4th pickle
    torch.save({"x": Evil()}, files["code_legacy"], _use_new_zipfile_serialization=False)
    files["code_raw"] = folder / "code.pkl"
    files["code_raw"].write_bytes(pickle.dumps({"x": Evil()}, protocol=4))
    files["truncated"] = folder / "truncated.pt"
    files["truncated"].write_bytes(good.read_bytes()[:3000])
    p = _payload(good)
    p["spec"]["layers"] = [1_000_000_000, 1, 1]
    files["spec_bomb"] = _save(p, folder / "spec_bomb.pt")
    p = _payload(good)
    p["spec"]["name"] = "net\x1b]0;owned\x07\x1b[31m"
    files["escape_name"] = _save(p, folder / "escape_name.pt")
    p = _payload(good)
    p["extra"]["config"]["lr"] = "0.1"
    files["string_lr"] = _save(p, folder / "string_lr.pt")
    p = _payload(good)
    p["extra"]["config"]["epochs"] = 10**20  # a resumed run would train for ever
    files["endless_epochs"] = _save(p, folder / "endless_epochs.pt")
    p = _payload(good)
    del p["record"][-1]["wall_time_s"]
    files["record_lacks_key"] = _save(p, folder / "record_lacks_key.pt")
    p = _payload(good)
    del p["record"][0]["test_error"]
    files["record_no_test_error"] = _save(p, folder / "record_no_test_error.pt")
    p = _payload(good)
    p["extra"]["epoch"] = 7
    files["epoch_mismatch"] = _save(p, folder / "epoch_mismatch.pt")
    laughs = [0]
    for _ in range(30):  # 2**30 values to whatever walks it, from a few hundred bytes of pickle ("billion laughs")
        laughs = [laughs, laughs]
    p = _payload(good)
    p["spec"]["description"] = laughs
    files["laughs_spec"] = _save(p, folder / "laughs_spec.pt")
    p = _payload(good)
    p["record"][0]["notes"] = laughs
    files["laughs_record"] = _save(p, folder / "laughs_record.pt")
    p = _payload(good)
    p["state_dict"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                       for k, v in p["state_dict"].items()}
    files["nan_weights"] = _save(p, folder / "nan_weights.pt")
    return files


def test_hostile_checkpoints_are_refused_in_one_line(corpus, tmp_path):
    c = {k: str(v) for k, v in corpus.items()}
    cases = [
        {"argv": ["eval", c["zip_bomb"]]},
        {"argv": ["eval", c["code_zip"]]},
        {"argv": ["eval", c["code_raw"]]},
        {"argv": ["eval", c["truncated"]]},
        {"argv": ["eval", c["spec_bomb"]]},
        {"argv": ["eval", c["escape_name"]]},
        {"argv": ["train", "--resume", c["string_lr"], "-o", str(tmp_path / "a.pt")]},
        {"argv": ["train", "--resume", c["record_lacks_key"], "-o", str(tmp_path / "b.pt")]},
        {"argv": ["plot-record", c["record_no_test_error"], "-o", str(tmp_path / "r.png")]},
        {"argv": ["train", "--resume", c["epoch_mismatch"], "-o", str(tmp_path / "c.pt")]},
        {"argv": ["eval", c["nan_weights"], "--format", "json"]},
        {"argv": ["eval", c["zip_bomb"].replace("bomb", "missing")]},
        {"argv": ["params", "--from", c["laughs_spec"]]},
        {"argv": ["eval", c["many_records"]]},
        {"argv": ["eval", c["big_pickle"]]},
        {"argv": ["train", "--resume", c["laughs_record"], "-o", str(tmp_path / "d.pt")]},
        {"argv": ["eval", c["legacy_big_pickle"]]},
        {"argv": ["train", "--resume", c["endless_epochs"], "-o", str(tmp_path / "e.pt")]},
        {"argv": ["train", "--arch", "resnet20", "--dataset", "digits", "--epochs", "10001", "-o",
                  str(tmp_path / "f.pt")]},
        {"argv": ["eval", c["code_legacy"]]},
    ]
    r = run_cases(tmp_path, cases)
    assert_refused(r[0], "inflate", "limits")
    for result in r[1:3]:
        assert_refused(result, "could run code", "posix.system")
    assert_refused(r[3], "truncated or corrupt")
    assert_refused(r[4], "at most 20,000 blocks")
    assert_refused(r[5], "printable")
    assert_refused(r[6], "damaged", "lr")
    assert_refused(r[7], "lacks wall_time_s")
    assert_refused(r[8], "lacks test_error")
    assert_refused(r[9], "epoch 7")
    assert not any((tmp_path / n).exists() for n in ("a.pt", "b.pt", "c.pt", "r.png"))  # refused before work
    nan = r[10]
    assert nan["code"] == 0, nan["stderr"]
    report = json.loads(nan["stdout"], parse_constant=lambda word: pytest.fail(f"{word} is not strict JSON"))
    assert report["loss"] is None and report["error"] == pytest.approx(0.9, abs=0.2)
    assert "JSON shows null" in nan["stderr"]
    assert_refused(r[11], "no such checkpoint")
    for result in (r[12], r[15]):  # hung for hours (the spec's fields; --resume's copy of the record)
        assert_refused(result, "more than 2,000,000 values", "shared one")
    assert not (tmp_path / "d.pt").exists()
    assert_refused(r[13], "lists 150,000 records", "limit of 100,000")  # zipfile's parse of them took 600 MB
    assert_refused(r[14], "'big/data.pkl': 9,437,188", "8,388,608 for the pickle")
    assert_refused(r[16], "pickled part passes 8,388,608 bytes")  # torch.load took 4 s and 300 MB to build it
    assert_refused(r[17], "1 to 10,000", "checkpoint's when resuming", "21 digits")
    assert_refused(r[18], "10001 is not in the range 1<=x<=10000")  # typed: the option's own range
    assert not (tmp_path / "e.pt").exists() and not (tmp_path / "f.pt").exists()
    assert_refused(r[19], "could run code", "posix.system")  # was "corrupt": only the magic number was read
