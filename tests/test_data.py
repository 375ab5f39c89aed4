"""Datasets: synthetic is deterministic and file-free, digits is split and resized as documented, the CIFAR reader
reads the official python batches (written here by the test, in the official layout), --download checks MD5."""

import hashlib
import json
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
from cli_runner import run

from resnet_cli.data import DatasetError, DatasetInfo, augment_batch, load_dataset
from resnet_cli.data.cifar import CIFAR10, CIFAR100


# --------------------------------------------------------------------------- synthetic
def test_synthetic_is_deterministic_and_balanced():
    a, info = load_dataset("synthetic", "train", input_size=12, limit=200)
    b, _ = load_dataset("synthetic", "train", input_size=12, limit=200, seed=123)  # seed does not change the data
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.images.shape == (200, 3, 12, 12)
    counts = torch.bincount(load_dataset("synthetic", "train")[0].labels, minlength=10)
    assert counts.tolist() == [4096 // 10 + (1 if c < 4096 % 10 else 0) for c in range(10)]
    assert info.num_classes == 10 and info.in_channels == 3 and info.flip is False
    test, _ = load_dataset("synthetic", "test", input_size=12, limit=200)
    assert not torch.equal(test.images, a.images)  # different stream for the test split


def test_synthetic_channels_and_item_types():
    ds, info = load_dataset("synthetic", "test", input_size=8, in_channels=1, limit=3)
    x, y = ds[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and isinstance(y, int)
    assert info.mean == (0.0,) and info.std == (1.0,)


# --------------------------------------------------------------------------- digits
def test_digits_split_resize_and_normalisation():
    train, info = load_dataset("digits", "train", input_size=16)
    test, _ = load_dataset("digits", "test", input_size=16)
    assert (len(train), len(test)) == (1347, 450)  # 1,797 images, 75/25 stratified
    assert train.images.shape == (1347, 3, 16, 16)
    assert torch.equal(train.images[:, 0], train.images[:, 2])  # grey repeated to 3 channels
    # A quarter of each class, rounded half to even: class sizes 178, 182, 177, 183, 181, 182, 181, 179, 174, 180.
    assert torch.bincount(test.labels).tolist() == [44, 46, 44, 46, 45, 46, 45, 45, 44, 45]
    # Normalised with the training split's statistics of the 8x8 pixels: mean 0 at the native size.
    native, _ = load_dataset("digits", "train", input_size=8, in_channels=1)
    assert abs(float(native.images.mean())) < 1e-4 and abs(float(native.images.std()) - 1) < 1e-3
    assert info.flip is False and info.crop_padding == 2  # translation, but mirrored digits are other glyphs


def test_dataset_info_round_trips_through_json():
    _, info = load_dataset("digits", "test", input_size=16, limit=4)
    again = DatasetInfo.from_dict(json.loads(json.dumps(info.to_dict())))
    assert again == info


def test_unknown_dataset_says_did_you_mean():
    with pytest.raises(DatasetError, match="did you mean digits"):
        load_dataset("digit", "train")
    with pytest.raises(DatasetError, match="split"):
        load_dataset("digits", "validation")


def test_augment_batch_crops_and_flips_reproducibly():
    info = DatasetInfo("t", 10, 4, 1, (0.0,), (1.0,), crop_padding=1, flip=True)
    x = torch.arange(2 * 16, dtype=torch.float32).reshape(2, 1, 4, 4) + 1
    a = augment_batch(x, info, torch.Generator().manual_seed(5))
    b = augment_batch(x, info, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == x.shape
    # Every output is the input shifted by at most 1 pixel (zero fill) and maybe mirrored: its non-zero values
    # are a subset of the input's, at least 3x3 of them survive.
    for k in range(2):
        vals = set(a[k].flatten().tolist()) - {0.0}
        assert vals <= set(x[k].flatten().tolist()) and len(vals) >= 9
    no_flip = DatasetInfo("t", 10, 4, 1, (0.0,), (1.0,), crop_padding=0, flip=False)
    assert torch.equal(augment_batch(x, no_flip, torch.Generator()), x)


# --------------------------------------------------------------------------- CIFAR in the official format
def _write_cifar10(folder, n_per_batch=3):
    """The official layout: python-2-style pickles (protocol 2) of dicts with bytes keys."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(n_per_batch)]
        batches[name] = (data, labels)
        with open(folder / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * n_per_batch}, fh, protocol=2)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [b"airplane"] * 10, b"num_vis": 3072}, fh, protocol=2)
    return batches


def test_cifar10_reader_reads_the_official_layout(tmp_path):
    batches = _write_cifar10(tmp_path / "cifar-10-batches-py")
    train, info = load_dataset("cifar10", "train", data_dir=tmp_path)
    test, _ = load_dataset("cifar10", "test", data_dir=tmp_path)
    assert (len(train), len(test)) == (15, 3)
    assert train.labels.tolist() == [lab for k in range(1, 6) for lab in batches[f"data_batch_{k}"][1]]
    # Pixel (c, y, x) of image j is data[j, c*1024 + y*32 + x], normalised with the published CIFAR-10 stats.
    data = batches["test_batch"][0]
    x, _ = test[1]
    for c, y, xx in ((0, 0, 0), (1, 5, 7), (2, 31, 30)):
        raw = data[1, c * 1024 + y * 32 + xx] / 255.0
        assert float(x[c, y, xx]) == pytest.approx((raw - CIFAR10.mean[c]) / CIFAR10.std[c], abs=1e-5)
    assert info.num_classes == 10 and info.flip and info.crop_padding == 4


def test_cifar100_reader(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 4), ("test", 2)):
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": np.zeros((n, 3072), np.uint8), b"fine_labels": list(range(90, 90 + n)),
                         b"coarse_labels": [0] * n}, fh, protocol=2)
    ds, info = load_dataset("cifar100", "train", data_dir=tmp_path)
    assert len(ds) == 4 and ds.labels.tolist() == [90, 91, 92, 93] and info.num_classes == 100
    assert info.mean == CIFAR100.mean


def test_cifar_missing_and_tampered_files(tmp_path):
    with pytest.raises(DatasetError, match="--download"):
        load_dataset("cifar10", "test", data_dir=tmp_path)
    _write_cifar10(tmp_path / "cifar-10-batches-py")

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": []}, fh, protocol=2)
    with pytest.raises(DatasetError, match="refusing to load"):
        load_dataset("cifar10", "test", data_dir=tmp_path)
    assert not (tmp_path / "pwned").exists()


def _archive(tmp_path):
    _write_cifar10(tmp_path / "src" / "cifar-10-batches-py")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive


def test_cifar_download_checks_md5_and_unpacks(tmp_path, monkeypatch):
    archive = _archive(tmp_path)
    monkeypatch.setenv("RESNET_CLI_CIFAR10_URL", archive.as_uri())
    monkeypatch.setenv("RESNET_CLI_CIFAR10_MD5", "0" * 32)
    with pytest.raises(DatasetError, match="MD5"):
        load_dataset("cifar10", "test", data_dir=tmp_path / "data", download=True)
    assert not (tmp_path / "data" / "cifar-10-batches-py").exists()  # nothing unpacked from a bad archive
    monkeypatch.setenv("RESNET_CLI_CIFAR10_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    ds, _ = load_dataset("cifar10", "test", data_dir=tmp_path / "data", download=True)
    assert len(ds) == 3 and (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").is_file()
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["cifar-10-batches-py"]  # no temp files left


def test_cifar_download_offline_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_CLI_CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # discard port
    with pytest.raises(DatasetError, match="offline"):
        load_dataset("cifar10", "test", data_dir=tmp_path, download=True)


# --------------------------------------------------------------------------- imagefolder
def _write_images(root, classes=("cat", "dog"), n=3, size=(20, 14)):
    from PIL import Image

    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", size, (40 * c + i, 100, 200)).save(root / name / f"{i}.png")


def test_imagefolder_reads_class_folders(tmp_path):
    _write_images(tmp_path / "train")
    _write_images(tmp_path / "val", n=2)
    train, info = load_dataset("imagefolder", "train", data_dir=tmp_path, input_size=8)
    test, _ = load_dataset("imagefolder", "test", data_dir=tmp_path, input_size=8)
    assert (len(train), len(test), info.num_classes) == (6, 4, 2)
    x, y = test[1]
    assert x.shape == (3, 8, 8) and y == 1  # interleaved: cat 0, dog 0, cat 1, ...
    # Uniform colour survives resize and crop: red channel = (40*1 + 0)/255, ImageNet-normalised.
    assert float(x[0, 4, 4]) == pytest.approx((40 / 255 - 0.485) / 0.229, abs=1e-4)


def test_limit_takes_the_first_n_in_the_datasets_fixed_order(tmp_path):
    """What README and --help say of --limit N: the first N of the split in the dataset's fixed order; an image
    folder's classes taken in turn, CIFAR's in the order of its batch files, digits' and synthetic data's in a
    fixed shuffle (the same whatever the seed)."""
    _write_images(tmp_path / "folder" / "train", classes=("a", "b", "c"), n=2)
    kept, _ = load_dataset("imagefolder", "train", data_dir=tmp_path / "folder", input_size=8, limit=4)
    assert [kept[i][1] for i in range(len(kept))] == [0, 1, 2, 0]  # a's first, b's first, c's first, a's second
    _write_cifar10(tmp_path / "cifar" / "cifar-10-batches-py")
    every, _ = load_dataset("cifar10", "train", data_dir=tmp_path / "cifar")
    first, _ = load_dataset("cifar10", "train", data_dir=tmp_path / "cifar", limit=4)
    assert first.labels.tolist() == every.labels.tolist()[:4] == [0, 1, 2, 1]  # data_batch_1's 3, data_batch_2's 1st
    for name in ("digits", "synthetic"):
        every, _ = load_dataset(name, "test", input_size=8)
        first, _ = load_dataset(name, "test", input_size=8, limit=50, seed=7)
        assert torch.equal(first.labels, every.labels[:50]) and len(set(first.labels.tolist())) == 10, name


def test_imagefolder_flat_layout_and_errors(tmp_path):
    _write_images(tmp_path / "val")  # ImageNet validation layout: the class folders directly
    ds, _info = load_dataset("imagefolder", "test", data_dir=tmp_path / "val", input_size=8, in_channels=1)
    assert len(ds) == 6 and ds[0][0].shape == (1, 8, 8)
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("imagefolder", "test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        load_dataset("imagefolder", "test", data_dir=tmp_path / "empty")


def test_cli_unknown_dataset_exits_2():
    result = run("train", "--arch", "cifar_resnet8", "--dataset", "cifar", "--epochs", "1")
    assert result.exit_code == 2
    assert "did you mean cifar10, cifar100" in result.output and "Traceback" not in result.output
