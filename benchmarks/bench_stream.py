"""Benchmark: the streaming data path of lesion, gradients and eval (data/stream.py), side by side in one run.

It writes its own ImageNet-like folder (JPEGs at ImageNet's typical sizes, 500 x 375 and the like, of noisy
colour fields: about as costly to decode as photographs; nothing downloaded, nothing committed) and a ResNet-18
checkpoint with random weights for it, then measures:

1. **memory**: peak RSS of ``resnet-cli lesion --experiments single`` over N and 10 N of those images, each in a
   fresh process (goal: within 10 %; held in memory, 10 N images of 224 px would add 9 N x 0.6 MB);
2. **CIFAR-sized, in memory**: images/s of the single-deletion study of a CIFAR ResNet-20 on 32-px data held as
   uint8 and normalised per batch (streamed) against the float tensor the study held before (goal: >= 0.9x);
3. **decoding**: images/s of the stream alone (decode, resize, crop, normalise) with 0, 1, 2 workers, and per
   worker;
4. **the study on the JPEGs**: images/s of the ResNet-18 single-deletion study streamed with 0, 1, 2 workers,
   against the same study on those images already in memory (the rate the network allows) and against plain
   inference of the network (goal: the study is bound by the network once workers >= cores - 1).

Medians of ``--repeats`` runs; one thread of torch per process (the machine may be shared).

    python benchmarks/bench_stream.py                 # about 5 minutes on 2 cores
    python benchmarks/bench_stream.py --quick         # a smoke run (used by the tests)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_lesion import time_inference  # noqa: E402

from resnet_cli.analysis.lesion import lesion_study  # noqa: E402
from resnet_cli.checkpoint import save_checkpoint  # noqa: E402
from resnet_cli.data import Uint8ImageDataset, load_dataset  # noqa: E402
from resnet_cli.data.stream import ImageStream  # noqa: E402
from resnet_cli.devices import autocast_dtype  # noqa: E402
from resnet_cli.fileio import atomic_write_text  # noqa: E402
from resnet_cli.models import build_model  # noqa: E402
from resnet_cli.registry import get_spec  # noqa: E402

#: (width, height) of the folder's images, in turn: ImageNet's commonest sizes (500 x 375 is the mode).
SIZES = ((500, 375), (375, 500), (500, 333), (500, 400), (333, 500), (640, 480))
CLASSES = 10

PEAK = """
import resource, sys
from resnet_cli.cli import app
code = app(sys.argv[1:], prog_name="resnet-cli", standalone_mode=False)
assert not code, code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def write_folder(root: Path, images: int, seed: int = 0) -> Path:
    """``images`` JPEGs in CLASSES class folders (kept between runs: written once per size of folder)."""
    from PIL import Image

    done = root / f".complete-{images}"
    if done.exists():
        return root
    rng = np.random.default_rng(seed)
    for i in range(images):
        w, h = SIZES[i % len(SIZES)]
        folder = root / f"n{i % CLASSES:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
        pixels = np.asarray(coarse, dtype=np.int16) + rng.normal(0, 18, (h, w, 3)).astype(np.int16)
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"img_{i:06d}.JPEG", quality=90)
    done.touch()
    return root


def resnet18_checkpoint(path: Path, folder: Path) -> Path:
    if path.exists():
        return path
    torch.manual_seed(0)
    spec = get_spec("resnet18", num_classes=CLASSES)
    model = build_model(spec)
    _, info = load_dataset("imagefolder", "test", data_dir=folder, input_size=224)
    save_checkpoint(path, spec=spec, state_dict=model.state_dict(), dataset=info, record=[])
    return path


#: glibc's malloc: allocations past this many bytes always get their own mapping, returned when freed. By default
#: the threshold rises with the sizes freed, and batches of activations then fragment the heap: the peak creeps up
#: with the number of batches, though what is in use does not.
MMAP_THRESHOLD = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def peak_rss_mb(*args: str, env_extra: dict | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env_extra or {})}
    proc = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True, env=env,
                          check=False)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def memory_part(folder: Path, ckpt: Path, n: int, batch: int, fixed_threshold: bool = True,
                device: str = "cpu") -> dict:
    base = ["lesion", str(ckpt), "--data-dir", str(folder), "--experiments", "single", "-b", str(batch),
            "--device", device, "-q", "-f", "json"]
    small, large = peak_rss_mb(*base, "--limit", str(n)), peak_rss_mb(*base, "--limit", str(10 * n))
    fixed = [peak_rss_mb(*base, "--limit", str(k), env_extra=MMAP_THRESHOLD) for k in (n, 10 * n)] \
        if fixed_threshold else None
    held = 9 * n * 3 * 224 * 224 * 4 / 2**20
    return {"images": [n, 10 * n], "peak_rss_mb": [small, large], "ratio": large / small,
            "fixed_mmap_threshold": {"env": MMAP_THRESHOLD, "peak_rss_mb": fixed,
                                     "ratio": fixed[1] / fixed[0] if fixed else None},
            "in_memory_would_add_mb": held}


def cifar_part(images: int, batch: int, repeats: int) -> dict:
    """The CIFAR-10 test set's shape, uint8 (the real batches where ../shared/real has them, else seeded noise)."""
    real = ROOT.parent / "shared" / "real"
    if (real / "cifar-10-batches-py" / "test_batch").exists():
        data, _ = load_dataset("cifar10", "test", data_dir=real, limit=images)
        source = "CIFAR-10 test images"
    else:
        g = torch.Generator().manual_seed(0)
        _, info = load_dataset("synthetic", "test", input_size=32)
        raw = torch.randint(0, 256, (images, 3, 32, 32), generator=g, dtype=torch.uint8)
        data = Uint8ImageDataset(raw, torch.randint(0, 10, (images,), generator=g), info)
        source = "seeded uint8 noise"
    n = len(data)
    x, y = data.get_batch(torch.arange(n))  # the float tensor the study held before streaming
    torch.manual_seed(0)
    model = build_model(get_spec("resnet20")).eval()
    kw = dict(experiments=["single"], batch_size=batch)
    held = median_time(lambda: lesion_study(model, x, y, **kw), repeats)
    streamed = median_time(lambda: lesion_study(model, ImageStream(data), **kw), repeats)
    return {"source": source, "images": n, "in_memory_images_per_s": n / held, "streamed_images_per_s": n / streamed,
            "ratio": held / streamed, "float_mb": x.numel() * 4 / 2**20, "uint8_mb": n * 3 * 32 * 32 / 2**20}


def decode_part(folder: Path, images: int, batch: int, repeats: int) -> dict:
    data, _ = load_dataset("imagefolder", "test", data_dir=folder, input_size=224, limit=images)
    out = {}
    for workers in (0, 1, 2):
        stream = ImageStream(data, workers=workers)
        t = median_time(lambda s=stream: sum(len(y) for _, y in s.batches(0, len(s), batch)), repeats)
        out[workers] = {"images_per_s": len(data) / t, "per_worker": len(data) / t / max(1, workers)}
    return out


def study_part(folder: Path, ckpt: Path, images: int, batch: int, repeats: int, device: str = "cpu") -> dict:
    """On a GPU the study runs as the CLI runs it there (bf16 autocast, channels_last); plain inference likewise,
    its images already on the device (the in-memory study holds them there too)."""
    from resnet_cli.checkpoint import load_checkpoint

    model = load_checkpoint(ckpt).build_model().eval()
    data, _ = load_dataset("imagefolder", "test", data_dir=folder, input_size=224, limit=images)
    dev = torch.device(device)
    kw = dict(experiments=["single"], batch_size=batch, device=dev)
    x, y = next(ImageStream(data).batches(0, len(data), len(data)))
    # the lesion benchmark's reference: the study's settings on CUDA, the images on the device before the clock
    infer = statistics.median(time_inference(model, x, batch, dev, autocast_dtype(dev)) for _ in range(repeats))
    held = median_time(lambda: lesion_study(model, x, y, **kw), repeats)
    out = {"images": len(data), "plain_inference_images_per_s": len(data) / infer,
           "in_memory_images_per_s": len(data) / held, "streamed": {}}
    for workers in (0, 1, 2):
        t = median_time(lambda w=workers: lesion_study(model, ImageStream(data, workers=w), **kw), repeats)
        out["streamed"][workers] = {"images_per_s": len(data) / t, "of_in_memory": held / t}
    return out


def _fixed(part: dict) -> str:
    if not part["peak_rss_mb"]:
        return "not measured (--quick)"
    small, large = part["peak_rss_mb"]
    return f"{small:.0f} MB, {large:.0f} MB (x{part['ratio']:.3f})"


def table(result: dict) -> str:
    m, c, d, s = result["memory"], result["cifar"], result["decode"], result["study"]
    rows = [
        ("peak RSS, lesion single, resnet18 @224",
         f"{m['peak_rss_mb'][0]:.0f} MB at {m['images'][0]} images, {m['peak_rss_mb'][1]:.0f} MB at "
         f"{m['images'][1]} (x{m['ratio']:.3f}; held whole: +{m['in_memory_would_add_mb']:.0f} MB)", "<= x1.10"),
        ("the same, MALLOC_MMAP_THRESHOLD_=131072", _fixed(m["fixed_mmap_threshold"]), "<= x1.10"),
        (f"CIFAR-sized study, resnet20 ({c['images']} {c['source']})",
         f"{c['streamed_images_per_s']:.0f} img/s streamed uint8 vs {c['in_memory_images_per_s']:.0f} in-memory "
         f"float (x{c['ratio']:.2f}); {c['uint8_mb']:.1f} MB held, not {c['float_mb']:.1f}", ">= x0.90"),
    ]
    for w, v in d.items():
        rows.append((f"decode + resize @224, {w} workers", f"{v['images_per_s']:.1f} img/s "
                     f"({v['per_worker']:.1f} per worker)", ""))
    rows.append(("resnet18 @224 plain inference", f"{s['plain_inference_images_per_s']:.1f} img/s", "the limit"))
    rows.append(("study, images in memory", f"{s['in_memory_images_per_s']:.2f} img/s", "network-bound"))
    for w, v in s["streamed"].items():
        rows.append((f"study streamed, {w} workers", f"{v['images_per_s']:.2f} img/s (x{v['of_in_memory']:.2f} "
                     f"of in memory)", "~x1 at workers >= cores-1" if w else ""))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b}  {g}".rstrip() for a, b, g in rows)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=2000, help="JPEGs in the generated folder")
    ap.add_argument("--memory-n", type=int, default=20, help="N of the peak-RSS runs (N and 10 N images)")
    ap.add_argument("--study-images", type=int, default=40, help="images of the timed ResNet-18 studies")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--folder", default=str(Path(__file__).resolve().parent / "results" / "imagenet-like"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "stream.json"))
    ap.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, one repeat")
    ap.add_argument("--device", default="cpu", help="cpu or cuda: where the studies run (decoding is the CPU's)")
    args = ap.parse_args(argv)
    if args.quick:
        args.images, args.memory_n, args.study_images, args.repeats = 20, 1, 2, 1
    torch.set_num_threads(1)
    folder = write_folder(Path(args.folder) / str(args.images), args.images)
    ckpt = resnet18_checkpoint(folder.parent / f"resnet18-{args.images}.pt", folder)
    batch = max(1, min(20, args.study_images))
    started = time.time()
    result = {
        "memory": memory_part(folder, ckpt, args.memory_n, min(batch, args.memory_n), fixed_threshold=not args.quick,
                              device=args.device),
        "cifar": cifar_part(100 if args.quick else 1000, 100, args.repeats),
        "decode": decode_part(folder, min(args.images, 10 if args.quick else 200), batch, args.repeats),
        "study": study_part(folder, ckpt, args.study_images, batch, args.repeats, args.device),
        "machine": {"device": args.device, "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
                    "cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "threads": 1, "date": time.strftime("%Y-%m-%d"),
                    "load_average": os.getloadavg()},
        "settings": vars(args), "seconds": time.time() - started,
    }
    print(table(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
