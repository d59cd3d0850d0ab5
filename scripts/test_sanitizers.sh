#!/usr/bin/env bash
# The unit-test suite under AddressSanitizer + UndefinedBehaviorSanitizer, and the concurrency
# tests under ThreadSanitizer. Separate build folders, so the Release build/ is
# untouched:
#   build-asan/  -fsanitize=address,undefined: every ctest (kernel tests, importer, engine,
#                end to end, the CLI contract, hostile files), except those named in
#                $ASAN_EXCLUDE (a ctest -E regex; the default is below).
#   build-tsan/  -fsanitize=thread: q8_tests --gtest_filter='Concurrency*' (one model, many
#                sessions and threads; each session's thread pool) and the thread-pool-driven
#                int8 paths.
#
#   scripts/test_sanitizers.sh [asan|tsan|all]      (default all; env SAN_JOBS: build jobs, 2)
#
# Exits non-zero on any failure or sanitizer report; the last line is a one-line summary.
set -uo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
JOBS=${SAN_JOBS:-2}
# GCC, the compiler the project ships with: the sanitized code is the code users run.
CXX_SAN=${CXX_SAN:-$(command -v g++ || command -v clang++)}
CC_SAN=${CC_SAN:-$(command -v gcc || command -v clang)}
# Left out of the ASan run: the install-and-consume test, and the tests that repeat whole
# calibrations for accuracy and determinism figures (10,000-image top-1 of the seed model and of
# the trained nets in tests/fashion_zoo, sample order and thread counts, analyze's
# break-and-recover cases and its every-layer runs on the embedded and shared models, which time
# every layer in fp32 too). They run the same code as the quantize and analyze
# tests kept here, many times over: about 40 minutes under ASan on a 2-core Zen 3, where the
# Release run checks their figures in a few minutes. The CLI's mutated-model test runs 60 variants
# per model here instead of 150 (its 150 took 320 s of the run's 565 on Zen 5); the Release run
# takes all of them, and the fuzzers mutate the same models under ASan. ONNX Runtime's resnet18
# QDQ file on every kernel path (80 s) repeats, at 18x the MACs, the importer and kernel paths
# that its seed QDQ and QOperator files take here.
ASAN_MUTATION_VARIANTS=${ASAN_MUTATION_VARIANTS:-60}
ASAN_EXCLUDE=${ASAN_EXCLUDE:-^consumer$|^QuantizeAcceptance\.|/FashionZoo\.|^Quantize\.ResultDoesNotDependOnSampleOrderOrThreads$|^Quantize\.EmbeddedModelKeepsItsAccuracy|^Analyze\.(ActivationOutliers|PerTensorWeightsBreak)NamedAndRecovered$|^Analyze\.(Embedded|Shared)Models?EveryLayerFinite$|SameBytesAndCloseToOnnxRuntime/resnet18_qdq_onnx}
COMMON="-fno-omit-frame-pointer -fno-sanitize-recover=all"
# -O1 with line tables (reports keep function names and file:line), the sanitizers' own advice:
# compiling at -O2 -g took 12 of the ASan run's 15 minutes on 2 cores, and -O1 -g1 halves it.
# The kernels, whose loops the tests spend their time in, stay at -O2 (KERNEL_OPT).
OPT="-O1 -g1 -DNDEBUG"
KERNEL_OPT="-O2"
summary=""
status=0
start=$(date +%s)

configure_build() {  # configure_build DIR FLAGS KERNEL_OPTIONS TARGETS...
  local dir=$1 flags=$2 kernel_options=$3; shift 3
  CC=$CC_SAN CXX=$CXX_SAN cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$OPT" -DCMAKE_CXX_FLAGS="$flags $COMMON" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
    -DQ8_KERNEL_COMPILE_OPTIONS="$kernel_options" -DQ8_BUILD_BENCH=OFF > "$dir/configure.log" 2>&1 || { tail -n 20 "$dir/configure.log"; return 1; }
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$dir" -j"$JOBS" "${targets[@]}" > "$dir/build.log" 2>&1 || { grep -E 'error|Error' "$dir/build.log" | head -n 20; return 1; }
}

if [ "$WHAT" = all ] || [ "$WHAT" = asan ]; then
  t0=$(date +%s)
  mkdir -p build-asan
  # Kernel sources without stack instrumentation: their stack arrays are register tiles, which
  # ASan would keep in memory (fp32 convolution about 300x slower); heap accesses stay checked.
  if configure_build build-asan "-fsanitize=address,undefined" "$KERNEL_OPT --param=asan-stack=0"; then
    # detect_leaks: leaks are bugs too. halt_on_error: the first report fails the test.
    if ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1 \
       UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 Q8_MUTATION_VARIANTS=$ASAN_MUTATION_VARIANTS \
       ctest --test-dir build-asan --output-on-failure -j"$JOBS" -E "$ASAN_EXCLUDE" > build-asan/ctest.log 2>&1; then
      summary="$summary asan+ubsan: $(grep -Eo '[0-9]+% tests passed.*' build-asan/ctest.log | head -n 1) ($(( $(date +%s) - t0 )) s);"
    else
      status=1
      grep -E 'Failed|\*\*\*|ERROR: AddressSanitizer|runtime error|LeakSanitizer' build-asan/ctest.log | head -n 30
      summary="$summary asan+ubsan: FAILED, $(grep -Eo '[0-9]+% tests passed.*' build-asan/ctest.log | head -n 1) (see build-asan/ctest.log);"
    fi
  else
    status=1; summary="$summary asan+ubsan: BUILD FAILED;"
  fi
fi

if [ "$WHAT" = all ] || [ "$WHAT" = tsan ]; then
  t0=$(date +%s)
  mkdir -p build-tsan
  if configure_build build-tsan "-fsanitize=thread" "$KERNEL_OPT" q8_tests; then
    if TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
       build-tsan/tests/q8_tests --gtest_filter='Concurrency*:*ThreadPool*:*Threads*' > build-tsan/test.log 2>&1; then
      summary="$summary tsan: $(grep -Eo '[0-9]+ tests? from [0-9]+ test suites? ran' build-tsan/test.log | head -n 1), passed ($(( $(date +%s) - t0 )) s);"
    else
      status=1
      grep -E 'WARNING: ThreadSanitizer|FAILED|SUMMARY' build-tsan/test.log | head -n 20
      summary="$summary tsan: FAILED (see build-tsan/test.log);"
    fi
  else
    status=1; summary="$summary tsan: BUILD FAILED;"
  fi
fi

echo "test_sanitizers.sh:$summary $(( $(date +%s) - start )) s in all"
exit $status
