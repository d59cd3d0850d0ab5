#!/usr/bin/env bash
# The CNNs people ship, exported by torch.onnx.export at test time (scripts/zoo.py), run by q8 and
# by ONNX Runtime on the same input: q8's fp32 output must match within relative L2 1e-4; then
# quantized by q8, each int8 file must run in ONNX Runtime too.
# Usage: scripts/test_zoo.sh [path/to/q8]
set -euo pipefail
cd "$(dirname "$0")/.."
q8=${1:-build/q8}
peers=build/peers
if [ ! -d "$peers/node_modules/onnxruntime-node" ]; then
  # --ignore-scripts: the package's install script fetches GPU libraries; the CPU one is inside.
  npm install --prefix "$peers" --ignore-scripts --no-audit --no-fund onnxruntime-node@1.30.0 >/dev/null
fi
/usr/bin/python3 scripts/zoo.py export build/zoo 2>&1 | grep -v -i warn | grep -v "^ " || true
NODE_PATH="$peers/node_modules" /usr/bin/python3 scripts/zoo.py check build/zoo --q8 "$q8"
# Each quantized by q8 (32 calibration samples): ONNX Runtime runs every int8 file, and q8's int8
# output stays within --min-sqnr of its fp32 output.
NODE_PATH="$peers/node_modules" /usr/bin/python3 scripts/zoo.py int8 build/zoo --q8 "$q8"
# The benchmarks' output check (bench/compare_ort.sh runs it after its timings) on one of them.
NODE_PATH="$peers/node_modules" node bench/ort_agreement.js build/zoo/squeezenet1_1.opset13.onnx \
  build/zoo/squeezenet1_1.int8.onnx "$q8" 1
