#!/usr/bin/env bash
# Makes one static archive of q8 and the libraries it bundles, with only q8's symbols global:
#   1. `ld -r` links every object of the input archives into one relocatable object, resolving
#      q8's calls into protobuf-lite, the CPU check and stb there and then;
#   2. `objcopy --localize-hidden` turns the hidden symbols (all of protobuf-lite, the ONNX
#      classes, the CPU check, stb) into local ones, which no other object can see or clash with;
#      (scripts/build_deps.sh compiles protobuf with -fno-gnu-unique: objcopy cannot localize
#      GCC's "unique" binding of a static variable inside an inline function);
#      the COMDAT groups are dissolved first so a program's copy of an inline function can never
#      replace (and leave dangling) the one q8 was linked against;
#   3. `ar` wraps the object as libq8.a.
#
#   cmake/bundle_static.sh LD OBJCOPY AR OUTPUT.a INPUT.a...
set -euo pipefail
ld=$1 objcopy=$2 ar=$3 out=$4
shift 4
tmp="$out.tmp.o"
"$ld" -r -o "$tmp" --whole-archive "$@" --no-whole-archive
"$objcopy" --localize-hidden --remove-section=.group "$tmp"
rm -f "$out"
"$ar" rcs "$out" "$tmp"
rm -f "$tmp"
