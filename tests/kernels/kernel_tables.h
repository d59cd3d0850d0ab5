// The kernel table an ISA name of the tests' parameters names ("scalar", "avx512vnni", ...), or
// null where this build or target lacks it. Whether this CPU can run it is cpu_support.h's.
#pragma once

#include <string>

#include "kernels/f32.h"
#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"  // the AMX tile model's table

namespace q8_test {

inline const q8::kern::QU8Kernels* qu8_table_for(const std::string& isa) {
  if (isa == "scalar") return q8::kern::qu8_kernels_scalar();
  if (isa == "avx2") return q8::kern::qu8_kernels_avx2();
  if (isa == "avx2_w8") return q8::kern::qu8_kernels_avx2_w8();  // the same ISA, int8 weights
  if (isa == "avx512") return q8::kern::qu8_kernels_avx512();
  if (isa == "avx512vnni") return q8::kern::qu8_kernels_avx512vnni();
  if (isa == "avx512vnni_6x64") return q8::kern::qu8_kernels_avx512vnni_6x64();  // the same ISA, wider tiles
  if (isa == "avxvnni") return q8::kern::qu8_kernels_avxvnni();
  if (isa == "amx") return q8::kern::qu8_kernels_amx();
#if defined(Q8_ARCH_X86)
  if (isa == "amx_model") return q8::kern::qu8_kernels_amx_model();
#endif
  if (isa == "neon") return q8::kern::qu8_kernels_neon();
  if (isa == "neondot") return q8::kern::qu8_kernels_neondot();
  if (isa == "neoni8mm") return q8::kern::qu8_kernels_neoni8mm();
  return nullptr;
}

inline const q8::kern::F32Kernels* f32_table_for(const std::string& isa) {
  if (isa == "scalar") return q8::kern::f32_kernels_scalar();
  if (isa == "avx2") return q8::kern::f32_kernels_avx2();
  if (isa == "avx512") return q8::kern::f32_kernels_avx512();
  if (isa == "avx512_6x64") return q8::kern::f32_kernels_avx512_6x64();  // the same ISA, a wider tile
  if (isa == "neon") return q8::kern::f32_kernels_neon();
  return nullptr;
}

}  // namespace q8_test
