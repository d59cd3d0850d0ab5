#!/usr/bin/env bash
# The whole engine on AArch64, checked on an x86 machine:
#   1. cross-builds q8 for AArch64 (scripts/build_arm64.sh);
#   2. runs the deploy tests on the AArch64 artefacts under qemu (exported symbols, needed
#      libraries, the bundled archive, a program with its own protobuf, the static q8 in an empty
#      root);
#   3. end to end: the reference models run by the x86 q8 and by the AArch64 q8 under
#      `qemu-aarch64 -cpu max` on every Arm kernel path (Q8_ISA=neon, neondot, neoni8mm) on the
#      same .npy inputs; the output files must be byte for byte the same. int8: seed (QDQ and
#      QOperator), resnet18, mobilenet_v2, fashion_seed, on every Arm path. fp32: the same
#      models wherever the x86 scalar and SIMD paths already give the same bytes (where they do
#      not, it is said, not compared), on the one fp32 kernel table the Arm paths share.
#
# Usage: scripts/test_arm64.sh [HOST_Q8]   (default build/q8, the x86 program to compare with)
# Environment: Q8_ARM64_BUILD (default build-arm64), Q8_ARM_JOBS (parallel qemu runs, default
#              all cores), Q8_SHARED (reference models and inputs, default ../shared).
# The models come from ../shared (as tests/test_int8.cpp finds them); without it step 3 is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
host_q8=${1:-build/q8}
build=${Q8_ARM64_BUILD:-build-arm64}
jobs=${Q8_ARM_JOBS:-$(nproc 2>/dev/null || echo 2)}
shared=${Q8_SHARED:-$root/../shared}
case $build in /*) ;; *) build="$root/$build" ;; esac
start=$(date +%s)

missing=()
for p in qemu-user qemu-user-static; do
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

Q8_ARM_JOBS=$jobs scripts/build_arm64.sh "$build"
echo "q8: AArch64 deploy tests under qemu"
ctest --test-dir "$build" --output-on-failure -j "$jobs"

if [ ! -d "$shared/models" ] || [ ! -d "$shared/reference" ]; then
  echo "q8: $shared is absent: the AArch64 end-to-end comparison is skipped"
  exit 0
fi
[ -x "$host_q8" ] || {
  echo "q8: error: $host_q8 (the x86 q8 to compare with) is not built" >&2
  exit 1
}
arm_q8="$build/deploy/bin/q8"
qemu=(qemu-aarch64 -cpu max)
out="$build/_e2e"
rm -rf "$out"
mkdir -p "$out"
# The first image of the ImageNet pair and 8 of the 64 Fashion-MNIST images keep the emulated
# runs short (tests/test_int8.cpp runs all of them on the host).
img="$out/imagenet_input_1x3x224x224.npy"
fashion="$out/fashion_input_8x1x28x28.npy"
python3 tests/deploy/npy_head.py "$shared/reference/imagenet_input_2x3x224x224.npy" "$img" 1
python3 tests/deploy/npy_head.py "$shared/reference/fashion_input_64x1x28x28.npy" "$fashion" 8
# MODEL INPUT PRECISION
cases=(
  "seed.qdq.onnx $img int8" "seed.qop.onnx $img int8" "resnet18.qdq.onnx $img int8"
  "mobilenet_v2.qdq.onnx $img int8" "fashion_seed.qdq.onnx $fashion int8"
  "seed.onnx $img fp32" "resnet18.onnx $img fp32" "mobilenet_v2.onnx $img fp32" "fashion_seed.onnx $fashion fp32"
)
isas=(neon neondot neoni8mm)
# The three Arm paths share one fp32 kernel table (NEON; engine/runtime/dispatch.cpp), and fp32
# is slow under qemu (about 45 s for resnet18): fp32 runs on the neon path only.
isas_for() { if [ "$1" = fp32 ]; then echo neon; else echo "${isas[@]}"; fi; }

# At most $jobs qemu processes at once.
pids=()
throttle() {
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
}

# x86 first: its default path, and for fp32 the scalar path too.
for c in "${cases[@]}"; do
  read -r model input prec <<<"$c"
  name="${model%.onnx}.$prec"
  "$host_q8" run "$shared/models/$model" --input "$input" --output "$out/$name.x86.npy" --threads 1 >/dev/null
  if [ "$prec" = fp32 ]; then
    Q8_ISA=scalar "$host_q8" run "$shared/models/$model" --input "$input" --output "$out/$name.x86scalar.npy" --threads 1 >/dev/null
  fi
done
qemu_start=$(date +%s)
for c in "${cases[@]}"; do
  read -r model input prec <<<"$c"
  name="${model%.onnx}.$prec"
  if [ "$prec" = fp32 ] && ! cmp -s "$out/$name.x86.npy" "$out/$name.x86scalar.npy"; then
    continue  # reported below
  fi
  for isa in $(isas_for "$prec"); do
    throttle
    (Q8_ISA=$isa "${qemu[@]}" "$arm_q8" run "$shared/models/$model" --input "$input" \
      --output "$out/$name.$isa.npy" --threads 1 >"$out/$name.$isa.log" 2>&1) &
    pids+=($!)
  done
done
for p in "${pids[@]}"; do wait "$p" || true; done
qemu_s=$(($(date +%s) - qemu_start))

same=0 differ=0 skipped=0
for c in "${cases[@]}"; do
  read -r model input prec <<<"$c"
  name="${model%.onnx}.$prec"
  if [ "$prec" = fp32 ] && ! cmp -s "$out/$name.x86.npy" "$out/$name.x86scalar.npy"; then
    echo "SKIP $model fp32: the x86 scalar and SIMD paths already differ, so no cross-architecture promise"
    skipped=$((skipped + 1))
    continue
  fi
  for isa in $(isas_for "$prec"); do
    if [ -f "$out/$name.$isa.npy" ] && cmp -s "$out/$name.x86.npy" "$out/$name.$isa.npy"; then
      echo "SAME $model $prec: x86 and AArch64 $isa give identical bytes"
      same=$((same + 1))
    else
      echo "DIFF $model $prec on $isa: $(cmp "$out/$name.x86.npy" "$out/$name.$isa.npy" 2>&1 | head -1; tail -2 "$out/$name.$isa.log")"
      differ=$((differ + 1))
    fi
  done
done
echo "q8: AArch64 end to end: $same identical, $differ different, $skipped skipped (qemu runs ${qemu_s} s)"
echo "q8: scripts/test_arm64.sh took $(($(date +%s) - start)) s"
[ "$differ" -eq 0 ]
