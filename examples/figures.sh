#!/usr/bin/env bash
# Every figure the tool draws, regenerated in one folder (default: figures/), in the papers' style: one column
# wide (3.4 in, 8 pt text) unless the data needs the page, PNG and PDF. Run from the repository root:
#
#     bash examples/figures.sh [OUT]
#
# Takes a few minutes on 2 idle cores (the two example scripts train small nets); each step says what it draws.
set -euo pipefail
OUT=${1:-figures}
mkdir -p "$OUT"
cli() { python -m resnet_cli "$@"; }

echo "1. path lengths of ResNet-110 (Veit et al. 2016 Fig. 2's distribution), linear and log scale" >&2
cli paths --arch resnet110 --range 19:35 --plot "$OUT/paths-resnet110.png" >/dev/null
cli paths --arch resnet110 --survival linear:0.5 --scale log --plot "$OUT/paths-resnet110-log.pdf" >/dev/null
cli paths --arch resnet110 --survival linear:0.5 --scale log --plot "$OUT/paths-resnet110-log.png" >/dev/null

echo "2. lesion studies of a ResNet-20 and its plain twin (Veit et al. Fig. 3 and 5) and the gradient (Fig. 6)" >&2
python examples/lesion_digits.py --out "$OUT/lesion-digits"
cli plot-lesion "$OUT/lesion-digits/lesion-resnet20.json" "$OUT/lesion-digits/lesion-plain20.json" \
    --out "$OUT/lesion-both" --figure-type png,pdf

echo "3. a training record in % (linear and log), from a checkpoint written by 'train'" >&2
cli train --arch resnet20 --dataset digits --input-size 16 --epochs 8 -o "$OUT/resnet20-digits.pt" --no-best \
    --plot "$OUT/record.png" >/dev/null
cli plot-record "$OUT/resnet20-digits.pt" --log -o "$OUT/record-log.png"

echo "4. the degradation problem: plain vs residual nets at two depths (He et al. 2015 Fig. 1)" >&2
python examples/degradation.py -o "$OUT/degradation.png"

echo "wrote $(find "$OUT" -name '*.png' -o -name '*.pdf' | wc -l) figures to $OUT/" >&2
