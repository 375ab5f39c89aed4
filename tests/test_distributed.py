"""lesion, gradients and eval under torchrun (2 processes, gloo on the CPU) against one process; a crashed rank
ends the launch with one line and ``--resume`` finishes the study.

Why the counts are identical, not merely close: the ranks get whole batches of the very batching one process
uses (``World.part``), and on the CPU a batch's logits do not depend on which process computes them. Gradient
shares differ only by the order of floating-point additions (per-rank sums added after), hence 1e-9.
"""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import run
from image_folders import folder_checkpoint, write_folder
from lesion_nets import one_thread, trained, write_checkpoint

ROOT = Path(__file__).resolve().parents[1]
LESION = ["--limit", "120", "-b", "16", "--experiments", "single,multi", "--max-k", "3", "--samples", "2",
          "--device", "cpu"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    spec, model, info = trained("cifar_resnet14")
    return write_checkpoint(tmp_path_factory.mktemp("dist") / "resnet14.pt", spec, model, info)


def torchrun(commands, out_dir, env=None, timeout=180):
    """``torchrun --standalone --nproc-per-node 2 -m dist_run``: ``commands`` in one launch; returns the process
    and each command's stdout on rank 0 (after checking that rank 1 printed nothing)."""
    environ = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "OMP_NUM_THREADS": "1",
               "COMMANDS": json.dumps([list(map(str, c)) for c in commands]), "OUT_DIR": str(out_dir),
               **(env or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "dist_run"]
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=timeout)
    outs = []
    for i in range(len(commands)):
        if (out_dir / f"{i}.out.0").exists():
            assert (out_dir / f"{i}.out.1").read_text() == ""  # rank 0 alone prints
            outs.append((out_dir / f"{i}.out.0").read_text())
    return proc, outs


def one_process(*args):
    with one_thread():
        res = run(*args)
    assert res.exit_code == 0, res.output
    return res


GRADIENTS = ["--limit", "48", "-b", "8", "--samples", "2", "--device", "cpu", "-f", "json"]
EVAL = ["--limit", "100", "-b", "16", "--device", "cpu", "-f", "json"]
# one batch for two ranks: rank 1 scores nothing and must still take part in every sum and end with rank 0
EVAL_ONE_BATCH = ["--limit", "10", "-b", "16", "--device", "cpu", "-f", "json"]
TRAIN = ["--arch", "cifar_resnet8", "--dataset", "synthetic", "--limit", "64", "--test-limit", "32", "--epochs", "1",
         "-b", "8", "--device", "cpu", "--no-best", "-f", "json"]


@pytest.fixture(scope="module")
def launch(ckpt, tmp_path_factory):
    """One torchrun launch of lesion, gradients, eval and train (3 torch start-ups instead of 12)."""
    tmp = tmp_path_factory.mktemp("launch")
    proc, outs = torchrun([["lesion", ckpt, *LESION, "--out", tmp / "two", "-f", "json"],
                           ["gradients", ckpt, *GRADIENTS], ["eval", ckpt, *EVAL],
                           ["train", *TRAIN, "-o", tmp / "ddp.pt"], ["eval", ckpt, *EVAL_ONE_BATCH]], tmp)
    assert proc.returncode == 0, proc.stderr  # the launch's own exit code: every rank of every command exited 0
    return dict(zip(("lesion", "gradients", "eval", "train", "eval_one_batch"), outs)), tmp


def test_lesion_in_two_processes_counts_exactly_what_one_counts(ckpt, launch):
    outs, tmp = launch
    one = json.loads(one_process("lesion", ckpt, *LESION, "-f", "json").stdout)
    assert json.loads(outs["lesion"]) == one  # the same counts, errors and configurations, exactly
    saved = json.loads((tmp / "two" / "lesion.json").read_text())  # (stdout adds how the checkpoint loaded)
    assert {"baseline_error", "single", "multi"} <= set(saved) and saved == {k: one[k] for k in saved}
    assert one["multi"] and len(one["single"]) == 6


def test_gradients_and_eval_in_two_processes_measure_what_one_does(ckpt, launch):
    outs, _ = launch
    a, b = json.loads(one_process("gradients", ckpt, *GRADIENTS).stdout), json.loads(outs["gradients"])
    assert a["images"] == b["images"] == 48
    assert a["effective_range"]["low"] == b["effective_range"]["low"]
    for x, y in zip(a["lengths"], b["lengths"], strict=True):
        assert math.isclose(x["share"], y["share"], rel_tol=1e-9, abs_tol=1e-15)
        assert math.isclose(x["magnitude_std"], y["magnitude_std"], rel_tol=1e-9, abs_tol=1e-15)

    a, b = json.loads(one_process("eval", ckpt, *EVAL).stdout), json.loads(outs["eval"])
    assert (b["correct"], b["images"]) == (a["correct"], 100)
    assert math.isclose(a["loss"], b["loss"], rel_tol=1e-12)

    a, b = json.loads(one_process("eval", ckpt, *EVAL_ONE_BATCH).stdout), json.loads(outs["eval_one_batch"])
    assert (b["correct"], b["images"], b["per_class"]) == (a["correct"], 10, a["per_class"])


def test_two_process_training_writes_a_checkpoint_one_process_evaluates_and_continues(launch):
    outs, tmp = launch
    ddp = json.loads(outs["train"])
    assert any("global batch of 16 images (8 per process)" in n for n in ddp["notes"])
    assert ddp["record"][0]["train_images"] == 64  # both ranks' disjoint halves of the epoch, summed
    ckpt = tmp / "ddp.pt"
    evaluated = json.loads(one_process("eval", ckpt, "--device", "cpu", "--limit", "32", "-f", "json").stdout)
    assert evaluated["images"] == 32
    assert math.isclose(evaluated["error"], ddp["record"][0]["test_error"], abs_tol=1e-12)  # the same weights
    resumed = json.loads(one_process("train", "--resume", ckpt, "--epochs", "2", "--device", "cpu",
                                     "-f", "json").stdout)
    assert resumed["resumed_from_epoch"] == 1 and [r["epoch"] for r in resumed["record"]] == [1, 2]
    assert resumed["record"][0] == ddp["record"][0]


def test_a_killed_rank_ends_the_launch_and_resume_finishes_the_study(ckpt, tmp_path):
    out = tmp_path / "study"
    started = time.monotonic()
    crashed, _ = torchrun([["lesion", ckpt, *LESION, "--out", out, "-q"]], tmp_path,
                          env={"DIE_AT_CHUNK": "3", "RESNET_CLI_DIST_TIMEOUT": "30"})
    assert crashed.returncode != 0 and time.monotonic() - started < 60
    ours = [line for line in crashed.stderr.splitlines() if line.startswith("Error:")]
    assert len(ours) == 1 and "rank 0" not in ours[0], crashed.stderr  # rank 0 speaks, once
    assert "another process" in ours[0]
    kept = json.loads((out / "measurements.json").read_text())
    # chunks 1 (baseline + single) and 2 (multi k=1) were summed and kept; chunk 3 died with rank 1
    assert {d["experiment"] for d in kept["done"].values()} == {"baseline", "single", "multi"}
    assert {d["k"] for d in kept["done"].values() if d["experiment"] == "multi"} == {1}
    assert kept["partial"] is None
    resumed = one_process("lesion", ckpt, *LESION, "--out", out, "--resume", "-f", "json")
    whole = one_process("lesion", ckpt, *LESION, "-f", "json")
    assert json.loads(resumed.stdout) == json.loads(whole.stdout)  # nothing measured twice, nothing lost


# --------------------------------------------------------------------------- an image folder, streamed
def test_each_rank_decodes_only_its_share_and_resumes_in_one_process(tmp_path):
    """30 JPEGs, batches of 4: rank 0 takes batches 0-3 (images 0-15), rank 1 batches 4-7 (16-29), in every pass
    (a chunk of the study); each also reads image 0 once, to learn the network's shapes."""
    folder = write_folder(tmp_path / "imgs", per_class=10)
    ckpt = folder_checkpoint(tmp_path / "net.pt", folder)
    study = ["lesion", ckpt, "--experiments", "single,multi", "--max-k", "2", "--samples", "2", "-b", "4",
             "--device", "cpu", "--workers", "1", "-f", "json"]
    proc, outs = torchrun([[*study, "--out", tmp_path / "two"]], tmp_path, env={"READ_LOG": str(tmp_path / "reads")})
    assert proc.returncode == 0, proc.stderr
    one = json.loads(one_process(*study).stdout)
    assert json.loads(outs[0]) == one

    from resnet_cli.data import load_dataset

    data, _ = load_dataset("imagefolder", "test", input_size=32, data_dir=folder)
    names = [f"{p.parent.name}/{p.name}" for p, _ in data.items]
    logs = {r: (tmp_path / f"reads.{r}").read_text().split() for r in (0, 1)}
    chunks = 3  # single, multi k=1, multi k=2
    for rank, share in ((0, range(16)), (1, range(16, 30))):
        expected = [names[0]] + [names[i] for i in share] * chunks
        assert sorted(logs[rank]) == sorted(expected), rank  # its share once a pass, and nothing of the other's

    crashed, _ = torchrun([[*study, "--out", tmp_path / "killed", "-q"]], tmp_path,
                          env={"DIE_AT_CHUNK": "3", "RESNET_CLI_DIST_TIMEOUT": "30"})
    assert crashed.returncode != 0
    resumed = one_process(*study, "--out", tmp_path / "killed", "--resume")
    assert json.loads(resumed.stdout) == one  # two processes' chunks, finished by one: nothing twice, nothing lost
