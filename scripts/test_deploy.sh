#!/usr/bin/env bash
# The dependency-light build for this machine (x86-64), in build-deploy/: builds protobuf-lite from
# Debian's sources once (scripts/build_deps.sh), builds q8 with Q8_BUNDLED_DEPS, then runs the
# deploy tests (tests/deploy): libq8.so exports only q8::, it and q8 need only the C/C++ runtimes,
# libq8.a is one archive with its dependencies' symbols local, a program with its own protobuf
# links and runs with both, and the static q8 runs info/run/quantize/bench in an empty root.
#
# Usage: scripts/test_deploy.sh [BUILD_DIR]   (default build-deploy)
# Environment: Q8_DEPLOY_JOBS (parallel compile jobs, default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-build-deploy}
jobs=${Q8_DEPLOY_JOBS:-$(nproc 2>/dev/null || echo 2)}
arch=$(uname -m)
Q8_DEPS_JOBS=$jobs scripts/build_deps.sh "$arch"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DQ8_WERROR=ON \
  -DQ8_BUNDLED_DEPS=ON -DQ8_DEPS_PREFIX="$root/build-deps/$arch" \
  -DQ8_BUILD_TESTS=OFF -DQ8_BUILD_BENCH=OFF -DQ8_BUILD_PYTHON=OFF >/dev/null
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"
