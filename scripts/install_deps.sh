#!/usr/bin/env bash
# Installs the Debian 12 packages q8 builds and tests with, only those missing.
# Usage: scripts/install_deps.sh [build|test]
set -euo pipefail
pkgs=(cmake g++ make pkg-config libprotobuf-dev protobuf-compiler libonnx-dev libcpuinfo-dev
      libxsimd-dev xtl-dev libgtest-dev libbenchmark-dev libstb-dev)
if [ "${1:-build}" = test ]; then
  pkgs+=(libonnx-testdata python3 zlib1g-dev dataset-fashion-mnist g++-aarch64-linux-gnu qemu-user qemu-user-static dpkg-dev cpio chromium clang clang-format libclang-rt-14-dev libfuzzer-14-dev)
  # Node.js and npm run ONNX Runtime as the peer (scripts/test_zoo.sh); a Node.js from elsewhere
  # (NodeSource's package carries its own npm) is used as it is.
  command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm)
  # The Python module and its tests (python/): pybind11 and the headers to build it, numpy and
  # pytest to test it, torch, torchvision and onnx for from_torch, DataLoaders and the example.
  pkgs+=(pybind11-dev python3-dev python3-numpy python3-pytest python3-torch python3-torchvision python3-onnx)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "q8: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
