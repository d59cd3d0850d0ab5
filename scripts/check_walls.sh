#!/usr/bin/env bash
# The walls of DESIGN.md: which layer may include which. For every source file of a layer, each
# quoted #include must name a header of a layer that one may use; anything else is reported with
# its file and line, and the script fails. (The build enforces the same walls through the include
# roots of cmake/q8_layers.cmake; this check says it in one place and catches a root added by
# mistake.)
set -euo pipefail
cd "$(dirname "$0")/.."

# layer folder -> allowed include prefixes (a prefix ending in / is a layer's root, else a file)
declare -A allowed=(
  [kernels]="kernels/"
  [engine/ir]="ir/ q8/error.h"
  [engine/io]="io/ ir/ q8/error.h q8/q8.h"
  [engine/passes]="passes/ ir/ q8/error.h"
  [engine/runtime]="runtime/ ir/ kernels/ q8/error.h"
  [engine/quant]="quant/ passes/ runtime/ io/ ir/ q8/error.h q8/q8.h"
  [engine/api]="api/ quant/ passes/ runtime/ io/ ir/ onnx/ kernels/ q8/"
  [importers/onnx]="onnx/ ir/ io/file_io.h q8/error.h onnx.pb.h"
  [tools]="q8/ cli_common.h commands.h"
  [python/src]="q8/"
)

bad=0
for layer in "${!allowed[@]}"; do
  read -r -a ok <<<"${allowed[$layer]}"
  while IFS= read -r file; do
    lineno=0
    while IFS= read -r line; do
      lineno=$((lineno + 1))
      [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]] || continue
      inc=${BASH_REMATCH[1]}
      pass=0
      for p in "${ok[@]}"; do
        if [[ $p == */ ]]; then [[ $inc == "$p"* ]] && pass=1; else [[ $inc == "$p" ]] && pass=1; fi
        # A header next to the including file (same folder) is the layer's own.
        [[ -f "$(dirname "$file")/$inc" && $inc != */* ]] && pass=1
      done
      if [[ $pass -eq 0 ]]; then
        echo "check_walls: $file:$lineno: $layer may not include \"$inc\"" >&2
        bad=1
      fi
    done <"$file"
  done < <(git ls-files "$layer/*.cpp" "$layer/*.h")
done

# No target may put the whole repository on its consumers' include path.
if git ls-files '*CMakeLists.txt' '*.cmake' | xargs grep -n 'PUBLIC.*\${PROJECT_SOURCE_DIR}>\?)\?$\|INTERFACE.*\${PROJECT_SOURCE_DIR}>\?)\?$' 2>/dev/null; then
  echo "check_walls: a target exports the repository root as an include path" >&2
  bad=1
fi
# The dependency-light build links third_party/cpu_features.cpp in place of libcpuinfo, so it must
# define every cpuinfo function q8 calls (the cpuinfo_has_* are inline in cpuinfo.h and read the
# cpuinfo_isa it fills). The Release build links the system library and would not notice.
while IFS= read -r fn; do
  if ! grep -q "CPUINFO_ABI ${fn}(" third_party/cpu_features.cpp; then
    echo "check_walls: q8 calls $fn, which third_party/cpu_features.cpp does not define (libq8.so would not link)" >&2
    bad=1
  fi
done < <(git ls-files 'engine/*.cpp' 'engine/*.h' 'kernels/*.cpp' 'kernels/*.h' 'tools/*.cpp' |
  xargs grep -ohE '\bcpuinfo_[a-z0-9_]+\(' | grep -v '^cpuinfo_has_' | tr -d '(' | sort -u)
[[ $bad -eq 0 ]] && echo "check_walls: every layer includes only what it may"
exit $bad
