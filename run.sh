#!/usr/bin/env bash
# The main job. With no arguments: the embedded Fashion-MNIST model (models/fashion_cnn.onnx) on
# its 500 embedded test images: its graph and kernels, its top-1 accuracy and its latency.
#   ./run.sh [MODEL.onnx [INPUT.npy [LABELS.npy]]]
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh build
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs" --target q8_cli >/dev/null

model=${1:-models/fashion_cnn.onnx}
input=${2:-}
labels=${3:-}
if [ $# -eq 0 ]; then
  input=models/fashion_test_500.npy
  labels=models/fashion_test_500_labels.npy
fi
q8=build/q8

echo "== q8 info $model"
$q8 info "$model"
if [ -n "$input" ] && [ -n "$labels" ]; then
  echo
  echo "== accuracy (fp32) on $input"
  $q8 eval "$model" --input "$input" --labels "$labels"
fi
echo
echo "== latency (fp32, batch 1, 1 thread)"
$q8 bench "$model" --iterations 50 --warmup 5
