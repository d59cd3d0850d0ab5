#!/usr/bin/env bash
# Cross-builds the kernels and the kernel tests for AArch64 and runs them under
# `qemu-aarch64 -cpu max` (NEON with the dot-product and int8 matrix-multiply extensions), so the
# neon, neondot and neoni8mm tables are checked byte for byte against the scalar one on an x86 machine.
#
# Usage: scripts/test_arm.sh [gtest arguments, e.g. --gtest_filter='*neondot*']
# Environment: Q8_ARM_BUILD (build folder, default build-arm), Q8_ARM_JOBS (default 2),
#              Q8_ARM_SHARDS (parallel qemu processes over gtest shards, default Q8_ARM_JOBS).
# Needs g++-aarch64-linux-gnu, qemu-user, cmake, libgtest-dev (GoogleTest's sources) and
# libxsimd-dev/xtl-dev (header-only, shared with the host); missing ones are installed with apt.
# Exits non-zero if the build or any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${Q8_ARM_BUILD:-build-arm}
jobs=${Q8_ARM_JOBS:-2}
shards=${Q8_ARM_SHARDS:-$jobs}
case $build in /*) ;; *) build="$root/$build" ;; esac

# --- Packages (only those missing; like scripts/install_deps.sh)
pkgs=(cmake g++-aarch64-linux-gnu qemu-user libgtest-dev libxsimd-dev xtl-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "q8: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
toolchain="$root/cmake/aarch64-linux-gnu.cmake"

# --- GoogleTest, cross-built once from Debian's sources
gtest_src=/usr/src/googletest
gtest_prefix="$build/_deps/gtest"
if [ ! -f "$gtest_prefix/lib/cmake/GTest/GTestConfig.cmake" ]; then
  echo "q8: cross-building GoogleTest from $gtest_src" >&2
  cmake -S "$gtest_src" -B "$build/_deps/gtest-build" "${generator[@]}" \
    -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$gtest_prefix" -DBUILD_GMOCK=OFF -DINSTALL_GTEST=ON >/dev/null
  cmake --build "$build/_deps/gtest-build" -j "$jobs" >/dev/null
  cmake --install "$build/_deps/gtest-build" >/dev/null
fi

# --- xsimd and xtl: header-only host packages. Their CMake configs would add -isystem /usr/include,
# which puts the host's C library headers before the cross compiler's; instead, small configs
# expose only the two header folders.
host="$build/_deps/host"
mkdir -p "$host/include" "$host/xtl" "$host/xsimd"
ln -sfn /usr/include/xtl "$host/include/xtl"
ln -sfn /usr/include/xsimd "$host/include/xsimd"
cat >"$host/xtl/xtlConfig.cmake" <<EOF
if(NOT TARGET xtl)
  add_library(xtl INTERFACE IMPORTED)
  set_target_properties(xtl PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "$host/include")
endif()
EOF
cat >"$host/xsimd/xsimdConfig.cmake" <<EOF
if(NOT TARGET xsimd)
  add_library(xsimd INTERFACE IMPORTED)
  set_target_properties(xsimd PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "$host/include"
                                         INTERFACE_LINK_LIBRARIES xtl)
endif()
EOF

# --- The kernels and their tests
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
  -DCMAKE_BUILD_TYPE=Release -DQ8_KERNELS_ONLY=ON -DQ8_WERROR=ON \
  -DGTest_DIR="$gtest_prefix/lib/cmake/GTest" -Dxtl_DIR="$host/xtl" -Dxsimd_DIR="$host/xsimd" >/dev/null
cmake --build "$build" -j "$jobs" --target q8_kernel_tests
exe="$build/tests/q8_kernel_tests"

# --- Run under qemu (-cpu max: NEON, dotprod). With several shards each qemu runs a disjoint part
# of the tests (gtest sharding); each shard's summary is printed, then the totals.
qemu=(qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu)
echo "q8: running $exe under ${qemu[*]} ($shards shard(s))"
start=$(date +%s)
status=0
if [ "$shards" -le 1 ]; then
  "${qemu[@]}" "$exe" "$@" || status=$?
else
  logs="$build/_logs"
  mkdir -p "$logs"
  pids=()
  for ((i = 0; i < shards; i++)); do
    GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i "${qemu[@]}" "$exe" "$@" >"$logs/shard$i.log" 2>&1 &
    pids+=($!)
  done
  ran=0 passed=0 skipped=0 failed=0
  for ((i = 0; i < shards; i++)); do
    rc=0
    wait "${pids[$i]}" || rc=$?
    log="$logs/shard$i.log"
    echo "---- shard $i of $shards (exit $rc, log $log)"
    if [ "$rc" -ne 0 ]; then
      grep -v -E '^\[ (RUN|      OK|  SKIPPED) ' "$log" | grep -v -E '^(/.*: Skipped|this CPU cannot run .*|.* kernels are not in this build)$' || true
      status=$rc
    fi
    grep -E '^\[(==========\] .* ran\.|  PASSED  \]|  SKIPPED \] [0-9]+ test|  FAILED  \] [0-9]+ test)' "$log" || true
    n() { sed -n "s/^\[$1\] \([0-9][0-9]*\) test.*/\1/p" "$log" | tail -1; }
    ran=$((ran + $(sed -n 's/^\[==========\] \([0-9][0-9]*\) tests\{0,1\} from .* ran\..*/\1/p' "$log" | tail -1 || echo 0)))
    passed=$((passed + $(n '  PASSED  ' || true) + 0))
    skipped=$((skipped + $(n '  SKIPPED ' || true) + 0))
    failed=$((failed + $(n '  FAILED  ' || true) + 0))
  done
  echo "q8: total: $ran tests ran, $passed passed, $skipped skipped (tables this CPU or build lacks), $failed failed"
fi
echo "q8: Arm kernel tests $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $(($(date +%s) - start)) s"
exit "$status"
