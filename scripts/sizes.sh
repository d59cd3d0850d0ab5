#!/usr/bin/env bash
# Prints the sizes of a dependency-light build (Q8_BUNDLED_DEPS) as a Markdown table: the
# stripped runtime library, the static and dynamic q8 programs stripped, the bundled static
# archive, and the machine code (.text) of the kernels per instruction set, summed over
# q8_kernels' object files.
#
# Usage: scripts/sizes.sh BUILD_DIR   (build-deploy, or build-arm64 for AArch64)
set -euo pipefail
build=${1:?usage: scripts/sizes.sh BUILD_DIR}
[ -f "$build/CMakeCache.txt" ] || {
  echo "q8: error: $build is not a CMake build folder" >&2
  exit 1
}
strip=$(sed -n 's/^CMAKE_STRIP:FILEPATH=//p' "$build/CMakeCache.txt")
size=${strip%strip}size
case $strip in
  *aarch64*) arch=aarch64 ;;
  *) arch=$(uname -m) ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stripped() {  # stripped FILE: bytes after strip
  cp "$1" "$tmp/f"
  "$strip" "$tmp/f"
  stat -c %s "$tmp/f"
}
text() { "$size" "$@" | awk 'NR > 1 {t += $1} END {print t + 0}'; }
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3"; }

echo "| $arch | bytes | what |"
echo "|---|---:|---|"
row "libq8.so, stripped" "$(stripped "$build/deploy/lib/libq8.so")" "runtime library: engine, importer, protobuf-lite, CPU check, stb"
row "q8 (static), stripped" "$(stripped "$build/deploy/bin/q8")" "the program with libc and libstdc++ inside"
row "q8 (dynamic), stripped" "$(stripped "$build/q8")" "the program; needs only libc, libm, libstdc++, libgcc_s"
row "libq8.a" "$(stat -c %s "$build/deploy/lib/libq8.a")" "bundled static archive, with symbols (not stripped)"
k="$build/kernels/CMakeFiles/q8_kernels.dir"
row "kernels: shared (packing)" "$(text "$k"/*.o)" ".text of kernels/*.cpp"
row "kernels: scalar reference" "$(text "$k"/reference/*.o)" ".text"
for isa in avx2 avxvnni avx512 avx512vnni amx neon neondot neoni8mm; do
  case $isa in
    avx512) files=("$k"/x86/*avx512.cpp.o) ;;
    amx) files=("$k"/x86/*amx*.o) ;;
    neon*) files=("$k"/arm/*"$isa".cpp.o) ;;
    *) files=("$k"/x86/*"$isa".cpp.o) ;;
  esac
  [ -f "${files[0]}" ] || continue
  row "kernels: $isa" "$(text "${files[@]}")" ".text"
done
