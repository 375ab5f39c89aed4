"""Training: a tiny net learns the synthetic task in seconds, same seed -> same weights, an interrupted run
resumed ends exactly where the uninterrupted run ends, and the CLI's train/eval/plot-record work end to end."""

import json
import os
import signal

import pytest
import torch
from cli_runner import run

from resnet_cli import get_spec
from resnet_cli.checkpoint import load_checkpoint
from resnet_cli.errors import ResnetCliError
from resnet_cli.training import TrainConfig, Trainer, TrainingInterrupted, train

TINY = ["--arch", "cifar_resnet8", "--widths", "8,16,32", "--set", "stem_width=8", "--input-size", "12"]


def tiny_spec(**kw):
    return get_spec("cifar_resnet8", widths="8,16,32", stem_width=8, input_size=12, **kw)


def quick(**kw):
    base = dict(epochs=2, batch_size=32, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def test_tiny_net_learns_synthetic_data():
    result = train(tiny_spec(), "synthetic", quick(epochs=3), device="cpu", train_limit=512, test_limit=256)
    accuracy = 1 - result.record[-1]["test_error"]
    assert accuracy > 0.4, result.record  # chance is 0.1
    assert result.record[-1]["train_loss"] < result.record[0]["train_loss"]
    assert [r["lr"] for r in result.record] == [0.1, 0.1, 0.001]  # drops at round(1.5)=2 and round(2.25)=2
    # every epoch holds the fields of the record's schema (checkpoint/format.py), and counts that add up
    from resnet_cli.checkpoint import RECORD_FIELDS

    assert all(tuple(r) == RECORD_FIELDS for r in result.record)
    assert all((r["train_images"], r["test_images"]) == (512, 256) for r in result.record)
    last = result.record[-1]
    assert last["test_error"] == (256 - last["test_correct"]) / 256
    assert last["wall_time_s"] == pytest.approx(sum(r["epoch_time_s"] for r in result.record))


def test_lr_schedule_is_the_papers_step_schedule():
    cfg = TrainConfig(epochs=160)  # He et al. 2015: /10 at 50% and 75% of training
    assert cfg.milestone_epochs() == [80, 120]
    assert [cfg.lr_at(e) for e in (0, 79, 80, 119, 120, 159)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert (cfg.momentum, cfg.weight_decay, cfg.batch_size) == (0.9, 1e-4, 128)


def _run(tmp_path, name, **kw):
    return train(tiny_spec(), "synthetic", quick(**kw), device="cpu", train_limit=160, test_limit=64,
                 checkpoint=tmp_path / name)


def _without_times(record):
    return [{k: v for k, v in r.items() if "time" not in k and k != "images_per_s"} for r in record]


def test_same_seed_same_weights_and_record(tmp_path):
    a, b = _run(tmp_path, "a.pt"), _run(tmp_path, "b.pt")
    assert _without_times(a.record) == _without_times(b.record)
    sa, sb = load_checkpoint(tmp_path / "a.pt").state_dict, load_checkpoint(tmp_path / "b.pt").state_dict
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = _run(tmp_path, "c.pt", seed=1)
    assert any(not torch.equal(sa[k], load_checkpoint(tmp_path / "c.pt").state_dict[k]) for k in sa)
    assert c.record[0]["train_loss"] != a.record[0]["train_loss"]


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    full = _run(tmp_path, "full.pt")

    def stop_mid_second_epoch(trainer, epoch, step):
        if epoch == 1 and step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: finish the step, save, stop

    with pytest.raises(TrainingInterrupted, match="resumable checkpoint written") as info:
        train(tiny_spec(), "synthetic", quick(), device="cpu", train_limit=160, test_limit=64,
              checkpoint=tmp_path / "cut.pt", on_step=stop_mid_second_epoch)
    assert info.value.exit_code == 130
    saved = load_checkpoint(tmp_path / "cut.pt")
    assert saved.extra["interrupted"] and (saved.extra["epoch"], saved.extra["step"]) == (1, 2)
    assert len(saved.record) == 1
    resumed = train(None, "synthetic", quick(), device="cpu", checkpoint=tmp_path / "cut.pt",
                    resume=tmp_path / "cut.pt")
    assert resumed.resumed_from_epoch == 1
    assert _without_times(resumed.record) == _without_times(full.record)
    a, b = load_checkpoint(tmp_path / "full.pt").state_dict, load_checkpoint(tmp_path / "cut.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_request_stop_without_checkpoint_says_nothing_saved():
    def stop(trainer, epoch, step):
        trainer.request_stop()

    with pytest.raises(TrainingInterrupted, match="nothing was saved"):
        train(tiny_spec(), "synthetic", quick(), device="cpu", train_limit=96, test_limit=32, on_step=stop)


def test_amp_only_on_cuda_and_stochastic_depth_spec_kept(tmp_path):
    spec = tiny_spec(stochastic_depth=0.5)
    from resnet_cli.data import load_dataset
    from resnet_cli.models import build_model

    ds, info = load_dataset("synthetic", "test", input_size=12, limit=8)
    trainer = Trainer(build_model(spec), spec, ds, ds, info, quick(amp=True), device="cpu")
    assert trainer.use_amp is False and trainer.scaler is None
    result = train(spec, "synthetic", quick(epochs=1), device="cpu", train_limit=64, test_limit=32,
                   checkpoint=tmp_path / "sd.pt")
    assert load_checkpoint(tmp_path / "sd.pt").spec.stochastic_depth == 0.5 == result.spec.stochastic_depth


def test_cli_train_eval_plot(tmp_path):
    ckpt, plot = tmp_path / "ckpt.pt", tmp_path / "record.png"
    result = run("train", *TINY, "--dataset", "digits", "--epochs", "1", "-b", "64", "--limit",
                 "256", "--test-limit", "64", "-o", ckpt, "--plot", plot, "--device",
                 "cpu", "-q", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["arch"] == "cifar_resnet8" and doc["dataset"]["name"] == "digits" and doc["epochs"] == 1
    assert doc["config"]["lr"] == 0.1 and doc["checkpoint"] == str(ckpt)
    assert (tmp_path / "ckpt.best.pt").is_file() and plot.read_bytes()[:4] == b"\x89PNG"
    result = run("eval", ckpt, "--format", "json", "--limit", "64", "--device", "cpu")
    assert result.exit_code == 0, result.output
    ev = json.loads(result.stdout)
    assert ev["images"] == 64 and ev["error"] == pytest.approx(1 - ev["accuracy"])
    assert ev["error"] == pytest.approx(doc["record"][0]["test_error"])  # the same 64 test images
    result = run("plot-record", ckpt, tmp_path / "ckpt.best.pt", "-o",
                 tmp_path / "two.svg", "-q")
    assert result.exit_code == 0 and (tmp_path / "two.svg").read_text().lstrip().startswith("<?xml")


def test_cli_train_placement_and_shortcut_mode_round_trip(tmp_path):
    """train --placement/--shortcut-mode build the trained net, the checkpoint keeps them, and eval rebuilds that
    net: the same spec read back, the record's error on the same test images, the logits of the spec built anew."""
    from resnet_cli.models import build_model

    ckpt = tmp_path / "preact.pt"
    result = run("train", *TINY, "--placement", "full-preact", "--shortcut-mode", "conv",
                 "--epochs", "1", "-b", "32", "--limit", "64", "--test-limit", "32", "-o",
                 ckpt, "--no-best", "--device", "cpu", "-q", "--format", "json")
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout)
    wanted = tiny_spec(placement="full_preact", shortcut_mode="conv")
    saved = load_checkpoint(ckpt)
    assert saved.spec == wanted and (saved.spec.placement, saved.spec.shortcut_mode) == ("full_preact", "conv")
    assert any(".downsample." in key for key in saved.state_dict)  # conv shortcuts: 1x1 projections on every block
    result = run("eval", ckpt, "--limit", "32", "--device", "cpu", "--format", "json")
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.stdout)
    assert evaluated["overrides"]["placement"] == "full_preact" and evaluated["overrides"]["shortcut_mode"] == "conv"
    assert evaluated["images"] == 32 and evaluated["error"] == pytest.approx(trained["record"][0]["test_error"])
    fresh = build_model(wanted).eval()
    fresh.load_state_dict(saved.state_dict)
    images = torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(saved.build_model()(images), fresh(images))


def test_cli_train_needs_arch_or_resume():
    result = run("train", "--epochs", "1")
    assert result.exit_code == 2 and "--arch" in result.output


def test_trains_from_files_cifar_and_imagefolder(tmp_path):
    """The uint8 CIFAR path (crop + flip) and the DataLoader path (Pillow image folders) both train."""
    from test_data import _write_cifar10, _write_images

    _write_cifar10(tmp_path / "c" / "cifar-10-batches-py", n_per_batch=8)
    spec = get_spec("cifar_resnet8", widths="4,8,16", stem_width=4)
    result = train(spec, "cifar10", quick(epochs=1, batch_size=16), device="cpu", data_dir=str(tmp_path / "c"),
                   checkpoint=tmp_path / "c.pt")
    assert result.record[0]["train_images"] == 40 and result.dataset.flip
    assert load_checkpoint(tmp_path / "c.pt").dataset.source == str((tmp_path / "c").resolve())
    _write_images(tmp_path / "f" / "train")
    _write_images(tmp_path / "f" / "test", n=2)
    result = train(spec.replace(input_size=8), "imagefolder", quick(epochs=1, batch_size=4), device="cpu",
                   data_dir=str(tmp_path / "f"))
    assert result.spec.num_classes == 2 and result.record[0]["test_images"] == 4
    assert "num_classes set to 2" in result.notes[0]


def test_sync_bn_is_recorded_and_kept_by_resume(tmp_path, monkeypatch):
    """--sync-bn is part of the run's recorded config: --resume keeps it, refuses to be told it, and says so when
    the resumed run could not have it (under torchrun on the CPU)."""
    import torch

    ckpt = tmp_path / "sb.pt"
    with pytest.raises(ResnetCliError, match="this run is one process"):  # nothing to share batch norm with
        train(tiny_spec(), "synthetic", quick(epochs=1, sync_bn=True), device="cpu", train_limit=64,
              test_limit=32, checkpoint=ckpt)
    assert not ckpt.exists()
    first = train(tiny_spec(), "synthetic", quick(epochs=1), device="cpu", train_limit=64, test_limit=32,
                  checkpoint=ckpt)
    assert first.config.sync_bn is False and load_checkpoint(ckpt).extra["config"]["sync_bn"] is False
    payload = torch.load(ckpt, weights_only=True)  # as a run under torchrun on GPUs with --sync-bn records it
    payload["extra"]["config"]["sync_bn"] = True
    torch.save(payload, ckpt)
    resumed = train(None, "synthetic", quick(epochs=2), device="cpu", checkpoint=ckpt, resume=ckpt)
    assert resumed.config.sync_bn and load_checkpoint(ckpt).extra["config"]["sync_bn"] is True
    result = run("train", "--resume", ckpt, "--epochs", "3", "--sync-bn")
    assert result.exit_code == 2 and "--sync-bn: not with --resume" in result.output
    monkeypatch.setenv("WORLD_SIZE", "2")  # as under torchrun; refused before any process group is joined
    with pytest.raises(ResnetCliError, match="the checkpoint's run uses --sync-bn, but SyncBatchNorm works on CUDA"):
        train(None, "synthetic", quick(epochs=3), device="cpu", resume=ckpt, distributed=True)


# --------------------------------------------------------------------------- resuming damaged state
@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    """The payload of a checkpoint written by `train` after one epoch (its momentum buffers are set)."""
    path = tmp_path_factory.mktemp("one_epoch") / "net.pt"
    train(tiny_spec(), "synthetic", quick(epochs=1), device="cpu", train_limit=64, test_limit=32, checkpoint=path)
    return torch.load(path, weights_only=True)


def _wrong_momentum_shape(payload):
    state = payload["extra"]["optimizer"]["state"]
    state[0]["momentum_buffer"] = torch.zeros(3)  # conv1 is 8x3x3x3: SGD failed at its first step
    return "the momentum buffer of conv1.weight is (3,); its weight is (8, 3, 3, 3)"


def _extra_is_a_list(payload):
    payload["extra"] = [payload["extra"]]  # was: AttributeError: 'list' object has no attribute 'get'
    return "its extra state is a list, not a mapping"


def _state_of_a_parameter_not_there(payload):
    payload["extra"]["optimizer"]["state"][10_000] = {"momentum_buffer": torch.zeros(1)}
    return "optimizer state for parameter '10000'"


def _groups_missing_parameters(payload):
    payload["extra"]["optimizer"]["param_groups"][0]["params"] = [0, 1]
    return "do not name the network's"


def _rng_of_another_kind(payload):
    payload["extra"]["rng_cpu"] = torch.zeros(4)  # float, not torch's byte state
    return "random number generator"


@pytest.mark.parametrize("damage", [_wrong_momentum_shape, _extra_is_a_list, _state_of_a_parameter_not_there,
                                    _groups_missing_parameters, _rng_of_another_kind])
def test_resume_of_damaged_state_is_one_error_line_before_training(tmp_path, one_epoch, damage):
    import copy

    payload = copy.deepcopy(one_epoch)
    expected = damage(payload)
    path = tmp_path / "damaged.pt"
    torch.save(payload, path)
    result = run("train", "--resume", path, "--epochs", "2", "-o",
                 tmp_path / "out.pt")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "cannot be resumed" in lines[0], lines
    assert expected in lines[0], lines[0]
    assert not (tmp_path / "out.pt").exists()  # refused before an epoch ran


def test_an_undamaged_checkpoint_passes_the_resume_checks(tmp_path, one_epoch):
    from resnet_cli.training import check_resumable, check_resumable_tensors

    path = tmp_path / "good.pt"
    torch.save(one_epoch, path)
    state = load_checkpoint(path)
    assert check_resumable(state).epochs == 1
    check_resumable_tensors(state)  # the buffers of a real run fit: no error
