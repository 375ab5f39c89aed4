#!/usr/bin/env bash
# The GPU measurements in one prepared run (a lent GPU machine gives minutes, not hours): gpu_check's four parts
# (agreement, lesion and train speed, torchrun), then the streaming benchmark with its studies on the GPU (its
# decoding on the machine's CPUs). Each writes its JSON under benchmarks/results/; the tables go to stdout.
#
#     bash benchmarks/gpu_run.sh [OUT_DIR]      # about 10 minutes on one H100 (an estimate: not yet run on one)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python benchmarks/gpu_check.py --max-seconds 420 --out "$OUT/gpu_check.json"
python benchmarks/bench_stream.py --device cuda --images 1000 --memory-n 50 --study-images 200 --repeats 3 \
    --folder /tmp/imagenet-like --out "$OUT/stream_gpu.json"
