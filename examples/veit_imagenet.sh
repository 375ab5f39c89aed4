#!/usr/bin/env bash
# Veit, Wilber & Belongie 2016, §4-5 at the paper's scale: the lesion study of an ImageNet ResNet over the 50,000
# validation images, with the weights people have, streamed (never the whole set in memory).
#
#     bash examples/veit_imagenet.sh WEIGHTS ARCH VAL_DIR OUT [GPUS] [-- extra lesion options]
#
#   WEIGHTS  a state dict as torchvision or timm publish it: resnet50-0676ba61.pth (ARCH resnet50), resnet101-*,
#            resnet152-* (resnet101, resnet152); timm's resnet50d (resnet50d) or resnetv2_50 (preact_resnet50)
#   VAL_DIR  ImageNet's validation set in class folders, val/n01440764/ILSVRC2012_val_00000293.JPEG, ... (the
#            layout torchvision's ImageFolder reads: sorted WordNet IDs give the usual class indices)
#   GPUS     processes to start with torchrun, one per GPU (default 1: no torchrun); on several nodes, run
#            torchrun yourself as the README's torchrun section shows
#
# Single deletions (Fig. 3), k random deletions and reorderings for k = 1..10 (Fig. 5), 20 samples each; the
# measurements are kept in OUT as they finish, so the same command with --resume continues after an interruption.
# Add `-- --limit 5000` for a first look at 5 images per class, `-- --experiments single` for Fig. 3 alone.
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,17p' "$0" >&2
    exit 2
fi
WEIGHTS=$1 ARCH=$2 VAL=$3 OUT=$4
GPUS=${5:-1}
shift $(( $# >= 5 ? 5 : 4 ))
[ "${1:-}" = "--" ] && shift

# a batch of 256 images at 224 px is 154 MB; 8 workers decode about 8 x 150 JPEGs/s, ahead of one GPU's study
experiments=(--experiments single,multi,reorder --max-k 10 --samples 20)
case " $* " in *" --experiments "*) experiments=() ;; esac  # the caller chose: no --max-k/--samples for single
study=(lesion "$WEIGHTS" --arch "$ARCH" --dataset imagefolder --data-dir "$VAL" --out "$OUT"
       "${experiments[@]}" --batch-size 256 --workers 8 "$@")
if [ "$GPUS" -gt 1 ]; then
    # each process reads only its share of the images; the counts are summed: the numbers one process gives
    torchrun --standalone --nproc-per-node "$GPUS" -m resnet_cli "${study[@]}"
else
    python -m resnet_cli "${study[@]}"
fi
echo "figures: $OUT/single.png, $OUT/multi.png, $OUT/reorder.png; numbers: $OUT/lesion.json" >&2
