"""Training resumed from what was written: a stop at an epoch's last step resumes to the uninterrupted run;
--resume keeps the data and removes a killed save's temporary file."""

from __future__ import annotations

import json

import pytest
from hostile_runner import TINY, assert_refused, dead_pid, run_cases


def _tiny_train(tmp_path, name, **kw):
    from resnet_cli import get_spec
    from resnet_cli.training import TrainConfig, train

    config = TrainConfig(epochs=2, batch_size=32, augment=kw.pop("augment", True))
    return train(get_spec("cifar_resnet8", **TINY) if "resume" not in kw else None, "synthetic", config,
                 device="cpu", train_limit=None if "resume" in kw else 160, test_limit=None if "resume" in kw else 32,
                 checkpoint=tmp_path / name, **kw)


@pytest.mark.parametrize("augment", [True, False])
def test_a_stop_at_an_epochs_last_step_resumes_to_the_uninterrupted_run(tmp_path, augment):
    """160 images in batches of 32: 5 steps an epoch. A stop requested at step 5 of epoch 1 (what Ctrl-C in the
    last step does) used to save a checkpoint whose resume stacked an empty batch (or, without augmentation, saw
    the loss of an empty batch: "nan")."""
    import torch

    from resnet_cli.checkpoint import load_checkpoint
    from resnet_cli.training import TrainingInterrupted

    full = _tiny_train(tmp_path, "full.pt", augment=augment)

    def stop_at_last_step(trainer, epoch, step):
        if (epoch, step) == (0, 5):
            trainer.request_stop()

    with pytest.raises(TrainingInterrupted):
        _tiny_train(tmp_path, "cut.pt", augment=augment, on_step=stop_at_last_step)
    assert (load_checkpoint(tmp_path / "cut.pt").extra["step"]) == 5
    resumed = _tiny_train(tmp_path, "cut.pt", augment=augment, resume=tmp_path / "cut.pt")
    drop = ("train_time_s", "epoch_time_s", "wall_time_s", "images_per_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.record] == \
        [{k: v for k, v in r.items() if k not in drop} for r in full.record]
    a, b = (load_checkpoint(tmp_path / n).state_dict for n in ("full.pt", "cut.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_keeps_data_and_no_best_and_removes_a_killed_saves_temp_file(tmp_path):
    first = tmp_path / "run.pt"
    stale = tmp_path / f".run.pt.{dead_pid()}.abcd1234.tmp"  # what SIGKILL during a save leaves
    cases = [
        {"argv": ["train", "--arch", "cifar_resnet8", "--widths", "8,16,32", "--set", "stem_width=8",
                  "--input-size", "12", "--epochs", "1", "--limit", "64", "--test-limit", "32", "--no-best",
                  "-o", str(first), "--format", "json"]},
        {"argv": ["train", "--resume", str(first), "--limit", "32"]},
        {"argv": ["train", "--resume", str(first), "--epochs", "2", "--format", "json"],
         "files": {str(stale): "half a checkpoint"}},
    ]
    r = run_cases(tmp_path, cases)
    assert r[0]["code"] == 0, r[0]["stderr"]
    assert_refused(r[1], "--limit 32", "keeps its data")
    assert r[2]["code"] == 0, r[2]["stderr"]
    resumed = json.loads(r[2]["stdout"])
    assert [e["train_images"] for e in resumed["record"]] == [64, 64]  # the first 64 images, both epochs
    assert resumed["best_checkpoint"] is None and not (tmp_path / "run.best.pt").exists()
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.glob(".run.pt*")) == []  # no lock or temporary file left
