#!/usr/bin/env bash
# q8 against ONNX Runtime on this CPU, on the same file, in one run: medians and ratios.
#
#   bench/compare_ort.sh MODEL.onnx [--int8 MODEL.int8.onnx | --calib CALIB] [--threads "1 2"]
#                        [--iterations N] [--rounds R]
#
# MODEL is the fp32 file. The int8 file is either given (e.g. ONNX Runtime's own QDQ file, so
# both engines run the same bytes) or made by `q8 quantize` from CALIB. ONNX Runtime comes from
# npm (onnxruntime-node, installed once into $Q8_ORT_CACHE, default ~/.cache/q8-ort; the
# package's install script is skipped because it downloads GPU libraries).
# Prints a table per thread count: q8 and ORT medians for fp32 and int8, and their ratios. With
# --rounds R (default 1) the engines alternate R times on each file (q8, ORT, q8, ORT, ...), so
# both see the same machine load, and the table gives the median of each engine's R medians; the
# ratios of every round are printed too. On a shared machine use R >= 3.
# On an x86 CPU without VNNI, ONNX Runtime's int8 products saturate by default (ort_common.js), so
# the int8 file is also timed under its exact mode (row "exact", ort_bench.js --exact). With
# an int8 file, the outputs of both engines are then checked against ONNX Runtime's fp32 outputs
# (bench/ort_agreement.js: SQNR and top-1 on seeded inputs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

model="" int8="" calib="" threads="1" iterations=30 rounds=1
while [ $# -gt 0 ]; do
  case $1 in
    --int8) int8=$2; shift 2 ;;
    --calib) calib=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --iterations) iterations=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "compare_ort.sh: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$model" ] || { echo "compare_ort.sh: one MODEL only" >&2; exit 2; }; model=$1; shift ;;
  esac
done
[ -n "$model" ] || { sed -n '2,19p' "$0" >&2; exit 2; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "compare_ort.sh: --rounds wants a positive integer, got '$rounds'" >&2; exit 2; }
[[ $iterations =~ ^[1-9][0-9]*$ ]] || { echo "compare_ort.sh: --iterations wants a positive integer" >&2; exit 2; }
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
# The median of the numbers given as arguments.
median_of() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One file at one thread count, R alternating rounds: sets the globals q8_ms, ort_ms (medians of
# the rounds) and per_round (each round's q8/ORT ratio); with a third argument "exact", also
# ortx_ms and per_round_x for ONNX Runtime's exact mode, run third in each round.
compare() {  # compare FILE THREADS [exact]
  local q=() o=() x=() r
  per_round="" per_round_x=""
  for ((r = 0; r < rounds; r++)); do
    q+=("$("$q8" bench "$1" --threads "$2" --iterations "$iterations" --json | median)")
    o+=("$(node "$here/ort_bench.js" "$1" "$2" "$iterations" 5 | median)")
    per_round="$per_round $(ratio "${q[-1]}" "${o[-1]}")"
    if [ "${3:-}" = exact ]; then
      x+=("$(node "$here/ort_bench.js" "$1" "$2" "$iterations" 5 --exact | median)")
      per_round_x="$per_round_x $(ratio "${q[-1]}" "${x[-1]}")"
    fi
  done
  q8_ms=$(median_of "${q[@]}")
  ort_ms=$(median_of "${o[@]}")
  [ "${3:-}" != exact ] || ortx_ms=$(median_of "${x[@]}")
}

info=$("$q8" info "$model")
echo "cpu: $(sed -n 's/^cpu: //p' <<<"$info")"
# q8 info lists each x86 path the CPU lacks as "not ISA: why"; both VNNI paths missing means ONNX
# Runtime's u8 x s8 GEMMs can saturate here.
exact=""
if grep -q '^ *not avx512vnni:' <<<"$info" && grep -q '^ *not avxvnni:' <<<"$info"; then exact=exact; fi
echo "model: $model${int8:+   int8: $int8}   iterations: $iterations   rounds: $rounds"
for t in $threads; do
  printf '\nthreads %s\n%-6s %12s %12s %10s   %s\n' "$t" "" "q8 ms" "ORT ms" "q8/ORT" "q8/ORT per round"
  compare "$model" "$t"
  q8_fp32=$q8_ms ort_fp32=$ort_ms
  printf '%-6s %12.3f %12.3f %10s  %s\n' fp32 "$q8_fp32" "$ort_fp32" "$(ratio "$q8_fp32" "$ort_fp32")" "$per_round"
  if [ -n "$int8" ]; then
    compare "$int8" "$t" $exact
    q8_int8=$q8_ms ort_int8=$ort_ms
    printf '%-6s %12.3f %12.3f %10s  %s\n' int8 "$q8_int8" "$ort_int8" "$(ratio "$q8_int8" "$ort_int8")" "$per_round"
    [ -z "$exact" ] ||
      printf '%-6s %12s %12.3f %10s  %s   (ONNX Runtime exact: ort_bench.js --exact)\n' "exact" "" "$ortx_ms" \
        "$(ratio "$q8_int8" "$ortx_ms")" "$per_round_x"
    printf 'q8 int8 / ORT fp32: %s    q8 int8 / q8 fp32: %s    ORT int8 / ORT fp32: %s\n' \
      "$(ratio "$q8_int8" "$ort_fp32")" "$(ratio "$q8_int8" "$q8_fp32")" "$(ratio "$ort_int8" "$ort_fp32")"
  fi
done

if [ -n "$int8" ]; then
  echo
  node "$here/ort_agreement.js" "$model" "$int8" "$q8"
fi
