#!/usr/bin/env bash
# The main job: quantize a model with q8 and show, side by side, what int8 costs and gains.
#
#   ./run.sh                                   the embedded Fashion-MNIST model, its 256
#                                              calibration images and 500 labelled test images
#   ./run.sh MODEL.onnx CALIB [X.npy LABELS.npy]   your model: CALIB as for `q8 quantize`;
#                                              accuracy only where labelled data is given
#
# Prints the int8 model's graph and kernels, fp32 vs int8 top-1 accuracy, and fp32 vs int8
# latency (batch 1, one thread) on this CPU. The int8 model is written to build/run/.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh build
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs" --target q8_cli >/dev/null

if [ $# -eq 0 ]; then
  set -- models/fashion_cnn.onnx models/fashion_calib_256.npy models/fashion_test_500.npy models/fashion_test_500_labels.npy
fi
if [ $# -ne 2 ] && [ $# -ne 4 ]; then
  echo "usage: ./run.sh [MODEL.onnx CALIB [X.npy LABELS.npy]]" >&2
  exit 2
fi
model=$1 calib=$2 input=${3:-} labels=${4:-}
q8=build/q8
mkdir -p build/run
int8=build/run/$(basename "${model%.onnx}").int8.onnx

echo "== q8 quantize $model --calib $calib"
$q8 quantize "$model" --calib "$calib" --output "$int8"
echo
echo "== q8 info $int8"
$q8 info "$int8"

median() { sed -n 's/.*"median_ms": \([0-9.]*\).*/\1/p'; }
fp32_ms=$($q8 bench "$model" --iterations 50 --warmup 5 --json | median)
int8_ms=$($q8 bench "$int8" --iterations 50 --warmup 5 --json | median)
top1() { sed -n 's/^top-1 \([0-9.]*\) %.*/\1/p'; }
fp32_top1="-" int8_top1="-"
if [ -n "$input" ]; then
  fp32_top1=$($q8 eval "$model" --input "$input" --labels "$labels" | top1)" %"
  int8_top1=$($q8 eval "$int8" --input "$input" --labels "$labels" | top1)" %"
fi
speedup=$(awk -v a="$fp32_ms" -v b="$int8_ms" 'BEGIN { printf "%.2fx", a / b }')

echo
echo "== fp32 vs int8 on this CPU ($($q8 info "$int8" | sed -n 's/^kernel path: //p'), 1 thread, batch 1)"
printf '%-10s %12s %14s\n' "" "top-1" "latency (ms)"
printf '%-10s %12s %14s\n' "fp32" "$fp32_top1" "$fp32_ms"
printf '%-10s %12s %14s\n' "int8" "$int8_top1" "$int8_ms"
printf '%-10s %12s %14s\n' "" "" "int8 ${speedup} faster"
