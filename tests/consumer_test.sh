#!/usr/bin/env bash
# find_package(q8) from another CMake project: installs BUILD_DIR into a temporary prefix,
# builds tests/consumer against it and runs it on models/fashion_cnn.onnx (10 logits expected).
#
#   tests/consumer_test.sh BUILD_DIR SOURCE_DIR
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/q8_consumer_test.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

finish() {  # finish OK|FAIL MESSAGE [LOG]
  if [ "$1" = OK ]; then
    echo "PASS consumer: $2"
    echo "1 passed, 0 failed"
    exit 0
  fi
  echo "FAIL consumer: $2"
  if [ -n "${3:-}" ] && [ -f "$3" ]; then tail -n 40 "$3" | sed 's/^/    /'; fi
  echo "0 passed, 1 failed"
  exit 1
}

cmake --install "$BUILD" --prefix "$T/prefix" > "$T/install.log" 2>&1 ||
  finish FAIL "cmake --install failed" "$T/install.log"
cmake -S "$SRC/tests/consumer" -B "$T/build" -DCMAKE_PREFIX_PATH="$T/prefix" -DCMAKE_BUILD_TYPE=Release \
  > "$T/configure.log" 2>&1 || finish FAIL "configuring tests/consumer failed" "$T/configure.log"
cmake --build "$T/build" -j2 > "$T/build.log" 2>&1 || finish FAIL "building tests/consumer failed" "$T/build.log"
"$T/build/q8_consumer" "$SRC/models/fashion_cnn.onnx" > "$T/run.log" 2>&1
rc=$?
[ "$rc" -eq 0 ] || finish FAIL "q8_consumer exited $rc" "$T/run.log"
n=$(grep -Ec '^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$' "$T/run.log")
total=$(wc -l < "$T/run.log")
[ "$n" -eq 10 ] && [ "$total" -eq 10 ] ||
  finish FAIL "expected 10 numbers, got $n number(s) in $total line(s)" "$T/run.log"
finish OK "find_package(q8) project built and printed 10 logits: $(tr '\n' ' ' < "$T/run.log")"
