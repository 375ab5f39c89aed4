"""Hostile data files (CIFAR batches, image folders, image bombs) and studies too large: refused before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_runner import assert_refused, run_cases


def _cifar_folder(root: Path, batch: dict) -> Path:
    """A cifar-10-batches-py folder whose test_batch is ``batch`` (pickled as the official files are: bytes
    keys) and whose train batches are one valid image each."""
    import pickle

    import numpy as np

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    valid = {b"data": np.zeros((1, 3072), dtype=np.uint8), b"labels": [0]}
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(valid, protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps({k.encode(): v for k, v in batch.items()}, protocol=2))
    return root


def _png(path: Path, width: int, height: int) -> Path:
    """A PNG of width x height black pixels, a few hundred bytes however large (zlib squeezes the zeros)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" + bytes(width)  # filter byte + grey pixels
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_hostile_data_is_refused_before_any_work(trained, tmp_path):
    import numpy as np

    ckpt, _ = trained
    row = np.zeros(3072, dtype=np.uint8)
    batches = {
        "refs": {"data": [row] * 200_000, "labels": [0] * 200_000},  # 800 kB of pickle, 600 MB as an array
        "int_labels": {"data": np.zeros((2, 3072), dtype=np.uint8), "labels": 3},
        "str_data": {"data": "pixels", "labels": [0]},
        "pixel_300": {"data": np.full((1, 3072), 300, dtype=np.int64), "labels": [0]},
        "objects": {"data": np.array([[None] * 3072], dtype=object), "labels": [0]},
        "label_99": {"data": np.zeros((1, 3072), dtype=np.uint8), "labels": [99]},
    }
    folders = {name: _cifar_folder(tmp_path / name, batch) for name, batch in batches.items()}
    images = tmp_path / "images"
    for split, classes in (("train", ("cat", "dog")), ("test", ("cat", "emu"))):
        for c in classes:
            _png(images / split / c / "a.png", 16, 16)
    strip = _png(tmp_path / "strip" / "x" / "strip.png", 1, 60_000)
    huge = _png(tmp_path / "huge" / "x" / "huge.png", 14_000, 14_000)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    evaluate = ["eval", str(ckpt), "--dataset"]
    cases = [{"argv": [*evaluate, "cifar10", "--data-dir", str(folders[name])]} for name in batches]
    cases += [
        {"argv": [*evaluate, "imagefolder", "--data-dir", str(images), "--input-size", "12"]},
        {"argv": [*evaluate, "imagefolder", "--data-dir", str(strip.parent.parent), "--input-size", "224"]},
        {"argv": [*evaluate, "imagefolder", "--data-dir", str(huge.parent.parent)]},
        {"argv": [*evaluate, "cifar10", "--download"], "env": {"RESNET_CLI_DATA": str(a_file)}},
        {"argv": ["eval", str(ckpt), "--input-size", "8192"]},
        {"argv": ["lesion", str(ckpt), "--experiments", "reorder", "--samples", "1000000"]},
        {"argv": ["train", "--arch", "cifar_resnet20", "--input-size", "4096", "--device", "cpu", "-o",
                  str(tmp_path / "big.pt")]},
    ]
    r = run_cases(tmp_path, cases)
    assert_refused(r[0], "uint8 array", "not a list")
    assert_refused(r[1], "expected 2 labels", "got int")
    assert_refused(r[2], "not a str")
    assert_refused(r[3], "not a int64 array")
    assert_refused(r[4], "not a object array")
    assert_refused(r[5], "labels outside 0..9")
    assert_refused(r[6], "has classes", "emu")
    assert_refused(r[7], "resized for --input-size 224", "limit of 67,108,864")
    assert_refused(r[8], "huge.png")
    assert_refused(r[9], "is a file, not a folder")
    assert_refused(r[10], "GiB of memory")
    assert_refused(r[11], "--samples", "10000")
    assert_refused(r[12], "training cifar_resnet20", "GiB of memory")
    assert not (tmp_path / "big.pt").exists()


def test_a_lesion_study_too_large_is_refused_before_a_sample_is_drawn():
    from resnet_cli.analysis.lesion import plan_chunks
    from resnet_cli.errors import ResnetCliError

    with pytest.raises(ResnetCliError, match=r"up to 200,000 measurements .* limit is 100,000"):
        plan_chunks([None] * 54, ["multi", "reorder"], max_k=10, samples=10_000, seed=0)  # ResNet-110's 54 blocks
