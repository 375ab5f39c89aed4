"""The streaming data path (data/stream.py): lesion, gradients and eval read their images a batch at a time.

Oracles: the same study on the same images held in memory as one tensor (what the tool did before streaming):
on the CPU the counts are equal, not close, since every batch is the same tensor either way. Memory: the peak
RSS of a study of N and 4 N JPEGs in a fresh process. Bad files: a truncated JPEG in the middle of a folder.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import run
from image_folders import CLASSES, folder_checkpoint, tiny_net, write_folder
from lesion_nets import one_thread
from PIL import Image

from resnet_cli.analysis.gradients import gradient_flow
from resnet_cli.analysis.lesion import EXPERIMENTS, lesion_study
from resnet_cli.data import load_dataset
from resnet_cli.data.stream import ImageStream
from resnet_cli.models import build_model
from resnet_cli.registry import get_spec

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "real"
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("folder"), per_class=9)


@pytest.fixture(scope="module")
def net():
    return tiny_net()


def in_memory(dataset):
    """The whole data set as one tensor, as lesion and gradients held it before they streamed."""
    pairs = [dataset[i] for i in range(len(dataset))]
    return torch.stack([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])


def counts(result):
    d = result.to_dict()
    return (d["baseline_correct"], [r["correct"] for r in d["single"]],
            [(r["k"], r["correct"], r["configs"]) for r in d["multi"]],
            [(r["k"], r["correct"], r["configs"]) for r in d["reorder"]], d["images"])


@pytest.mark.parametrize("engine", ["cached", "stacked"])
def test_lesion_streamed_with_0_and_2_workers_counts_what_the_tensor_in_memory_counts(folder, net, engine):
    data, _ = load_dataset("imagefolder", "test", input_size=32, data_dir=folder)
    x, y = in_memory(data)
    kw = dict(experiments=EXPERIMENTS, max_k=3, samples=3, batch_size=7, engine=engine)  # 27 images: a short last
    with one_thread():
        held = counts(lesion_study(net[1], x, y, **kw))
        assert held[2] and held[3]  # multi and reorder measured
        assert len(set(held[1])) > 1  # the deletions differ: the comparison can fail
        for workers in (0, 2):
            assert counts(lesion_study(net[1], ImageStream(data, workers=workers), **kw)) == held


def test_gradients_streamed_equal_the_tensor_in_memory(folder, net):
    data, _ = load_dataset("imagefolder", "test", input_size=32, data_dir=folder)
    x, y = in_memory(data)
    with one_thread():
        held = gradient_flow(net[1], x, y, samples=2, batch_size=5).to_dict()
        for workers in (0, 2):
            streamed = gradient_flow(net[1], ImageStream(data, workers=workers), samples=2, batch_size=5).to_dict()
            assert streamed["lengths"] == held["lengths"] and streamed["images"] == 27


@pytest.mark.skipif(not REAL.is_dir(), reason="needs ../shared/real (the real CIFAR-10 test images)")
def test_cifar_held_as_uint8_and_normalised_per_batch_equals_the_float_tensor():
    data, _ = load_dataset("cifar10", "test", data_dir=REAL, limit=120)
    assert data.images.dtype == torch.uint8  # 4x less than float32
    x, y = in_memory(data)
    spec = get_spec("cifar_resnet8", widths=(4, 8, 16), stem_width=4)
    torch.manual_seed(1)
    model = build_model(spec).eval()
    with one_thread():
        a = lesion_study(model, x, y, experiments=["single"], batch_size=32)
        b = lesion_study(model, ImageStream(data), experiments=["single"], batch_size=32)
    assert counts(a) == counts(b)


def test_an_interrupted_streamed_study_resumes_at_its_chunk_and_counts_nothing_twice(folder, net, tmp_path):
    data, _ = load_dataset("imagefolder", "test", input_size=32, data_dir=folder)
    kw = dict(experiments=["single", "multi"], max_k=2, samples=2, batch_size=4)
    def stop_in_the_second_chunk(event):
        if event.phase == "multi/k=1" and event.done > 27 + 8:  # two batches into the second pass
            raise KeyboardInterrupt

    from resnet_cli.analysis.lesion import LesionInterrupted

    with one_thread():
        whole = counts(lesion_study(net[1], ImageStream(data, workers=2), **kw))
        with pytest.raises(LesionInterrupted):
            lesion_study(net[1], ImageStream(data, workers=2), state_path=tmp_path / "m.json",
                         progress=stop_in_the_second_chunk, save_every=0, **kw)
        kept = json.loads((tmp_path / "m.json").read_text())
        assert kept["partial"]["chunk"] == "multi/k=1" and 0 < kept["partial"]["images_done"] < 27
        resumed = lesion_study(net[1], ImageStream(data, workers=2), state_path=tmp_path / "m.json", resume=True,
                               **kw)
    assert counts(resumed) == whole


# --------------------------------------------------------------------------- the CLI on an image folder
def truncate(path: Path) -> bytes:
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # the header reads; the pixels end early
    return whole


def test_a_truncated_jpeg_mid_folder_is_named_the_study_keeps_what_it_counted_and_resumes_once_fixed(tmp_path):
    folder = write_folder(tmp_path / "imgs", per_class=6)
    ckpt = folder_checkpoint(tmp_path / "net.pt", folder)
    args = ["lesion", ckpt, "--experiments", "single", "-b", "3", "--device", "cpu", "-f", "json"]
    bad = folder / "bee" / "0003.jpg"  # image 10 of 18 in the interleaved order (ant 3, bee 3, ...)
    noise = np.random.default_rng(5).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(bad, quality=95)  # large enough that half of it holds the whole header
    clean = json.loads(run(*args).stdout)
    whole = truncate(bad)

    res = run(*args, "--out", tmp_path / "study")
    assert res.exit_code == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "runcated" in err[0] and "--skip-bad-images" in err[0]
    kept = json.loads((tmp_path / "study" / "measurements.json").read_text())
    assert kept["partial"]["images_done"] == 9  # the three batches before the bad image's

    skipped = run(*args, "--skip-bad-images")
    assert skipped.exit_code == 0, skipped.output
    out = json.loads(skipped.stdout)
    assert out["images"] == 17 and any("1 image(s) could not be read" in n and str(bad) in n for n in out["notes"])

    bad.write_bytes(whole)  # fixed in place
    resumed = run(*args, "--out", tmp_path / "study", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert counts_of(json.loads(resumed.stdout)) == counts_of(clean)


def counts_of(d):
    return d["baseline_correct"], [r["correct"] for r in d["single"]], d["images"]


def test_a_file_that_is_no_image_is_refused_before_any_work_or_skipped_when_asked(tmp_path):
    folder = write_folder(tmp_path / "imgs", per_class=4)
    ckpt = folder_checkpoint(tmp_path / "net.pt", folder)
    bad = folder / "cat" / "0001.jpg"
    bad.write_bytes(b"<html>not found</html>")  # what a failed download leaves
    for command, extra in (("eval", []), ("gradients", ["--split", "test", "--samples", "1", "--limit", "12"])):
        args = [command, ckpt, *extra, "-b", "4", "--device", "cpu", "--workers", "2", "-f", "json"]
        res = run(*args)
        assert res.exit_code == 2 and str(bad) in res.stderr and len(res.stderr.strip().splitlines()) == 1
        res = run(*args, "--skip-bad-images")
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert out["images"] == 11 and str(bad) in " ".join(out["notes"])


def test_a_worker_that_dies_is_one_line_not_a_hung_run(tmp_path, monkeypatch):
    from resnet_cli.data import imagefolder

    folder = write_folder(tmp_path / "imgs", per_class=4)
    ckpt = folder_checkpoint(tmp_path / "net.pt", folder)
    real = imagefolder.ImageFolderDataset.__getitem__

    def die_on_the_fifth(self, i):
        if i == 5:
            os.kill(os.getpid(), 9)  # in a worker (forked): the OOM killer's signal
        return real(self, i)

    monkeypatch.setattr(imagefolder.ImageFolderDataset, "__getitem__", die_on_the_fifth)
    res = run("eval", ckpt, "-b", "4", "--device", "cpu", "--workers", "2")
    assert res.exit_code == 2
    assert "data-loading worker" in res.stderr and len(res.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- memory
PEAK = """
import resource, sys
from resnet_cli.cli import app
code = app(sys.argv[1:], prog_name="resnet-cli", standalone_mode=False)
assert not code, code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def peak_rss_mb(*args) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", PEAK, *map(str, args)], capture_output=True, text=True, env=env,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def test_a_study_of_4n_images_peaks_within_a_few_mb_of_one_of_n(tmp_path):
    """At 128 px an image is 196,608 bytes as float32: held whole, 3 x 40 more images would add 23.6 MB."""
    small = write_folder(tmp_path / "n", per_class=10, size=(150, 128))
    large = write_folder(tmp_path / "4n", per_class=40, size=(150, 128), seed=1)
    ckpt = folder_checkpoint(tmp_path / "net.pt", small, size=128)
    base = ["lesion", ckpt, "--experiments", "single", "-b", "10", "--device", "cpu", "-q", "-f", "json"]
    n = peak_rss_mb(*base, "--data-dir", small)
    four_n = peak_rss_mb(*base, "--data-dir", large)
    print(f"peak RSS: {n:.1f} MB at N, {four_n:.1f} MB at 4 N")
    assert four_n - n < 8, (n, four_n)  # in memory it was +23.6 MB of images alone


# --------------------------------------------------------------------------- the paper-scale recipe
@pytest.mark.parametrize("gpus", [1, 2])
def test_the_imagenet_recipe_runs_on_a_torchvision_style_state_dict_and_a_val_folder(tmp_path, gpus):
    """examples/veit_imagenet.sh on ImageNet's layout: 1,000 class folders (images in three of them) and a bare
    ResNet-18 state dict in torchvision's layout; two processes (torchrun on the CPU) count what one does."""
    val = tmp_path / "val"
    for c in range(1000):
        (val / f"n{c:08d}").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for c in (0, 1, 2):
        for i in range(2):
            noise = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
            Image.fromarray(noise).save(val / f"n{c:08d}" / f"ILSVRC2012_val_{c}{i}.JPEG")
    torch.manual_seed(0)
    weights = tmp_path / "resnet18-random.pth"
    torch.save(build_model(get_spec("resnet18")).state_dict(), weights)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(ROOT / "examples" / "veit_imagenet.sh"), str(weights), "resnet18", str(val),
                           str(tmp_path / "study"), str(gpus), "--", "--experiments", "single", "--batch-size", "2",
                           "--workers", "1", "--device", "cpu", "-q"],
                          capture_output=True, text=True, env=env, check=False, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = json.loads((tmp_path / "study" / "lesion.json").read_text())
    assert study["images"] == 6 and len(study["single"]) == 8  # ResNet-18's eight blocks
    assert (tmp_path / "study" / "single.png").stat().st_size > 0
    if gpus == 2:
        one = run("lesion", weights, "--arch", "resnet18", "--dataset", "imagefolder", "--data-dir", val,
                  "--experiments", "single", "--batch-size", "2", "--device", "cpu", "-f", "json")
        assert counts_of(json.loads(one.stdout)) == counts_of(study)


def test_the_streaming_benchmark_runs_and_its_figures_are_its_own(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_stream.py"), "--quick", "--folder",
                           str(tmp_path / "imgs"), "--out", str(tmp_path / "stream.json")],
                          capture_output=True, text=True, env=env, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    r = json.loads((tmp_path / "stream.json").read_text())
    small, large = r["memory"]["peak_rss_mb"]
    assert r["memory"]["ratio"] == large / small and r["memory"]["images"] == [1, 10]
    assert set(r["decode"]) == set(r["study"]["streamed"]) == {"0", "1", "2"}
    held = r["study"]["in_memory_images_per_s"]
    for v in r["study"]["streamed"].values():
        assert abs(v["of_in_memory"] - v["images_per_s"] / held) < 1e-9
    assert "peak RSS" in proc.stdout and "decode" in proc.stdout


def test_eval_names_each_class_where_the_data_does(tmp_path):
    folder = write_folder(tmp_path / "imgs", per_class=2)
    ckpt = folder_checkpoint(tmp_path / "net.pt", folder)
    out = json.loads(run("eval", ckpt, "--device", "cpu", "-f", "json").stdout)
    assert [c["name"] for c in out["per_class"]] == list(CLASSES)  # the folders' names, in label order
    if REAL.is_dir():  # CIFAR-10's official meta file
        data, _ = load_dataset("cifar10", "test", data_dir=REAL, limit=10)
        assert data.classes[:3] == ["airplane", "automobile", "bird"] and len(data.classes) == 10


def test_a_dataset_of_another_kind_is_fingerprinted_by_its_bytes_a_batch_at_a_time():
    class Items(torch.utils.data.Dataset):  # what a user of the Python API may hand in: (image, label) items
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i], int(self.y[i])

    x, y = torch.randn(300, 3, 4, 4), torch.randint(0, 3, (300,))
    a, b = ImageStream(Items(x, y)).fingerprint(), ImageStream(Items(x.clone(), y)).fingerprint()
    x[299, 0, 0, 0] += 1  # the last batch's last image
    assert a == b != ImageStream(Items(x, y)).fingerprint()
