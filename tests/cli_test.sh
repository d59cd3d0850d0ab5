#!/usr/bin/env bash
# The q8 program's contract (DESIGN.md, "The q8 program"): help texts, exit codes (0 ok, 1 error,
# 2 usage), one-line errors, whole-or-nothing output files, `info` and `bench --json` output.
#
#   tests/cli_test.sh PATH/TO/q8 SOURCE_DIR
#
# Prints one line per check and a final "N passed, M failed"; exits non-zero if any check failed.
# Checks that need ../shared (beside SOURCE_DIR) are skipped, not failed, when it is absent.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 PATH/TO/q8 SOURCE_DIR" >&2
  exit 2
fi
Q8=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$2" && pwd)
SHARED=$SRC/../shared
MODEL=$SRC/models/fashion_cnn.onnx
DATA=$SRC/models/fashion_test_500.npy
LSTM=/usr/share/libonnx-testdata/data/node/test_lstm_defaults/model.onnx

T=$(mktemp -d "${TMPDIR:-/tmp}/q8_cli_test.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() {
  FAILED=$((FAILED + 1)); echo "FAIL $1: $2"
  if [ -s "$T/stderr" ]; then sed 's/^/    stderr: /' "$T/stderr" | head -n 5; fi
}
skip() { echo "skip $1: $2"; }
have_shared() { [ -d "$SHARED/models" ] && [ -d "$SHARED/reference" ]; }

# Runs q8 with the given arguments (bounded in time), leaving $RC, $T/stdout and $T/stderr.
TIMEOUT=""
command -v timeout > /dev/null && TIMEOUT="timeout 120"
q8() {
  $TIMEOUT "$Q8" "$@" > "$T/stdout" 2> "$T/stderr"
  RC=$?
}

# A fresh, empty folder for a command's outputs; `outdir_empty` checks nothing was left in it.
OUTN=0
new_outdir() { OUTN=$((OUTN + 1)); OUTDIR=$T/out$OUTN; mkdir "$OUTDIR"; }
outdir_empty() { [ -z "$(ls -A "$OUTDIR")" ]; }

# check_help NAME ARGS...: exit 0, usage text on stdout.
check_help() {
  local name=$1; shift
  q8 "$@"
  if [ "$RC" -ne 0 ]; then fail "$name" "exit $RC, expected 0"
  elif ! grep -q '^usage: q8' "$T/stdout"; then fail "$name" "no 'usage: q8' line on stdout"
  else pass "$name"; fi
}

# check_usage NAME ARGS...: exit 2, "q8: usage error:" first on stderr, no output file left.
check_usage() {
  local name=$1; shift
  new_outdir
  q8 "$@"
  if [ "$RC" -ne 2 ]; then fail "$name" "exit $RC, expected 2"
  elif ! head -n 1 "$T/stderr" | grep -q '^q8: usage error: '; then fail "$name" "stderr does not start with 'q8: usage error: '"
  elif ! outdir_empty; then fail "$name" "left files in the output folder: $(ls -A "$OUTDIR" | tr '\n' ' ')"
  else pass "$name"; fi
}

# check_refusal NAME PATTERN ARGS...: exit 1, stdout empty, stderr exactly one line starting
# "q8: error: " and matching the extended regex PATTERN (empty: any), no file left in $OUTDIR.
# The caller makes $OUTDIR with new_outdir first (so it can name files in it).
check_refusal() {
  local name=$1 pattern=$2; shift 2
  q8 "$@"
  local lines
  lines=$(wc -l < "$T/stderr")
  if [ "$RC" -ne 1 ]; then fail "$name" "exit $RC, expected 1"
  elif [ "$lines" -ne 1 ] || [ -n "$(tail -c 1 "$T/stderr")" ]; then fail "$name" "stderr is not exactly one line ($lines newline(s))"
  elif ! grep -q '^q8: error: ' "$T/stderr"; then fail "$name" "stderr does not start with 'q8: error: '"
  elif [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$T/stderr"; then fail "$name" "message does not match /$pattern/"
  elif [ -s "$T/stdout" ]; then fail "$name" "printed on stdout"
  elif ! outdir_empty; then fail "$name" "left files in the output folder: $(ls -A "$OUTDIR" | tr '\n' ' ')"
  else pass "$name"; fi
}

# Writes a float32 .npy of zeros with the given shape, e.g. make_npy F.npy "1, 3, 28, 28" 2352.
make_npy() {
  local file=$1 shape=$2 numel=$3
  local dict="{'descr': '<f4', 'fortran_order': False, 'shape': ($shape), }"
  local hlen=$(( (10 + ${#dict} + 1 + 63) / 64 * 64 - 10 ))
  {
    printf '\x93NUMPY\x01\x00'
    printf "\\x$(printf '%02x' $((hlen % 256)))\\x$(printf '%02x' $((hlen / 256)))"
    printf '%-*s\n' $((hlen - 1)) "$dict"
    head -c $((numel * 4)) /dev/zero
  } > "$file"
}

# ---------------------------------------------------------------------------------------- help
check_help "help: q8 --help" --help
check_help "help: q8 run --help" run --help
check_help "help: q8 info --help" info --help
check_help "help: q8 bench --help" bench --help

# ------------------------------------------------------------------------------- usage errors
check_usage "usage: no command"
check_usage "usage: unknown command" frobnicate "$MODEL"
check_usage "usage: run without --input" run "$MODEL" --output "$T/out$((OUTN + 1))/y.npy"
check_usage "usage: unknown option" run "$MODEL" --input "$DATA" --output "$T/out$((OUTN + 1))/y.npy" --bogus 1
check_usage "usage: --threads 0" run "$MODEL" --input "$DATA" --output "$T/out$((OUTN + 1))/y.npy" --threads 0
check_usage "usage: --threads abc" run "$MODEL" --input "$DATA" --output "$T/out$((OUTN + 1))/y.npy" --threads abc
check_usage "usage: --precision fp16" run "$MODEL" --input "$DATA" --output "$T/out$((OUTN + 1))/y.npy" --precision fp16
check_usage "usage: bench --iterations 0" bench "$MODEL" --iterations 0

# ------------------------------------------------------------------------------------- run ok
new_outdir
Y1=$OUTDIR/y1.npy
Y2=$OUTDIR/y2.npy
q8 run "$MODEL" --input "$DATA" --output "$Y1"
if [ "$RC" -ne 0 ]; then fail "run: fashion_cnn on 500 images" "exit $RC, expected 0"
elif [ ! -f "$Y1" ]; then fail "run: fashion_cnn on 500 images" "no output file"
elif ! head -c 128 "$Y1" | grep -aq "'shape': (500, 10)"; then fail "run: fashion_cnn on 500 images" "header lacks shape (500, 10): $(head -c 128 "$Y1" | tr -dc '[:print:]')"
elif [ "$(stat -c %s "$Y1")" -ne $((128 + 500 * 10 * 4)) ]; then fail "run: fashion_cnn on 500 images" "size $(stat -c %s "$Y1"), expected $((128 + 500 * 10 * 4))"
elif [ "$(ls -A "$OUTDIR")" != "y1.npy" ]; then fail "run: fashion_cnn on 500 images" "other files in the output folder: $(ls -A "$OUTDIR" | tr '\n' ' ')"
else pass "run: fashion_cnn on 500 images"; fi

q8 run "$MODEL" --input "$DATA" --output "$Y2" --threads 2
if [ "$RC" -ne 0 ]; then fail "run: --threads 2 is byte-identical to --threads 1" "exit $RC, expected 0"
elif ! cmp -s "$Y1" "$Y2"; then fail "run: --threads 2 is byte-identical to --threads 1" "outputs differ: $(cmp "$Y1" "$Y2" 2>&1)"
else pass "run: --threads 2 is byte-identical to --threads 1"; fi

# An existing output file is replaced whole.
printf 'old contents' > "$Y2"
q8 run "$MODEL" --input "$DATA" --output "$Y2"
if [ "$RC" -ne 0 ] || ! cmp -s "$Y1" "$Y2"; then fail "run: overwrites an existing output" "exit $RC or contents differ"
else pass "run: overwrites an existing output"; fi

# ----------------------------------------------------------------------------------- refusals
new_outdir
if [ -f "$LSTM" ]; then
  check_refusal "refuse: LSTM model (unsupported op, names the node)" "LSTM.*node '[^']+'|node '[^']+'.*LSTM" \
    run "$LSTM" --input "$DATA" --output "$OUTDIR/y.npy"
else
  skip "refuse: LSTM model (unsupported op, names the node)" "no $LSTM (libonnx-testdata)"
fi

new_outdir
head -c 1000 "$MODEL" > "$T/truncated.onnx"
check_refusal "refuse: truncated model" "" run "$T/truncated.onnx" --input "$DATA" --output "$OUTDIR/y.npy"

new_outdir
if command -v python3 > /dev/null; then
  python3 -c 'import random,sys; r=random.Random(8); sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range(4096)))' > "$T/random.onnx"
else
  head -c 4096 /dev/urandom > "$T/random.onnx"
fi
check_refusal "refuse: model of random bytes" "" run "$T/random.onnx" --input "$DATA" --output "$OUTDIR/y.npy"

new_outdir
check_refusal "refuse: empty model file" "" run /dev/null --input "$DATA" --output "$OUTDIR/y.npy"

new_outdir
check_refusal "refuse: nonexistent model" "no_such_model\\.onnx" run "$T/no_such_model.onnx" --input "$DATA" --output "$OUTDIR/y.npy"

new_outdir
mkdir "$T/adir.onnx"
check_refusal "refuse: directory as the model" "" run "$T/adir.onnx" --input "$DATA" --output "$OUTDIR/y.npy"

new_outdir
make_npy "$T/wrong_shape.npy" "1, 3, 28, 28" 2352
check_refusal "refuse: input of the wrong shape [1,3,28,28]" "" run "$MODEL" --input "$T/wrong_shape.npy" --output "$OUTDIR/y.npy"

new_outdir
if have_shared; then
  check_refusal "refuse: imagenet input to the fashion model" "" \
    run "$MODEL" --input "$SHARED/reference/imagenet_input_2x3x224x224.npy" --output "$OUTDIR/y.npy"
else
  skip "refuse: imagenet input to the fashion model" "no $SHARED"
fi

new_outdir
echo "this is not an npy file" > "$T/text.npy"
check_refusal "refuse: input that is not .npy" "" run "$MODEL" --input "$T/text.npy" --output "$OUTDIR/y.npy"

new_outdir
head -c 5000 "$DATA" > "$T/truncated.npy"
check_refusal "refuse: truncated input .npy" "" run "$MODEL" --input "$T/truncated.npy" --output "$OUTDIR/y.npy"

new_outdir
check_refusal "refuse: nonexistent input" "no_such_input\\.npy" run "$MODEL" --input "$T/no_such_input.npy" --output "$OUTDIR/y.npy"

new_outdir
check_refusal "refuse: output in a nonexistent folder" "" run "$MODEL" --input "$DATA" --output "$OUTDIR/no_such_dir/y.npy"
if [ -e "$OUTDIR/no_such_dir" ]; then fail "refuse: output in a nonexistent folder creates nothing" "$OUTDIR/no_such_dir was created"
else pass "refuse: output in a nonexistent folder creates nothing"; fi

check_usage "usage: --precision int8 on an fp32 model without --calib" run "$MODEL" --input "$DATA" --output "$OUTDIR/y.npy" --precision int8
check_usage "usage: --method unknown-method" quantize "$MODEL" --calib "$SRC/models/fashion_calib_256.npy" --output "$OUTDIR/q.onnx" --method fancy
new_outdir
make_npy "$T/calib_wrong.npy" "4, 3, 28, 28" $((4 * 3 * 28 * 28))
check_refusal "refuse: calibration data of the wrong shape" "calibration|shape" quantize "$MODEL" --calib "$T/calib_wrong.npy" --output "$OUTDIR/q.onnx"
new_outdir
mkdir -p "$T/empty_calib"
check_refusal "refuse: an empty calibration folder" "calib|empty|no " quantize "$MODEL" --calib "$T/empty_calib" --output "$OUTDIR/q.onnx"
new_outdir
mkdir -p "$T/bad_images" && echo "not an image" > "$T/bad_images/a.png"
check_refusal "refuse: an unreadable calibration image" "a.png" quantize "$MODEL" --calib "$T/bad_images" --output "$OUTDIR/q.onnx"
new_outdir
check_refusal "refuse: --exclude of every node q8 runs in int8, named" "nothing left to quantize.*/0/Conv, /3/Conv, /7/Gemm" \
  quantize "$MODEL" --calib "$SRC/models/fashion_calib_256.npy" --output "$OUTDIR/q.onnx" --exclude /0/Conv,/3/Conv,/7/Gemm

# ---------------------------------------------------------------------------------------- int8
new_outdir
q8 quantize "$MODEL" --calib "$SRC/models/fashion_calib_256.npy" --output "$OUTDIR/q.onnx"
if [ "$RC" -ne 0 ] || [ ! -s "$OUTDIR/q.onnx" ]; then fail "quantize: writes the int8 model" "exit $RC"
else pass "quantize: writes the int8 model"; fi
Q8MODEL=$OUTDIR/q.onnx
q8 run "$Q8MODEL" --input "$DATA" --output "$OUTDIR/y8.npy"
if [ "$RC" -ne 0 ] || ! head -c 128 "$OUTDIR/y8.npy" | grep -q "'shape': (500, 10)"; then fail "run: the quantized file runs (int8)" "exit $RC"
else pass "run: the quantized file runs (int8)"; fi
q8 run "$MODEL" --input "$DATA" --output "$OUTDIR/y8mem.npy" --precision int8 --calib "$SRC/models/fashion_calib_256.npy"
if [ "$RC" -ne 0 ] || ! cmp -s "$OUTDIR/y8.npy" "$OUTDIR/y8mem.npy"; then fail "run: --precision int8 --calib equals the saved model's output" "exit $RC"
else pass "run: --precision int8 --calib equals the saved model's output"; fi
new_outdir
check_refusal "refuse: --precision fp32 on a quantized model" "quantized" run "$Q8MODEL" --input "$DATA" --output "$OUTDIR/y.npy" --precision fp32

# -------------------------------------------------------------------------------------- info
q8 info "$MODEL"
name="info: fashion_cnn"
if [ "$RC" -ne 0 ]; then fail "$name" "exit $RC, expected 0"
else
  missing=""
  for n in /0/Conv /3/Conv /7/Gemm; do grep -q -- "^$n " "$T/stdout" || missing="$missing $n"; done
  grep -q 'total MACs' "$T/stdout" || missing="$missing 'total MACs'"
  grep -q '^cpu: ' "$T/stdout" || missing="$missing 'cpu:'"
  if [ -n "$missing" ]; then fail "$name" "missing from stdout:$missing"; else pass "$name"; fi
fi

new_outdir
if [ -f "$LSTM" ]; then check_refusal "info: LSTM model is refused" "LSTM" info "$LSTM"
else skip "info: LSTM model is refused" "no $LSTM (libonnx-testdata)"; fi

new_outdir
check_refusal "info: nonexistent model is refused" "" info "$T/no_such_model.onnx"

# ------------------------------------------------------------------------------------- bench
q8 bench "$MODEL" --iterations 3 --warmup 1 --json
name="bench: --json"
if [ "$RC" -ne 0 ]; then fail "$name" "exit $RC, expected 0"
elif [ "$(wc -l < "$T/stdout")" -ne 1 ]; then fail "$name" "stdout is $(wc -l < "$T/stdout") lines, expected 1"
elif command -v python3 > /dev/null; then
  if err=$(python3 -c '
import json, sys
d = json.load(sys.stdin)
assert isinstance(d, dict), "not an object"
for k in ("median_ms", "min_ms", "max_ms", "iterations", "threads", "isa"):
    assert k in d, "no key " + k
for k in ("median_ms", "min_ms", "max_ms"):
    assert isinstance(d[k], (int, float)) and d[k] >= 0, k + " is not a number >= 0"
assert d["min_ms"] <= d["median_ms"] <= d["max_ms"], "not min <= median <= max"
assert d["iterations"] == 3, "iterations is %r, expected 3" % d["iterations"]
assert d["threads"] == 1, "threads is %r, expected 1" % d["threads"]
assert isinstance(d["isa"], str) and d["isa"], "isa is not a non-empty string"
' < "$T/stdout" 2>&1); then pass "$name"
  else fail "$name" "$(echo "$err" | tail -n 1): $(cat "$T/stdout")"; fi
elif command -v node > /dev/null; then
  if node -e '
const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
for (const k of ["median_ms", "min_ms", "max_ms", "iterations", "threads", "isa"]) if (!(k in d)) throw new Error("no key " + k);
if (d.iterations !== 3) throw new Error("iterations " + d.iterations);
' < "$T/stdout" > /dev/null 2>&1; then pass "$name"; else fail "$name" "invalid JSON: $(cat "$T/stdout")"; fi
else
  skip "$name" "neither python3 nor node to parse JSON"
fi

new_outdir
if [ -f "$LSTM" ]; then check_refusal "bench: LSTM model is refused" "LSTM" bench "$LSTM" --iterations 1 --warmup 0
else skip "bench: LSTM model is refused" "no $LSTM (libonnx-testdata)"; fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
