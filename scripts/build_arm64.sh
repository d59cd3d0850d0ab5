#!/usr/bin/env bash
# Cross-builds the whole of q8 for AArch64 Linux, dependency-light (Q8_BUNDLED_DEPS): the q8
# program (dynamic, needing only the C/C++ runtimes, and static), libq8.so, libq8.a and the
# benchmarks, ready to copy to a board:
#   build-arm64/deploy/bin/q8          static q8 (info, run, quantize, bench, analyze, eval)
#   build-arm64/deploy/lib/libq8.so    shared runtime, exports only q8::
#   build-arm64/deploy/lib/libq8.a     static runtime, one archive, protobuf inside
#   build-arm64/deploy/include/q8/     public headers
#   build-arm64/bench/q8_bench_models  whole-model latency (Google Benchmark)
#
# Usage: scripts/build_arm64.sh [BUILD_DIR]   (default build-arm64)
# Environment: Q8_ARM_JOBS (parallel compile jobs, default: all cores).
# Installs what is missing with apt (the cross compiler, protoc, header-only packages), builds
# protobuf-lite and Google Benchmark for AArch64 from Debian's sources (scripts/build_deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-build-arm64}
case $build in /*) ;; *) build="$root/$build" ;; esac
jobs=${Q8_ARM_JOBS:-$(nproc 2>/dev/null || echo 2)}

pkgs=(cmake g++-aarch64-linux-gnu binutils-aarch64-linux-gnu protobuf-compiler libonnx-dev libcpuinfo-dev
      libstb-dev libxsimd-dev xtl-dev dpkg-dev cpio)
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
Q8_DEPS_JOBS=$jobs scripts/build_deps.sh aarch64
deps="$root/build-deps/aarch64"

# xsimd and xtl are header-only host packages; their CMake configs would add -isystem
# /usr/include ahead of the cross compiler's C library headers, so small configs expose only
# their two header folders (as scripts/test_arm.sh does).
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

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DQ8_WERROR=ON -DQ8_BUNDLED_DEPS=ON -DQ8_DEPS_PREFIX="$deps" \
  -DQ8_BUILD_TESTS=OFF -DQ8_BUILD_PYTHON=OFF -DQ8_BUILD_BENCH=ON \
  -Dbenchmark_DIR="$deps/lib/cmake/benchmark" -Dxtl_DIR="$host/xtl" -Dxsimd_DIR="$host/xsimd" >/dev/null
cmake --build "$build" -j "$jobs"
echo "q8: AArch64 build in $build: deploy/bin/q8 (static), q8, deploy/lib/libq8.{so,a}, bench/q8_bench_models"
