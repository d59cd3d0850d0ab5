#!/usr/bin/env bash
# Builds the static, position-independent libraries that a dependency-light q8 links into itself,
# from Debian 12's own source packages (with Debian's patches, security fixes included):
#   - protobuf-lite 3.21.12, the same version as the host's protoc, compiled with hidden
#     visibility so that none of its symbols leave libq8.so or the bundled libq8.a;
#   - Google Benchmark 1.7.1, only for an AArch64 target (the host uses libbenchmark-dev).
# -fno-gnu-unique keeps function-local statics ordinary weak symbols, which the hidden visibility
# covers (GCC's "unique" binding would stay global in the bundled libq8.a).
# Debian's own libprotobuf-lite.a cannot go into a shared library (it is built as PIE code, with
# local-exec TLS relocations), and libcpuinfo-dev ships no static library (q8's deploy build uses
# its own CPU feature check instead, see third_party/cpu_features.cpp).
#
# Usage: scripts/build_deps.sh x86_64|aarch64 [PREFIX]   (default PREFIX build-deps/ARCH)
# Sources are fetched once with `apt-get source` (a deb-src entry is added if apt has none) into
# build-deps/src; a finished prefix is left alone, so running it again costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
arch=${1:-}
case $arch in
  x86_64 | aarch64) ;;
  *)
    echo "usage: $0 x86_64|aarch64 [PREFIX]" >&2
    exit 2
    ;;
esac
prefix=${2:-$root/build-deps/$arch}
case $prefix in /*) ;; *) prefix="$root/$prefix" ;; esac
jobs=${Q8_DEPS_JOBS:-$(nproc 2>/dev/null || echo 2)}
src=$root/build-deps/src
protobuf_version=3.21.12
benchmark_version=1.7.1

# The stamp names the versions and the revision of the flags below: a change rebuilds.
stamp="$prefix/.q8-deps-$protobuf_version-$benchmark_version-r2"
[ -f "$stamp" ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
need=(cmake dpkg-dev cpio)
[ "$arch" = aarch64 ] && need+=(g++-aarch64-linux-gnu)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "q8: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Debian source packages (apt-get source needs a deb-src entry; Debian 12's default has none)
fetch() {  # fetch PACKAGE VERSION-DIR
  [ -d "$src/$2" ] && return 0
  mkdir -p "$src"
  if ! apt-cache showsrc "$1" >/dev/null 2>&1 || [ -z "$(apt-cache showsrc "$1" 2>/dev/null)" ]; then
    echo "q8: adding a deb-src entry for Debian 12 to apt" >&2
    $sudo tee /etc/apt/sources.list.d/q8-deb-src.sources >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    $sudo apt-get update -qq
  fi
  (cd "$src" && apt-get source -qq "$1" >/dev/null 2>&1) || {
    echo "q8: error: apt-get source $1 failed" >&2
    exit 1
  }
  [ -d "$src/$2" ] || {
    echo "q8: error: apt-get source $1 did not give $2 (Debian 12 expected)" >&2
    exit 1
  }
}
fetch protobuf "protobuf-$protobuf_version"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cross=()
[ "$arch" = aarch64 ] && cross=(-DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake")
work="$prefix/_build"
mkdir -p "$prefix/lib" "$prefix/include"

# --- protobuf-lite: the library only (protoc is the host's, same version)
echo "q8: building protobuf-lite $protobuf_version for $arch (static, PIC, hidden symbols)" >&2
cmake -S "$src/protobuf-$protobuf_version" -B "$work/protobuf" "${generator[@]}" "${cross[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DCMAKE_CXX_VISIBILITY_PRESET=hidden -DCMAKE_VISIBILITY_INLINES_HIDDEN=ON -DCMAKE_CXX_FLAGS=-fno-gnu-unique \
  -Dprotobuf_BUILD_TESTS=OFF -Dprotobuf_BUILD_PROTOC_BINARIES=OFF -Dprotobuf_BUILD_SHARED_LIBS=OFF \
  -Dprotobuf_WITH_ZLIB=OFF -Dprotobuf_INSTALL=OFF >/dev/null
cmake --build "$work/protobuf" -j "$jobs" --target libprotobuf-lite >/dev/null
cp "$work/protobuf/libprotobuf-lite.a" "$prefix/lib/"
# The headers, as installed: every .h and .inc under src/google.
(cd "$src/protobuf-$protobuf_version/src" &&
  find google -name '*.h' -o -name '*.inc' | cpio -pdmu --quiet "$prefix/include")

# --- Google Benchmark for the AArch64 benchmarks
if [ "$arch" = aarch64 ]; then
  fetch benchmark "benchmark-$benchmark_version"
  echo "q8: building Google Benchmark $benchmark_version for $arch" >&2
  cmake -S "$src/benchmark-$benchmark_version" -B "$work/benchmark" "${generator[@]}" "${cross[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" -DGIT_VERSION=$benchmark_version -DBENCHMARK_ENABLE_TESTING=OFF \
    -DBENCHMARK_ENABLE_GTEST_TESTS=OFF -DBENCHMARK_ENABLE_WERROR=OFF -DBENCHMARK_ENABLE_INSTALL=ON >/dev/null 2>&1
  cmake --build "$work/benchmark" -j "$jobs" >/dev/null
  cmake --install "$work/benchmark" >/dev/null
fi
rm -rf "$work"
touch "$stamp"
echo "q8: dependencies for $arch in $prefix" >&2
