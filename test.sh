#!/usr/bin/env bash
# Installs what is missing, builds q8 into build/ and runs the whole test suite through ctest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh test
# Habits that need no build: clang-format is applied, and every layer includes only what it may.
scripts/check_format.sh
scripts/check_walls.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DQ8_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
# torchvision's classifiers and a YOLO-style and a UNet net, exported now, against ONNX Runtime.
scripts/test_zoo.sh build/q8
# The Arm kernels (neon, neondot, neoni8mm), cross-built and run under qemu-aarch64 -cpu max.
scripts/test_arm.sh
# The dependency-light runtime: libq8.so, libq8.a and a static q8 with protobuf-lite, the CPU
# check and stb inside, checked for exported symbols, needed libraries, a program with its own
# protobuf, and an empty root.
scripts/test_deploy.sh
# The whole engine cross-built for AArch64, the same checks under qemu, and the reference models
# giving the x86 bytes on every Arm kernel path.
scripts/test_arm64.sh build/q8
# Robustness: the importer and .npy fuzzers (bounded time), then the suite under ASan+UBSan
# and the concurrency tests under TSan, each in its own build folder.
scripts/fuzz.sh 45
scripts/test_sanitizers.sh
