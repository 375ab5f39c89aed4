"""Hostile paths (folders, FIFOs, devices, names too long): refused before any work; path limits count bytes and
leave room for the temporary file."""

from __future__ import annotations

import os

import pytest
from hostile_runner import assert_refused, run_cases


def test_hostile_paths_are_refused_before_any_work(trained, tmp_path):
    """Names past the file system's 255 bytes, a FIFO or a device where a file is read (reading /dev/zero never
    ends; opening a FIFO blocks), a symlink loop, a folder where a file is expected, 100,000 workers: one line
    each, and an output refused before a training starts, not when its finished checkpoint is saved."""
    ckpt, _ = trained
    long = "a" * 300
    beside_temp = "b" * 240  # fits 255 bytes, but its temporary file ".NAME.PID.XXXXXXXX.tmp" would not
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    train = ["train", "--arch", "cifar_resnet8", "--widths", "8,16,32", "--set", "stem_width=8", "--input-size",
             "12", "--epochs", "1", "--limit", "32", "--test-limit", "16", "-o"]
    made = tmp_path / "outputs"
    cases = [
        {"argv": [*train, str(made / f"{long}.pt")]},
        {"argv": [*train, str(made / f"{beside_temp}.pt")]},
        {"argv": [*train, str(made / "net.pt"), "--best", str(made / f"{beside_temp}.pt")]},
        {"argv": ["train", "--resume", str(ckpt), "--epochs", "3", "-o", str(made / long / "net.pt")]},
        {"argv": ["lesion", str(ckpt), "--limit", "8", "--out", str(made / long)]},
        {"argv": ["eval", str(tmp_path / f"{long}.pt")]},
        {"argv": ["params", "--from", str(tmp_path / f"{long}.pt")]},
        {"argv": ["eval", str(ckpt), "--dataset", "cifar10", "--data-dir", str(tmp_path / long)]},
        {"argv": ["eval", str(fifo)]},
        {"argv": ["lesion", "/dev/zero", "--limit", "8"]},
        {"argv": ["params", "--from", "/dev/zero"]},
        {"argv": ["plot-lesion", str(fifo), "-o", str(made / "plots")]},
        {"argv": ["eval", str(loop)]},
        {"argv": ["eval", str(ckpt), "--dataset", "imagefolder", "--data-dir", str(loop)]},
        {"argv": ["train", "--resume", str(tmp_path)]},
        {"argv": ["eval", str(tmp_path / "x\udcff\udcfe.pt")]},  # bytes that are not UTF-8, as a shell passes them
        {"argv": ["eval", str(ckpt), "--workers", "100000"]},
        {"argv": [*train, str(fifo)]},  # the finished run's rename would have replaced the FIFO (as root: /dev/null)
    ]
    r = run_cases(tmp_path, cases)
    assert_refused(r[0], "--output", "at most 255 bytes", "has 303")
    assert_refused(r[1], "--output", "at most 233 bytes", "22 for its temporary file", "has 243")
    assert_refused(r[2], "--best", "at most 233 bytes")
    assert_refused(r[3], "--output", "at most 255 bytes", "has 300")
    assert_refused(r[4], "--out", "at most 255 bytes")
    for result in r[5:7]:
        assert_refused(result, "a checkpoint", "at most 255 bytes")
    assert_refused(r[7], "--data-dir", "at most 255 bytes")
    assert_refused(r[8], "fifo.pt is a named pipe (FIFO), not a regular file")
    for result in r[9:11]:
        assert_refused(result, "/dev/zero is a device, not a regular file")
    assert_refused(r[11], "named pipe")
    assert_refused(r[12], f"cannot read {loop}")
    assert_refused(r[13], "--data-dir", "cannot be resolved")
    assert_refused(r[14], "is a folder, not a checkpoint file")
    assert_refused(r[15], "no such checkpoint", "x\\udcff\\udcfe.pt")
    assert_refused(r[16], "--workers", "0<=x<=64")
    assert_refused(r[17], "--output", "fifo.pt is a named pipe (FIFO), not a regular file")
    assert fifo.is_fifo()
    assert not made.exists() or not any(made.rglob("*.pt"))  # nothing trained, nothing saved
    for result in r[:4]:
        assert result["seconds"] < 5, result  # refused before torch trains anything




def test_path_limits_count_bytes_and_leave_room_for_the_temporary_file(tmp_path):
    from resnet_cli.fileio import TEMP_NAME_EXTRA, atomic_write_text
    from resnet_cli.limits import LimitError, check_path_length

    check_path_length("a" * 255, "--out")
    check_path_length("/".join(["d" * 255] * 15), "--out")  # 15 x 256 - 1 = 3839 bytes
    for bad, words in [("é" * 128, "has 256"), ("/".join(["d" * 255] * 17), "a path is at most 4,095 bytes")]:
        with pytest.raises(LimitError, match=words):
            check_path_length(bad, "--out")  # 'é' is two bytes in UTF-8
    fits = "a" * (255 - TEMP_NAME_EXTRA)
    check_path_length(fits, "--output", reserve=TEMP_NAME_EXTRA)
    with pytest.raises(LimitError, match="at most 233 bytes"):
        check_path_length(fits + "a", "--output", reserve=TEMP_NAME_EXTRA)
    atomic_write_text(tmp_path / fits, "whole")  # the longest name allowed, with its real temporary file
    assert (tmp_path / fits).read_text() == "whole"


def test_an_output_that_is_a_device_is_refused_not_replaced():
    """As root, a training's atomic rename onto `-o /dev/null` would replace the device node with a checkpoint."""
    from resnet_cli.errors import ResnetCliError
    from resnet_cli.fileio import check_writable

    for device in ("/dev/null", "/dev/full"):
        with pytest.raises(ResnetCliError, match=r"is a device, not a regular file"):
            check_writable(device, "--output")
