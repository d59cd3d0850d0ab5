#!/usr/bin/env bash
# Hostile inputs for the q8 program: hundreds of truncated, bit-flipped, spliced and
# junk variants of the embedded model and of a QDQ model (made here with `q8 quantize`), plus
# wrong-shape, wrong-type, lying and truncated .npy inputs. Every run of `q8 info` and `q8 run`
# must end with exit code 0, 1 or 2 within 20 s, never a signal or a timeout; exit 1 must print
# exactly one stderr line starting "q8: error: "; a failed run must leave no output file.
#
#   tests/robustness/model_mutation_test.sh PATH/TO/q8 SOURCE_DIR [VARIANTS_PER_MODEL]
#
# VARIANTS_PER_MODEL defaults to $Q8_MUTATION_VARIANTS, else 150 (the sanitizer run takes fewer:
# each variant costs it about 20 times as much, and the fuzzers mutate the same files there).
#
# Deterministic: the variants come from a fixed seed (bash's RANDOM and an AES-CTR keystream for
# junk bytes). A failing input is copied to $Q8_MUTATION_KEEP (default: /tmp/q8_mutation_failures)
# so it can be replayed. The last line is "N passed, M failed"; exits non-zero if any failed.
set -u

if [ $# -lt 2 ]; then
  echo "usage: $0 PATH/TO/q8 SOURCE_DIR [VARIANTS_PER_MODEL]" >&2
  exit 2
fi
Q8=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$2" && pwd)
PER_MODEL=${3:-${Q8_MUTATION_VARIANTS:-150}}
KEEP=${Q8_MUTATION_KEEP:-/tmp/q8_mutation_failures}
LIMIT=20

T=$(mktemp -d "${TMPDIR:-/tmp}/q8_mutation.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
RANDOM=7  # fixed seed: the same variants every run

PASSED=0
FAILED=0
CHECKS=0

# Deterministic pseudo-random bytes: junk N SALT > file.
junk() {
  if command -v openssl > /dev/null; then
    openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$2")" -iv 0 < /dev/zero 2> /dev/null | head -c "$1"
  else
    head -c "$1" /dev/urandom
  fi
}
rand32() { echo $(( (RANDOM << 15) | RANDOM )); }

# flip FILE OFFSET MASK: XORs one byte in place.
flip() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  [ -n "$b" ] || return 0
  printf "$(printf '\\%03o' $(( b ^ $3 )))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# poke FILE OFFSET BYTE: sets one byte.
poke() { printf "$(printf '\\%03o' "$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

keep_failure() {
  mkdir -p "$KEEP"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$KEEP/" 2> /dev/null; done
}

# check NAME OUTFILE(or "") FILES-TO-KEEP -- q8 ARGS...: runs q8 with a time limit and checks
# the exit code contract.
check() {
  local name=$1 out=$2 keepf=$3; shift 4
  CHECKS=$((CHECKS + 1))
  [ -n "$out" ] && rm -f "$out"
  timeout -s KILL "$LIMIT" "$Q8" "$@" > "$T/stdout" 2> "$T/stderr"
  local rc=$? why=""
  if [ "$rc" -eq 137 ] || [ "$rc" -eq 124 ]; then why="timed out (> ${LIMIT} s) or killed (exit $rc)"
  elif [ "$rc" -ge 128 ]; then why="killed by signal $((rc - 128))"
  elif [ "$rc" -gt 2 ]; then why="exit code $rc"
  elif [ "$rc" -eq 1 ]; then
    local lines
    lines=$(wc -l < "$T/stderr")
    if [ "$lines" -ne 1 ] || [ -n "$(tail -c 1 "$T/stderr")" ]; then why="exit 1 with $lines stderr line(s)"
    elif ! grep -q '^q8: error: ' "$T/stderr"; then why="stderr does not start with 'q8: error: '"
    fi
  fi
  if [ -z "$why" ] && [ -n "$out" ]; then
    if [ "$rc" -ne 0 ] && [ -e "$out" ]; then why="failed (exit $rc) but left $out"
    elif [ "$rc" -eq 0 ] && [ ! -s "$out" ]; then why="succeeded but wrote no $out"
    fi
  fi
  # Nothing but the output may appear beside it (no temporary files left behind).
  if [ -z "$why" ] && [ -n "$out" ]; then
    local stray
    stray=$(ls -A "$(dirname "$out")" | grep -v "^$(basename "$out")\$" || true)
    [ -n "$stray" ] && why="left stray files: $stray"
    rm -f "$(dirname "$out")"/* 2> /dev/null
  fi
  if [ -n "$why" ]; then
    FAILED=$((FAILED + 1))
    echo "FAIL $name: $why"
    sed 's/^/    stderr: /' "$T/stderr" | head -n 3
    keep_failure $keepf
  else
    PASSED=$((PASSED + 1))
  fi
}

# ---- .npy writing --------------------------------------------------------------------------
# npy_header DESCR SHAPE [FORTRAN]: a version 1.0 header (magic, length, dict padded to 64).
npy_header() {
  local dict="{'descr': '$1', 'fortran_order': ${3:-False}, 'shape': $2, }"
  local total=$(( (10 + ${#dict} + 1 + 63) / 64 * 64 ))
  local hlen=$((total - 10))
  printf '\223NUMPY\001\000'
  printf "$(printf '\\%03o\\%03o' $((hlen & 255)) $((hlen >> 8)))"
  printf '%s' "$dict"
  printf '%*s' $((hlen - ${#dict} - 1)) ''
  printf '\n'
}
# npy FILE DESCR SHAPE NBYTES [FORTRAN]: a header and NBYTES of small floats' bytes (zeros).
npy() {
  { npy_header "$2" "$3" "${5:-False}"; head -c "$4" /dev/zero; } > "$1"
}

# ---- the base models -----------------------------------------------------------------------
MODELS=()
FASHION=$SRC/models/fashion_cnn.onnx
MODELS+=("$FASHION")
echo "building a QDQ model with q8 quantize"
npy "$T/calib.npy" '<f4' '(8, 1, 28, 28)' $((8 * 784 * 4))
head -c $((128 + 8 * 784 * 4)) "$SRC/models/fashion_calib_256.npy" | tail -c $((8 * 784 * 4)) >> /dev/null
# Real samples make a realistic calibration: 8 of them, header rewritten for (8, 1, 28, 28).
{ npy_header '<f4' '(8, 1, 28, 28)'; tail -c +129 "$SRC/models/fashion_calib_256.npy" | head -c $((8 * 784 * 4)); } > "$T/calib.npy"
if timeout 120 "$Q8" quantize "$FASHION" --calib "$T/calib.npy" --output "$T/fashion.qdq.onnx" --method minmax > /dev/null 2> "$T/stderr"; then
  MODELS+=("$T/fashion.qdq.onnx")
else
  FAILED=$((FAILED + 1)); echo "FAIL quantize: $(head -n 1 "$T/stderr")"
fi
[ -f "$SRC/../shared/models/seed.qop.onnx" ] && MODELS+=("$SRC/../shared/models/seed.qop.onnx")

# A valid input for the 28x28 models: one real sample.
{ npy_header '<f4' '(1, 1, 28, 28)'; tail -c +129 "$SRC/models/fashion_test_500.npy" | head -c 3136; } > "$T/x.npy"
mkdir -p "$T/out"
OUT=$T/out/y.npy

# Runs info and run on one model variant.
probe_model() {
  local name=$1 f=$2
  check "$name info" "" "$f" -- info "$f"
  check "$name run" "$OUT" "$f" -- run "$f" --input "$T/x.npy" --output "$OUT"
}

# ---- model variants ------------------------------------------------------------------------
m=0
for base in "${MODELS[@]}"; do
  m=$((m + 1))
  size=$(stat -c %s "$base")
  tag=$(basename "$base" .onnx)
  V=$T/m$m.onnx
  probe_model "$tag (unchanged)" "$base"
  n_trunc=$((PER_MODEL / 4)); n_flip=$((PER_MODEL / 2)); n_junk=$((PER_MODEL - n_trunc - n_flip))
  # Truncations: the first bytes, a spread over the file, and the last bytes.
  for ((i = 0; i < n_trunc; i++)); do
    case $((i % 3)) in
      0) len=$((i / 3)) ;;
      1) len=$(( size * i / n_trunc )) ;;
      2) len=$(( size - 1 - i / 3 )) ;;
    esac
    head -c "$len" "$base" > "$V"
    probe_model "$tag truncated to $len" "$V"
  done
  # Bit flips: 1 to 8 random bits; half of the variants aim at the first and last 4 KiB, where
  # the node list, attributes, graph inputs and outputs live (weights fill the middle).
  for ((i = 0; i < n_flip; i++)); do
    cp "$base" "$V"
    nbits=$(( 1 + i % 8 ))
    desc=""
    for ((b = 0; b < nbits; b++)); do
      r=$(rand32)
      if ((i % 2)); then
        if ((r % 2)); then off=$(( r % (size < 4096 ? size : 4096) )); else off=$(( size - 1 - r % (size < 4096 ? size : 4096) )); fi
      else
        off=$(( r % size ))
      fi
      flip "$V" "$off" $(( 1 << (RANDOM % 8) ))
      desc="$desc $off"
    done
    probe_model "$tag bits flipped at$desc" "$V"
  done
  # Junk: random bytes, valid prefixes with junk tails, zeros, 0xff, splices, doubled files,
  # bytes set to extreme values (lengths and varints turn huge).
  for ((i = 0; i < n_junk; i++)); do
    r=$(rand32)
    case $((i % 8)) in
      0) junk $(( 1 + r % 4096 )) "$r" > "$V"; what="random bytes" ;;
      1) { head -c $(( r % size )) "$base"; junk $(( 1 + r % 65536 )) "$r"; } > "$V"; what="prefix + random tail" ;;
      2) head -c $(( r % 100000 )) /dev/zero > "$V"; what="zeros" ;;
      3) head -c $(( 1 + r % 5000 )) /dev/zero | tr '\0' '\377' > "$V"; what="0xff bytes" ;;
      4) { head -c $(( size / 2 )) "$base"; tail -c +$(( r % size + 1 )) "${MODELS[$(( r % ${#MODELS[@]} ))]}"; } > "$V"; what="splice" ;;
      5) cat "$base" "$base" > "$V"; what="doubled" ;;
      6) cp "$base" "$V"
         for ((k = 0; k < 4; k++)); do off=$(( $(rand32) % (size < 2048 ? size : 2048) )); poke "$V" "$off" $(( (RANDOM % 2) ? 255 : 0 )); done
         what="bytes set to 0x00/0xff near the start" ;;
      7) cp "$base" "$V"; off=$(( r % size )); len=$(( 1 + RANDOM % 512 ))
         junk "$len" "$r" | dd of="$V" bs=1 seek="$off" conv=notrunc status=none
         what="random run of $len bytes at $off" ;;
    esac
    probe_model "$tag junk #$i ($what)" "$V"
  done
  echo "after $tag: $PASSED passed, $FAILED failed"
done

# Not a model at all.
check "model is a folder" "" "" -- info "$T/out"
check "model does not exist" "" "" -- info "$T/nonexistent.onnx"
check "model is an .npy" "$OUT" "" -- run "$T/x.npy" --input "$T/x.npy" --output "$OUT"
check "model is /dev/null" "" "" -- info /dev/null

# ---- input variants ------------------------------------------------------------------------
I=$T/in.npy
probe_input() {  # probe_input NAME: runs the fp32 and QDQ models on $I
  for base in "${MODELS[@]:0:2}"; do
    check "$1 ($(basename "$base" .onnx))" "$OUT" "$I" -- run "$base" --input "$I" --output "$OUT"
  done
}
NB=3136
npy "$I" '<f4' '(1, 1, 28, 28)' $NB;            probe_input "zero input"
npy "$I" '<f4' '(2, 1, 28, 28)' $((2 * NB));    probe_input "batch of 2"
npy "$I" '<f4' '(0, 1, 28, 28)' 0;              probe_input "batch of 0"
npy "$I" '<f4' '(1, 28, 28)' $NB;               probe_input "rank 3"
npy "$I" '<f4' '(784,)' $NB;                    probe_input "rank 1"
npy "$I" '<f4' '()' 4;                          probe_input "scalar"
npy "$I" '<f4' '(1, 1, 1, 1, 28, 28)' $NB;      probe_input "rank 6"
npy "$I" '<f4' '(1, 3, 28, 28)' $((3 * NB));    probe_input "3 channels"
npy "$I" '<f4' '(1, 1, 28, 27)' $((NB - 112));  probe_input "width 27"
npy "$I" '<f4' '(1, 1, 56, 56)' $((4 * NB));    probe_input "56x56"
npy "$I" '<f4' '(1, 1, 1, 1)' 4;                probe_input "1x1 image"
npy "$I" '<f8' '(1, 1, 28, 28)' $((2 * NB));    probe_input "float64 (converted)"
npy "$I" '<i8' '(1, 1, 28, 28)' $((2 * NB));    probe_input "int64 (converted)"
npy "$I" '<i4' '(1, 1, 28, 28)' $NB;            probe_input "int32"
npy "$I" '|u1' '(1, 1, 28, 28)' 784;            probe_input "uint8"
npy "$I" '|i1' '(1, 1, 28, 28)' 784;            probe_input "int8"
npy "$I" '<f2' '(1, 1, 28, 28)' $((NB / 2));    probe_input "float16"
npy "$I" '>f4' '(1, 1, 28, 28)' $NB;            probe_input "big-endian float32"
npy "$I" '|b1' '(1, 1, 28, 28)' 784;            probe_input "bool"
npy "$I" '<c8' '(1, 1, 28, 28)' $((2 * NB));    probe_input "complex64"
npy "$I" '|O' '(1, 1, 28, 28)' $((2 * NB));     probe_input "object array"
npy "$I" '<U4' '(1, 1, 28, 28)' $((4 * NB));    probe_input "unicode strings"
npy "$I" '<f4' '(1, 1, 28, 28)' $NB True;       probe_input "fortran order"
npy "$I" '<f4' '(1, 1, 28, 28)' $((NB - 4));    probe_input "header lies: 4 bytes short"
npy "$I" '<f4' '(1, 1, 28, 28)' $((NB + 4));    probe_input "header lies: 4 bytes extra"
npy "$I" '<f4' '(10, 1, 28, 28)' $NB;           probe_input "header lies: 10 samples, data for 1"
npy "$I" '<f4' '(99999999999, 99999999999, 28, 28)' 64; probe_input "overflowing shape"
npy "$I" '<f4' '(4611686018427387904, 4)' 64;   probe_input "shape product overflows int64"
npy "$I" '<f4' '(-1, 1, 28, 28)' $NB;           probe_input "negative dimension"
npy "$I" '<f4' '(1, 1, 1000000, 1000000)' 64;   probe_input "huge image, little data"
npy "$I" '<f4' '(1,1,28,28' $NB;                probe_input "unclosed shape"
npy "$I" '<f4' 'None' $NB;                      probe_input "shape None"
npy "$I" 'f4' '(1, 1, 28, 28)' $NB;             probe_input "descr without byte order"
printf '' > "$I";                               probe_input "empty file"
printf '\223NUMPY' > "$I";                      probe_input "magic only"
printf '\223NUMPY\001\000\377\377{' > "$I";     probe_input "header length beyond the file"
{ printf '\223NUMPY\003\000'; printf '\000\000\000\001'; } > "$I"; probe_input "v3 header of 16 MiB claimed"
{ npy_header '<f4' '(1, 1, 28, 28)'; } | sed 's/NUMPY\x01/NUMPY\x09/' > "$I"; head -c $NB /dev/zero >> "$I"; probe_input "version 9"
head -c $((128 + NB)) "$T/x.npy" > "$I";        probe_input "valid copy"
for len in 0 5 9 10 40 64 127 128 129 1000 3263; do
  head -c "$len" "$T/x.npy" > "$I";             probe_input "input truncated to $len"
done
for ((i = 0; i < 40; i++)); do
  cp "$T/x.npy" "$I"
  off=$(( $(rand32) % 128 )); flip "$I" "$off" $(( 1 << (RANDOM % 8) ))
  probe_input "input header bit flipped at $off"
done
npy "$I" '<f4' '(1, 1, 28, 28)' $NB
{ npy_header '<f4' '(1, 1, 28, 28)'; printf '\000\000\300\177%.0s' $(seq 784); } > "$I"; probe_input "NaN input"
{ npy_header '<f4' '(1, 1, 28, 28)'; printf '\000\000\200\177%.0s' $(seq 784); } > "$I"; probe_input "+inf input"
check "two inputs for a one-input model" "$OUT" "" -- run "$FASHION" --input "$T/x.npy" --input "$T/x.npy" --output "$OUT"
check "input is a folder" "$OUT" "" -- run "$FASHION" --input "$T/out" --output "$OUT"
check "input does not exist" "$OUT" "" -- run "$FASHION" --input "$T/none.npy" --output "$OUT"
check "output into a missing folder" "" "" -- run "$FASHION" --input "$T/x.npy" --output "$T/nope/y.npy"

echo "$CHECKS runs of q8"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
