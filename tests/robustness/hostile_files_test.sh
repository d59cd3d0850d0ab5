#!/usr/bin/env bash
# Hostile files, paths and limits against the q8 program. The files come from generators
# (make_hostile_files: empty outputs, huge pool windows, names that drive a terminal,
# overflowing quantization scales, denormal weights, 100k-node chains, lying images); the paths
# and limits are made here (FIFOs, device nodes, long names, modes, ulimit -f, thread limits).
#
#   tests/robustness/hostile_files_test.sh PATH/TO/q8 PATH/TO/make_hostile_files SOURCE_DIR
#
# Every run must end within 20 s with the exit code the case names (never a signal); an exit 1
# prints exactly one stderr line "q8: error: ..." holding the expected text; nothing printed holds
# a raw control byte (C0 but newline, DEL, C1) or invalid UTF-8; no temporary file is left; and
# what must be deterministic gives the same bytes across runs, kernel paths and thread counts.
# The last line is "N passed, M failed"; exits non-zero if any failed.
set -u

if [ $# -ne 3 ]; then
  echo "usage: $0 PATH/TO/q8 PATH/TO/make_hostile_files SOURCE_DIR" >&2
  exit 2
fi
Q8=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
GEN=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
SRC=$(cd "$3" && pwd)
LIMIT=20
T=$(mktemp -d "${TMPDIR:-/tmp}/q8_hostile.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
H=$T/files
"$GEN" "$H" || { echo "make_hostile_files failed"; exit 1; }
FASHION=$SRC/models/fashion_cnn.onnx
FASHION_CALIB=$SRC/models/fashion_calib_256.npy

PASSED=0
FAILED=0
SKIPPED=0
# An AddressSanitizer build (scripts/test_sanitizers.sh) cannot run under `ulimit -v`.
SANITIZED=0
grep -q __asan_init "$Q8" && SANITIZED=1
pass() { PASSED=$((PASSED + 1)); }
fail() {
  FAILED=$((FAILED + 1))
  echo "FAIL: $*"
}

# Bytes a terminal could act on: C0 controls but newline and tab, DEL, C1 controls, and
# anything that is not UTF-8.
clean_text() {
  perl -e 'local $/; my $t = <STDIN>; exit 1 if $t =~ /[\x00-\x08\x0b-\x1f\x7f]/;
           exit 1 unless utf8::decode($t); exit 1 if $t =~ /[\x{80}-\x{9f}]/; exit 0' < "$1"
}

# q8_run NAME EXPECTED_EXIT TEXT -- ARGS...: runs q8 under the time limit and checks the
# contract; leaves stdout in $T/out, stderr in $T/err, the code in $RC.
q8_run() {
  local name=$1 want=$2 text=$3
  shift 4
  timeout -s KILL $LIMIT "$Q8" "$@" > "$T/out" 2> "$T/err" < /dev/null
  RC=$?
  local ok=1
  if [ $RC -ne "$want" ]; then
    fail "$name: exit $RC, expected $want: $(head -c 300 "$T/err")"
    ok=0
  elif [ "$want" -eq 1 ]; then
    if [ "$(wc -l < "$T/err")" -ne 1 ] || ! head -n1 "$T/err" | grep -q '^q8: error: '; then
      fail "$name: expected one 'q8: error:' line, got: $(head -c 300 "$T/err")"
      ok=0
    elif [ "$text" != "-" ] && ! grep -qF -- "$text" "$T/err"; then
      fail "$name: error does not mention '$text': $(head -c 300 "$T/err")"
      ok=0
    fi
  fi
  if ! clean_text "$T/out" || ! clean_text "$T/err"; then
    fail "$name: raw control bytes or invalid UTF-8 in the output"
    ok=0
  fi
  [ $ok -eq 1 ] && pass
  return 0
}

# ulimit_run NAME OPTION VALUE EXPECTED_EXIT TEXT ARGS...: q8 under `ulimit OPTION VALUE`.
# stderr goes through a pipe, which no file-size limit applies to.
ulimit_run() {
  local name=$1 opt=$2 value=$3 want=$4 text=$5
  shift 5
  local rc
  if [ "$opt" = -v ] && [ $SANITIZED -eq 1 ]; then
    echo "skipped: $name (AddressSanitizer reserves more address space than the limit)"
    SKIPPED=$((SKIPPED + 1))
    return 0
  fi
  bash -c 'ulimit '"$opt $value"'; exec timeout -s KILL '"$LIMIT"' "$@"' _ "$Q8" "$@" < /dev/null 2>&1 > /dev/null | cat > "$T/err_ulimit"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq "$want" ] && { [ "$want" -eq 0 ] || { [ "$(wc -l < "$T/err_ulimit")" -eq 1 ] && grep -q '^q8: error: ' "$T/err_ulimit" && grep -qF -- "$text" "$T/err_ulimit"; }; }; then
    pass
  else
    fail "$name: exit $rc, expected $want with '$text': $(head -c 300 "$T/err_ulimit")"
  fi
}

no_temporaries() {  # FOLDER NAME
  if ls -A "$1" | grep -q '^\.q8-'; then fail "$2: temporary file left in $1"; else pass; fi
}

ISAS=()
for isa in scalar avx2 avxvnni avx512 avx512vnni neon neondot neoni8mm; do
  Q8_ISA=$isa "$Q8" info "$FASHION" > /dev/null 2>&1 && ISAS+=("$isa")
done
echo "kernel paths on this CPU: ${ISAS[*]}"

# ---- the generated cases ----------------------------------------------------------------------
O=$T/o
mkdir -p "$O"
while IFS=$'\t' read -r kind rel want text; do
  # Q8_HOSTILE_SKIP="pool calib": leave those kinds out (to replay the rest against another build).
  case " ${Q8_HOSTILE_SKIP:-} " in *" $kind "*) continue ;; esac
  P=$H/$rel
  case $kind in
    info) q8_run "info $rel" "$want" "$text" -- info "$P" ;;
    run) q8_run "run $rel" "$want" "$text" -- run "$P" --input "$P.input.npy" --output "$O/y.npy" ;;
    bench) q8_run "bench $rel" "$want" "$text" -- bench "$P" --iterations 1 --warmup 0 ;;
    quantize)
      rm -f "$O/q.onnx"
      q8_run "quantize $rel" "$want" "$text" -- quantize "$P" --calib "$P.input.npy" --output "$O/q.onnx"
      if [ "$want" -eq 0 ]; then
        q8_run "run quantized $rel" 0 - -- run "$O/q.onnx" --input "$P.input.npy" --output "$O/y.npy"
      elif [ -e "$O/q.onnx" ]; then
        fail "quantize $rel: output written on failure"
      fi
      ;;
    names)
      q8_run "info $rel" 0 - -- info "$P"
      q8_run "bench $rel" 0 - -- bench "$P" --iterations 2 --warmup 0 --per-layer
      q8_run "bench --json $rel" 0 - -- bench "$P" --iterations 2 --warmup 0 --per-layer --json
      q8_run "run $rel" 0 - -- run "$P" --input "$P.input.npy" --output "$O/y.npy"
      q8_run "run $rel, wrong input" 1 "has shape" -- run "$P" --input "$H/models/names_err_0.onnx.input.npy" --output "$O/y.npy"
      q8_run "analyze $rel" 0 - -- analyze "$P" --calib "$P.input.npy"
      ;;
    pool)
      # Every kernel path and thread count: within the time limit, and the same bytes.
      first=""
      for isa in "${ISAS[@]}"; do
        for threads in 1 2 3; do
          Q8_ISA=$isa q8_run "pool $rel ($isa, $threads threads)" 0 - -- \
            run "$P" --input "$P.input.npy" --output "$O/p_${isa}_$threads.npy" --threads $threads
          [ -z "$first" ] && first=$O/p_${isa}_$threads.npy && continue
          if cmp -s "$first" "$O/p_${isa}_$threads.npy"; then pass; else fail "pool $rel: $isa at $threads threads differs from ${first##*/}"; fi
        done
      done
      ;;
    calib)
      # Peak memory under 2 GB for inputs under 1 MB, and the same model bytes on every run.
      rm -f "$O/c1.onnx" "$O/c2.onnx"
      /usr/bin/time -f %M -o "$T/rss" timeout -s KILL $LIMIT "$Q8" quantize "$FASHION" --calib "$P" --output "$O/c1.onnx" > "$T/out" 2> "$T/err"
      rss=$(tail -n1 "$T/rss" | tr -dc 0-9)
      if [ "${rss:-0}" -gt 2000000 ]; then fail "calib $rel: peak memory ${rss} KB"; else pass; fi
      q8_run "calib $rel" "$want" "$text" -- quantize "$FASHION" --calib "$P" --output "$O/c2.onnx"
      if [ "$want" -eq 0 ]; then
        if cmp -s "$O/c1.onnx" "$O/c2.onnx"; then pass; else fail "calib $rel: two runs wrote different models"; fi
      elif [ -e "$O/c2.onnx" ]; then
        fail "calib $rel: output written on failure"
      fi
      ;;
    bench_memory)
      # Under an address-space limit, so the allocation fails the same way on every machine.
      ulimit_run "bench $rel under ulimit -v" -v 2000000 "$want" "$text" bench "$P" --iterations 1
      ;;
    expand)
      # Refused before allocating: peak memory stays far under 2 GB.
      /usr/bin/time -f %M -o "$T/rss" timeout -s KILL $LIMIT "$Q8" run "$P" --input "$P.input.npy" --output "$O/y.npy" > /dev/null 2>&1
      rss=$(tail -n1 "$T/rss" | tr -dc 0-9)
      if [ "${rss:-0}" -gt 2000000 ]; then fail "expand $rel: peak memory ${rss} KB"; else pass; fi
      q8_run "run $rel" "$want" "$text" -- run "$P" --input "$P.input.npy" --output "$O/y.npy"
      ;;
    paths) ;;  # used below
    *) fail "unknown kind '$kind' in the manifest" ;;
  esac
done < "$H/manifest.tsv"
no_temporaries "$O" "generated cases"

# ---- inputs that are not regular files --------------------------------------------------------
F=$T/fifo
mkdir -p "$F/calib"
mkfifo "$F/model.onnx" "$F/x.npy" "$F/calib/a.npy"
cp "$H/models/two_outputs.onnx.input.npy" "$F/calib/b.npy"
q8_run "FIFO as the model" 1 "not a regular file (it is a FIFO)" -- info "$F/model.onnx"
q8_run "FIFO as --input" 1 "not a regular file (it is a FIFO)" -- run "$H/models/two_outputs.onnx" --input "$F/x.npy" --output "$O/y.npy"
q8_run "FIFO in a calibration folder" 1 "not a regular file (it is a FIFO)" -- quantize "$FASHION" --calib "$F/calib" --output "$O/q.onnx"
q8_run "FIFO as --calib" 1 "calibration data must be" -- quantize "$FASHION" --calib "$F/model.onnx" --output "$O/q.onnx"
q8_run "folder as the model" 1 "not a regular file (it is a folder)" -- info "$F"
q8_run "character device as the model" 1 "not a regular file (it is a character device)" -- info /dev/zero
q8_run "character device as --input" 1 "not a regular file (it is a character device)" -- run "$H/models/two_outputs.onnx" --input /dev/zero --output "$O/y.npy"

# ---- outputs ----------------------------------------------------------------------------------
TWO=$H/models/two_outputs.onnx
X=$TWO.input.npy
D=$T/out_dir
mkdir -p "$D"
# Device nodes: private ones made here (c 1 3 is /dev/null's, c 1 7 /dev/full's), never the
# system's own, so a q8 that replaced them could not break the machine it is tested on.
if [ "$(id -u)" -eq 0 ] && mknod "$D/null" c 1 3 && mknod "$D/full" c 1 7; then
  q8_run "output: a null device" 0 - -- run "$TWO" --input "$X" --output "$D/null"
  if [ -c "$D/null" ]; then pass; else fail "the device node $D/null was replaced"; fi
  q8_run "output: a full device" 1 "No space left on device" -- run "$TWO" --input "$X" --output "$D/full"
  if [ -c "$D/full" ]; then pass; else fail "the device node $D/full was replaced"; fi
  echo old > "$D/keep.npy"
  q8_run "two outputs, second is a full device" 1 "No space left on device" -- run "$TWO" --input "$X" --output "$D/keep.npy" --output "$D/full"
  if [ "$(cat "$D/keep.npy")" = old ]; then pass; else fail "the first output was replaced although the second failed"; fi
  rm -f "$D/null" "$D/full"
else
  echo "skipped: device-node outputs (mknod needs root)"
  SKIPPED=$((SKIPPED + 3))
fi
mkfifo "$D/pipe"
(timeout -s KILL $LIMIT cat "$D/pipe" > "$T/from_pipe") &  # bounded: a q8 that replaced the FIFO never opens it
reader=$!
# Until the reader has opened the FIFO, q8 rightly refuses it ("a FIFO with no reader"); on a
# loaded machine the reader may start late, so that refusal is retried for up to 10 s.
fifo_rc=1
for _ in $(seq 50); do
  fifo_rc=0
  timeout -s KILL $LIMIT "$Q8" run "$TWO" --input "$X" --output "$D/pipe" > /dev/null 2> "$T/fifo_err" || fifo_rc=$?
  [ $fifo_rc -eq 0 ] && break
  grep -q "a FIFO with no reader" "$T/fifo_err" || break
  sleep 0.2
done
if [ $fifo_rc -eq 0 ]; then pass; else fail "output: a FIFO with a reader: exit $fifo_rc: $(head -c 300 "$T/fifo_err")"; fi
wait $reader
if [ -p "$D/pipe" ] && [ -s "$T/from_pipe" ]; then pass; else fail "the FIFO was replaced or got nothing"; fi
q8_run "output: a FIFO without a reader" 1 "a FIFO with no reader" -- run "$TWO" --input "$X" --output "$D/pipe"
if [ -p "$D/pipe" ]; then pass; else fail "the FIFO without a reader was replaced"; fi
mkdir "$D/sub"
q8_run "output: a folder" 1 "it is a folder" -- run "$TWO" --input "$X" --output "$D/sub"

# Several outputs: all or nothing.
q8_run "two outputs, second unwritable" 1 "cannot write file" -- run "$TWO" --input "$X" --output "$D/y1.npy" --output "$D/missing/y2.npy"
if [ -e "$D/y1.npy" ]; then fail "the first output was written although the second failed"; else pass; fi
q8_run "two outputs" 0 - -- run "$TWO" --input "$X" --output "$D/y1.npy" --output "$D/y2.npy"
if [ -s "$D/y1.npy" ] && [ -s "$D/y2.npy" ]; then pass; else fail "two outputs were not both written"; fi

# A legal 250-character name; the replaced file's mode kept.
long=$(printf 'n%.0s' $(seq 246)).npy
q8_run "250-character output name" 0 - -- run "$TWO" --input "$X" --output "$D/$long"
[ -s "$D/$long" ] && pass || fail "the 250-character output was not written"
touch "$D/private.npy"
chmod 600 "$D/private.npy"
q8_run "overwrite a mode-600 file" 0 - -- run "$TWO" --input "$X" --output "$D/private.npy"
if [ "$(stat -c %a "$D/private.npy")" = 600 ]; then pass; else fail "mode $(stat -c %a "$D/private.npy"), expected 600"; fi

# A file-size limit: EFBIG reported, no signal, no temporary left.
rm -f "$D/big.npy"
ulimit_run "ulimit -f 0" -f 0 1 "File too large" run "$TWO" --input "$X" --output "$D/big.npy"
[ -e "$D/big.npy" ] && fail "ulimit -f: output written" || pass
no_temporaries "$D" "outputs"

# ---- the command line is printed printable too -----------------------------------------------
q8_run "escape in an unknown option" 2 - -- run "$TWO" $'--\e[2Jcleared'
q8_run "escape in an unknown command" 2 - -- $'r\e[31mun'

# ---- threads ----------------------------------------------------------------------------------
q8_run "--threads ''" 2 - -- run "$TWO" --input "$X" --output "$D/y.npy" --threads ''
q8_run "--threads 100000" 2 - -- bench "$TWO" --threads 100000
q8_run "--threads 0" 2 - -- bench "$TWO" --threads 0
# Thread creation fails under an address-space limit (each thread reserves its stack).
ulimit_run "512 threads under ulimit -v" -v 1000000 1 "cannot start 512 threads" bench "$TWO" --threads 512 --iterations 1

# ---- memory: allocations that fail name the model and what was being allocated -----------------
ulimit_run "working memory under ulimit -v" -v 600000 1 "fashion_cnn.onnx: out of memory allocating" bench "$FASHION" --batch 4096 --iterations 1

echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ $FAILED -eq 0 ]
