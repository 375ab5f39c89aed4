"""The degradation experiment of He et al. 2015 (Fig. 1 and Fig. 6), small enough for a CPU.

Deeper *plain* networks reach a higher *training* error than shallower ones, which a deeper net could never do if
optimisation were easy (it could copy the shallow net and set its extra layers to identities). Residual twins —
the same layers plus shortcuts — do not degrade. This trains plain and residual CIFAR-style nets at two depths on
the same data with the same recipe and seed, and plots their training error side by side.

    python examples/degradation.py                       # digits, depths 20 and 56: 40 s on 2 idle cores
    python examples/degradation.py --dataset cifar10 --data-dir DIR --epochs 30 --width 16 --input-size 32

Measured (2 cores, defaults): final training error plain-20 0.59%, plain-56 53.82%; ResNet-20 0.00%,
ResNet-56 0.00% — the deeper plain net is far worse on the *training* set, its residual twin is not.

Defaults are scaled down (narrow nets: 8/16/32 filters instead of 16/32/64; 16x16 digits; no augmentation, so
that the training error measures optimisation alone). Writes degradation.png and degradation.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from resnet_cli import get_spec
from resnet_cli.fileio import atomic_write_text
from resnet_cli.render.progress import progress
from resnet_cli.render.training import plot_records
from resnet_cli.training import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", default="20,56", help="two (or more) 6n+2 depths (the paper's 20 and 56)")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--width", type=int, default=8, help="filters of the first stage (paper: 16)")
    parser.add_argument("--input-size", type=int, default=16)
    parser.add_argument("--limit", type=int, default=None, help="training images (default: all)")
    parser.add_argument("--augment", action="store_true", help="crop (and flip where it fits) while training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("-o", "--output", default="degradation.png")
    args = parser.parse_args()

    depths = [int(d) for d in args.depths.split(",")]
    w = args.width
    config = TrainConfig(epochs=args.epochs, batch_size=128, seed=args.seed, augment=args.augment)
    runs, series = [], []
    for residual in (False, True):
        for depth in depths:
            name = f"cifar_{'resnet' if residual else 'plain'}{depth}"
            spec = get_spec(name, widths=f"{w},{2 * w},{4 * w}", stem_width=w, input_size=args.input_size)
            t0 = time.perf_counter()
            with progress() as show:  # a bar on a terminal, a status line every 30 s in a log
                result = train(spec, args.dataset, config, device=args.device, data_dir=args.data_dir,
                               train_limit=args.limit, progress=show)
            seconds = time.perf_counter() - t0
            final = result.record[-1]
            label = f"{'residual' if residual else 'plain'}: {'ResNet' if residual else 'plain'}-{depth}"
            series.append((label, result.record))
            runs.append({"arch": name, "depth": depth, "residual": residual, "seconds": seconds,
                         "final_train_error": final["train_error"], "final_test_error": final["test_error"],
                         "record": result.record})
            print(f"{label:<22} train error {100 * final['train_error']:6.2f}%  "
                  f"test error {100 * final['test_error']:6.2f}%  ({seconds:.0f} s)", flush=True)

    plot_records(series, args.output, panels=True,
                 title=f"degradation on {args.dataset}: training error (dashed) and test error (solid)")
    out_json = Path(args.output).with_suffix(".json")
    atomic_write_text(out_json, json.dumps({"dataset": args.dataset, "config": config.to_dict(), "width": w,
                                            "input_size": args.input_size, "runs": runs}, indent=2))
    by = {(r["residual"], r["depth"]): r["final_train_error"] for r in runs}
    shallow, deep = min(depths), max(depths)
    print(f"\nplain:    depth {deep} train error - depth {shallow} = "
          f"{100 * (by[False, deep] - by[False, shallow]):+.2f} points (degradation if > 0)")
    print(f"residual: depth {deep} train error - depth {shallow} = "
          f"{100 * (by[True, deep] - by[True, shallow]):+.2f} points")
    print(f"wrote {args.output} and {out_json}")


if __name__ == "__main__":
    main()
