#!/usr/bin/env bash
# Checks the dependency-light build's artefacts (build/deploy). One mode per run:
#   exports           libq8.so's dynamic symbols are all q8's (demangled: q8::…, or the typeinfo,
#                     vtable or VTT of a q8:: class)
#   needed            libq8.so and the dynamic q8 program need only libc, libm, libstdc++, libgcc_s
#                     and the loader; deploy/bin/q8 needs nothing (static, no interpreter)
#   archive           libq8.a is one object whose global symbols hold no protobuf, ONNX, CPU-check
#                     or stb name
#   foreign_protobuf  a program defining its own google::protobuf symbols of the same names links
#                     with libq8.so and with libq8.a and runs a model (tests/deploy/foreign_protobuf.cpp)
#   empty_root        deploy/bin/q8 runs info, run, quantize and bench in an empty root
#                     (unshare -r --root): nothing but the program, a model and its data
# Environment: SOURCE (repository), DEPLOY (build/deploy), CXX, NM, READELF, AR, DYNAMIC_Q8
# (build/q8); for a cross build RUN (the emulator command that runs a target program) and ARCH_RUN
# (a static emulator to copy into the empty root).
# Exit 0 pass, 1 fail, 77 skipped (the machine refuses user namespaces).
set -uo pipefail
mode=${1:-}
: "${SOURCE:?}" "${DEPLOY:?}" "${CXX:=c++}" "${NM:=nm}" "${READELF:=readelf}" "${AR:=ar}"
read -r -a run_target <<<"${RUN:-}"
so="$DEPLOY/lib/libq8.so"
archive="$DEPLOY/lib/libq8.a"
static_q8="$DEPLOY/bin/q8"
model="$SOURCE/models/fashion_cnn.onnx"
T=$(mktemp -d "${TMPDIR:-/tmp}/q8_deploy_test.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

fail() {
  echo "FAIL deploy_$mode: $*"
  exit 1
}
pass() {
  echo "PASS deploy_$mode: $*"
  exit 0
}

# Mangled names that are not q8's: q8's are in namespace q8 (_ZN2q8, _ZNK2q8 for const members)
# or the typeinfo, typeinfo name, vtable or VTT of a q8 class (_ZTIN2q8 …). The demangled
# spelling cannot tell: a std:: template instance can start with a q8:: return type.
not_q8() { grep -Ev '^_Z(N|NK|TI|TS|TV|TT)(N)?2q8' | c++filt; }

# NEEDED entries other than the C and C++ runtimes and the loader.
foreign_needed() {
  "$READELF" -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
    grep -Ev '^(libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|ld-linux[-a-z0-9_]*\.so\.[0-9]+)$'
}

case $mode in
  exports)
    [ -f "$so" ] || fail "$so not built"
    "$NM" -D --defined-only "$so" | awk '{print $3}' >"$T/syms"
    n=$(wc -l <"$T/syms")
    [ "$n" -gt 0 ] || fail "libq8.so exports nothing"
    bad=$(not_q8 <"$T/syms" | sort -u)
    [ -z "$bad" ] || fail "libq8.so exports $(echo "$bad" | wc -l) symbol(s) outside q8::, e.g.:
$(echo "$bad" | head -20)"
    pass "all $n dynamic symbols of libq8.so are q8::"
    ;;
  needed)
    for f in "$so" "$DYNAMIC_Q8"; do
      [ -f "$f" ] || fail "$f not built"
      bad=$(foreign_needed "$f")
      [ -z "$bad" ] || fail "$f needs $(echo $bad)"
    done
    [ -f "$static_q8" ] || fail "$static_q8 not built"
    # grep -c reads everything: with pipefail, an early exit of grep -q could hide a match.
    [ "$("$READELF" -d "$static_q8" | grep -c '(NEEDED)')" -eq 0 ] || fail "$static_q8 needs shared libraries"
    [ "$("$READELF" -l "$static_q8" | grep -c 'INTERP')" -eq 0 ] || fail "$static_q8 asks for a program interpreter"
    pass "libq8.so needs $("$READELF" -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')and q8 no more; deploy/bin/q8 needs nothing"
    ;;
  archive)
    [ -f "$archive" ] || fail "$archive not built"
    members=$("$AR" t "$archive" | wc -l)
    [ "$members" -eq 1 ] || fail "libq8.a has $members members, expected one bundled object"
    # Global definitions that are not q8's: only the C++ library's weak template instances may be.
    "$NM" --defined-only -g "$archive" | awk 'NF == 3 {print $2, $3}' >"$T/globals"
    bad=$(awk '{print $2}' "$T/globals" | c++filt | grep -E '^(google::|onnx::|cpuinfo_|stbi|typeinfo (name )?for (google|onnx)::|vtable for (google|onnx)::)')
    [ -z "$bad" ] || fail "libq8.a defines global symbols of its dependencies, e.g.:
$(echo "$bad" | head -20)"
    strong=$(awk '$1 ~ /^[TDBR]$/ {print $2}' "$T/globals" | not_q8)
    [ -z "$strong" ] || fail "libq8.a has strong global symbols outside q8::, e.g.:
$(echo "$strong" | head -20)"
    pass "libq8.a is one object; its $(wc -l <"$T/globals") global symbols are q8:: or weak C++ library instances"
    ;;
  foreign_protobuf)
    src="$SOURCE/tests/deploy/foreign_protobuf.cpp"
    # The program defines these names, and q8 really carries them inside (as local symbols).
    "$CXX" -std=c++17 -c -o "$T/foreign.o" "$src" -I"$DEPLOY/include" >"$T/log" 2>&1 ||
      fail "compiling $src failed: $(head -c 2000 "$T/log")"
    "$NM" --defined-only "$T/foreign.o" | awk '{print $3}' | grep '^_Z.*6google8protobuf' >"$T/own" || true
    "$NM" "$archive" | awk '{print $3}' >"$T/q8syms"
    [ "$(wc -l <"$T/own")" -ge 3 ] || fail "the program defines $(wc -l <"$T/own") google::protobuf symbols, expected 3"
    while read -r sym; do
      grep -qx "$sym" "$T/q8syms" || fail "libq8.a has no $(echo "$sym" | c++filt): the stand-in no longer matches q8's protobuf"
    done <"$T/own"
    "$CXX" -std=c++17 -O1 -o "$T/shared" "$src" -I"$DEPLOY/include" -L"$DEPLOY/lib" -lq8 -Wl,-rpath,"$DEPLOY/lib" \
      >"$T/log" 2>&1 || fail "linking with libq8.so failed: $(head -c 2000 "$T/log")"
    "$CXX" -std=c++17 -O1 -o "$T/static" "$src" -I"$DEPLOY/include" "$archive" -pthread \
      >"$T/log" 2>&1 || fail "linking with libq8.a failed: $(head -c 2000 "$T/log")"
    for kind in shared static; do
      "${run_target[@]}" "$T/$kind" "$model" >"$T/$kind.out" 2>&1 || fail "the program linked with the $kind q8 failed: $(head -c 2000 "$T/$kind.out")"
      [ "$(tail -1 "$T/$kind.out")" = "own protobuf: ok" ] || fail "$kind: $(tail -3 "$T/$kind.out")"
      n=$(grep -Ec '^-?[0-9]' "$T/$kind.out")
      [ "$n" -eq 10 ] || fail "$kind: expected 10 outputs, got $n"
    done
    cmp -s "$T/shared.out" "$T/static.out" || fail "libq8.so and libq8.a give different outputs"
    pass "a program with its own google::protobuf symbols links and runs with libq8.so and libq8.a"
    ;;
  empty_root)
    [ -f "$static_q8" ] || fail "$static_q8 not built"
    # ARCH_RUN: how to start a program of the target architecture inside the root (for
    # AArch64 on x86, a static qemu-aarch64 copied in); empty for a native build.
    root="$T/root"
    mkdir -p "$root"
    cp "$static_q8" "$root/q8"
    cp "$model" "$root/model.onnx"
    cp "$SOURCE/models/fashion_calib_256.npy" "$root/calib.npy"
    # Four test images: under an emulator an fp32 run of all 500 takes minutes.
    python3 "$SOURCE/tests/deploy/npy_head.py" "$SOURCE/models/fashion_test_500.npy" "$root/input.npy" 4 ||
      fail "cannot cut the input"
    run=()
    if [ -n "${ARCH_RUN:-}" ]; then
      cp "$(command -v "$ARCH_RUN")" "$root/emulator"
      run=(/emulator -cpu max)
    fi
    unshare -r true 2>/dev/null || {
      echo "SKIP deploy_empty_root: this machine refuses user namespaces (unshare -r)"
      exit 77
    }
    [ "$(ls "$root" | wc -l)" -le 6 ] || fail "the root holds more than the program and its files"
    in_root() { unshare -r --root="$root" "${run[@]}" /q8 "$@"; }
    in_root info /model.onnx >"$T/info" 2>&1 || fail "q8 info: $(tail -3 "$T/info")"
    in_root run /model.onnx --input /input.npy --output /out.npy >"$T/run" 2>&1 || fail "q8 run: $(tail -3 "$T/run")"
    [ -s "$root/out.npy" ] || fail "q8 run wrote no /out.npy"
    in_root quantize /model.onnx --calib /calib.npy --max-samples 16 --output /model.int8.onnx >"$T/quantize" 2>&1 ||
      fail "q8 quantize: $(tail -3 "$T/quantize")"
    in_root run /model.int8.onnx --input /input.npy --output /out8.npy >"$T/run8" 2>&1 || fail "q8 run int8: $(tail -3 "$T/run8")"
    in_root bench /model.int8.onnx --iterations 5 --warmup 1 --json >"$T/bench" 2>&1 || fail "q8 bench: $(tail -3 "$T/bench")"
    grep -q '"median_ms"' "$T/bench" || fail "q8 bench printed no median_ms: $(tail -3 "$T/bench")"
    pass "static q8 ran info, run, quantize, run (int8) and bench in an empty root: $(grep -o '"isa": *"[a-z0-9]*"' "$T/bench")"
    ;;
  *)
    echo "usage: $0 exports|needed|archive|foreign_protobuf|empty_root" >&2
    exit 2
    ;;
esac
