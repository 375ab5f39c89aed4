"""A full disk while saving a checkpoint, writing a study or in the middle of one: one line, and nothing finished
is lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_runner import run_main


class FullDisk:
    """A file on a disk with ``room`` bytes left: a write past it fails as on a full disk (ENOSPC)."""

    def __init__(self, real, room: int) -> None:
        self.real, self.room, self.written = real, room, 0

    def write(self, data):
        fits = max(0, self.room - self.written)
        if len(data) > fits:  # what fits is written, then the disk is full
            import errno

            self.real.write(data[:fits])
            self.written += fits
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(data)
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()



def _fill_the_disk_after(monkeypatch, saves: int, room: int, kinds=("wb",), of: str = "") -> list[Path]:
    """After ``saves`` atomic writes, every later one fails once ``room`` bytes are written (``kinds``: the open
    modes it applies to; ``of``: only writes of files with this in their name). Returns the files whose write
    failed (their temporary files)."""
    from resnet_cli import fileio

    real_fdopen, seen, failed = os.fdopen, [0], []

    def fdopen(fd, mode="r", *args, **kwargs):
        fh = real_fdopen(fd, mode, *args, **kwargs)
        name = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if mode not in kinds or of not in name.name:
            return fh
        seen[0] += 1
        if seen[0] <= saves:
            return fh
        failed.append(name)
        return FullDisk(fh, room)

    monkeypatch.setattr(fileio.os, "fdopen", fdopen)
    return failed


def _torch_fails_writing(monkeypatch, saves: int) -> None:
    """After ``saves`` checkpoints, torch.save writes a little and then fails as its zip writer does on a full
    disk: a RuntimeError, not an OSError."""
    import torch

    real_save, seen = torch.save, [0]

    def save(obj, f, *args, **kwargs):
        seen[0] += 1
        if seen[0] <= saves:
            return real_save(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04 half a zip")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize("failure", ["ENOSPC at once", "ENOSPC mid-zip", "torch RuntimeError"])
def test_a_full_disk_while_saving_a_checkpoint_keeps_the_last_one(tmp_path, monkeypatch, capsys, failure):
    """Epoch 1's checkpoint is written; epoch 2's save meets a full disk (the first write fails: OSError; one
    write in: torch reports "unexpected pos" as a RuntimeError; torch's own writer fails). One line, exit 2, no
    temporary file, and epoch 1's checkpoint byte for byte as it was."""
    from resnet_cli.checkpoint import load_checkpoint

    run = tmp_path / "run.pt"
    kept = {}
    if failure == "torch RuntimeError":
        _torch_fails_writing(monkeypatch, saves=1)
    else:
        _fill_the_disk_after(monkeypatch, saves=1, room=0 if failure == "ENOSPC at once" else 5000)
    import torch

    real_save = torch.save

    def snapshot_then_save(obj, f, *args, **kwargs):  # what epoch 1 left, read just before epoch 2 saves
        if run.exists():
            kept.setdefault("bytes", run.read_bytes())
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", snapshot_then_save)
    code, err = run_main(monkeypatch, capsys, [
        "train", "--arch", "cifar_resnet8", "--widths", "8,16,32", "--set", "stem_width=8", "--input-size", "12",
        "--epochs", "2", "--limit", "64", "--test-limit", "32", "--no-best", "-o", str(run), "--quiet"])
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"Error: cannot write the checkpoint {run}: "), err
    assert ("No space left on device" if failure == "ENOSPC at once" else "is the disk full?") in err
    assert err.endswith("run.pt keeps what it held before\n")
    assert "Traceback" not in err
    assert "bytes" in kept and run.read_bytes() == kept["bytes"]
    assert len(load_checkpoint(run).record) == 1  # epoch 1, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no temporary file, no lock


def test_a_full_disk_while_writing_a_study_keeps_the_finished_one(trained, tmp_path, monkeypatch, capsys):
    """A finished study in --out; its --resume (nothing left to measure) rewrites the results on a full disk:
    one line, exit 2, every file of the study byte for byte as it was, no temporary file, no lock."""
    ckpt, _ = trained
    out = tmp_path / "study"
    study = ["lesion", str(ckpt), "--limit", "8", "--experiments", "single", "--out", str(out), "--quiet",
             "--format", "json"]
    code, err = run_main(monkeypatch, capsys, study)
    assert code == 0, err
    kept = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"lesion.json", "measurements.json", "measurements.csv", "single.png"} <= set(kept)
    failed = _fill_the_disk_after(monkeypatch, saves=0, room=10, kinds=("w", "wb"))
    code, err = run_main(monkeypatch, capsys, [*study, "--resume"])
    assert code == 2, err
    assert err.splitlines() == ["Error: no space left on the device (free some space and run again)"], err
    assert failed  # the disk was full for a write of the study
    assert {p.name: p.read_bytes() for p in out.iterdir()} == kept




def test_a_full_disk_in_the_middle_of_a_study_keeps_what_was_measured(trained, tmp_path, monkeypatch, capsys):
    """The disk fills after the first chunk was written: one line, exit 2, measurements.json holds that chunk whole
    (no temporary file), and --resume on a disk with room again ends with the uninterrupted study's numbers."""
    ckpt, _ = trained
    options = [str(ckpt), "--limit", "8", "--experiments", "single,multi", "--max-k", "2", "--samples", "2",
               "--quiet", "--format", "json"]
    code, err = run_main(monkeypatch, capsys, ["lesion", *options, "--out", str(tmp_path / "whole")])
    assert code == 0, err
    whole = json.loads((tmp_path / "whole" / "lesion.json").read_text())
    out = tmp_path / "cut"
    with monkeypatch.context() as full:
        # the study's state written empty, then after chunk 1; after chunk 2 its first 100 bytes fit
        failed = _fill_the_disk_after(full, saves=2, room=100, kinds=("w",), of="measurements.json")
        code, err = run_main(full, capsys, ["lesion", *options, "--out", str(out)])
    assert code == 2, err
    assert err.splitlines() == ["Error: no space left on the device (free some space and run again)"], err
    assert failed and not any(f.exists() for f in failed)  # the half-written state was removed
    kept = json.loads((out / "measurements.json").read_text())
    assert kept["done"] and kept["partial"] is None  # the first chunk, whole
    assert {p.name for p in out.iterdir()} <= {"measurements.csv", "measurements.json"}  # no temp file, no lock
    code, err = run_main(monkeypatch, capsys, ["lesion", *options, "--out", str(out), "--resume"])
    assert code == 0, err
    resumed = json.loads((out / "lesion.json").read_text())
    for key in ("baseline_error", "single", "multi"):
        assert resumed[key] == whole[key]
