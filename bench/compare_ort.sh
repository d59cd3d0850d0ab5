#!/usr/bin/env bash
# q8 against ONNX Runtime on this CPU, on the same file, in one run: medians and ratios.
#
#   bench/compare_ort.sh MODEL.onnx [--int8 MODEL.int8.onnx | --calib CALIB] [--threads "1 2"]
#                        [--iterations N]
#
# MODEL is the fp32 file. The int8 file is either given (e.g. ONNX Runtime's own QDQ file, so
# both engines run the same bytes) or made by `q8 quantize` from CALIB. ONNX Runtime comes from
# npm (onnxruntime-node, installed once into $Q8_ORT_CACHE, default ~/.cache/q8-ort; the
# package's install script is skipped because it downloads GPU libraries).
# Prints a table per thread count: q8 and ORT medians for fp32 and int8, and their ratios.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

model="" int8="" calib="" threads="1" iterations=30
while [ $# -gt 0 ]; do
  case $1 in
    --int8) int8=$2; shift 2 ;;
    --calib) calib=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --iterations) iterations=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "compare_ort.sh: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$model" ] || { echo "compare_ort.sh: one MODEL only" >&2; exit 2; }; model=$1; shift ;;
  esac
done
[ -n "$model" ] || { sed -n '2,12p' "$0" >&2; exit 2; }
[ -f "$model" ] || { echo "compare_ort.sh: $model: no such file" >&2; exit 1; }

q8=$root/build/q8
if [ ! -x "$q8" ]; then
  cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build" -j"$(nproc)" --target q8_cli >/dev/null
fi

cache=${Q8_ORT_CACHE:-$HOME/.cache/q8-ort}
if [ ! -d "$cache/node_modules/onnxruntime-node" ]; then
  command -v npm >/dev/null || { echo "compare_ort.sh: needs node and npm (apt-get install nodejs npm)" >&2; exit 1; }
  echo "installing onnxruntime-node into $cache ..." >&2
  npm install --prefix "$cache" --ignore-scripts --no-audit --no-fund onnxruntime-node@1.30.0 >/dev/null
fi
export NODE_PATH=$cache/node_modules

if [ -z "$int8" ] && [ -n "$calib" ]; then
  int8=$(mktemp --suffix=.int8.onnx)
  trap 'rm -f "$int8"' EXIT
  "$q8" quantize "$model" --calib "$calib" --output "$int8" >/dev/null
fi

median() { sed -n 's/.*"median_ms": *\([0-9.]*\).*/\1/p'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "cpu: $("$q8" info "$model" | sed -n 's/^cpu: //p')"
echo "model: $model${int8:+   int8: $int8}   iterations: $iterations"
for t in $threads; do
  q8_fp32=$("$q8" bench "$model" --threads "$t" --iterations "$iterations" --json | median)
  ort_fp32=$(node "$here/ort_bench.js" "$model" "$t" "$iterations" 5 | median)
  printf '\nthreads %s\n%-6s %12s %12s %10s\n' "$t" "" "q8 ms" "ORT ms" "q8/ORT"
  printf '%-6s %12.3f %12.3f %10s\n' fp32 "$q8_fp32" "$ort_fp32" "$(ratio "$q8_fp32" "$ort_fp32")"
  if [ -n "$int8" ]; then
    q8_int8=$("$q8" bench "$int8" --threads "$t" --iterations "$iterations" --json | median)
    ort_int8=$(node "$here/ort_bench.js" "$int8" "$t" "$iterations" 5 | median)
    printf '%-6s %12.3f %12.3f %10s\n' int8 "$q8_int8" "$ort_int8" "$(ratio "$q8_int8" "$ort_int8")"
    printf 'q8 int8 / ORT fp32: %s    q8 int8 / q8 fp32: %s    ORT int8 / ORT fp32: %s\n' \
      "$(ratio "$q8_int8" "$ort_fp32")" "$(ratio "$q8_int8" "$q8_fp32")" "$(ratio "$ort_int8" "$ort_fp32")"
  fi
done
