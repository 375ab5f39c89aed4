#!/usr/bin/env bash
# The papers' pictures of the networks, redrawn by 'resnet-cli draw' from the plan (no torch): the figures the
# README shows, in examples/figures/ (or OUT). Run from the repository root:
#
#     bash examples/draw_figures.sh [OUT]
#
# A few seconds each. PNG at 150 dpi keeps each file small enough to commit; drop --dpi for print (300 dpi) or
# write .pdf / .svg instead.
set -euo pipefail
OUT=${1:-examples/figures}
mkdir -p "$OUT"
draw() { python -m resnet_cli draw "$@" --dpi 150 -q >/dev/null; }

echo "1. He et al. 2015 Fig. 3: VGG-19, a 34-layer plain net and ResNet-34 (option B: 3 projections)" >&2
draw vgg19 plain34 resnet34 -o "$OUT/fig3.png"

echo "2. He et al. 2015 Fig. 5: a basic block beside a bottleneck, 256 channels, with the weights per conv" >&2
draw --block basic --block bottleneck --channels 256 -o "$OUT/fig5-blocks.png"

echo "3. He et al. 2016 Fig. 4: the five placements of BN and ReLU in a basic unit" >&2
draw --block basic --placement original --placement bn_after_add --placement relu_before_add \
    --placement relu_preact --placement full_preact -o "$OUT/fig4-placements.png"

echo "4. very deep nets, folded into x n: ResNet-152 (ImageNet) and ResNet-1202 (CIFAR, option A)" >&2
draw resnet152 resnet1202 -o "$OUT/deep.png"

echo "5. the other families, folded: ResNeXt-50 32x4d, SE-ResNet-50, DenseNet-121, WRN-28-10" >&2
draw resnext50_32x4d seresnet50 densenet121 wrn28_10 --fold -o "$OUT/families.png"

echo "wrote $(find "$OUT" -name '*.png' | wc -l) figures to $OUT/" >&2
