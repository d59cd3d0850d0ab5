// Whether this CPU can run a kernel table, asked of the CPU directly (not of the engine's
// dispatch, which the kernel tests and benchmarks do not link): the kernel tests skip, with the
// reason, the tables it cannot run, and the benchmarks leave them out.
#pragma once

#include <string>

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#ifndef HWCAP2_I8MM  // older kernel headers
#define HWCAP2_I8MM (1 << 13)
#endif
#endif

#if defined(Q8_ARCH_X86)
#include "kernels/x86/amx_support.h"
#include "kernels/x86/avxvnni_support.h"
#endif

namespace q8_test {

// The ISA of a table the tests name: the name itself, or the part before a variant of its GEMM
// tiles ("avx512_6x64" is the avx512 ISA with 6x64 tiles, "avx2_w8" avx2 with int8 weights).
inline std::string isa_of_table(const std::string& name) {
  for (const char* variant : {"_6x64", "_w8"})
    if (const size_t at = name.find(variant); at != std::string::npos) return name.substr(0, at);
  return name;
}

inline bool cpu_supports(const std::string& isa) {
  if (isa != isa_of_table(isa)) return cpu_supports(isa_of_table(isa));
  if (isa == "scalar") return true;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (isa == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == "avx512") return avx512;
  if (isa == "avx512vnni") return avx512 && __builtin_cpu_supports("avx512vnni");
  if (isa == "avx512vbmi") return avx512 && __builtin_cpu_supports("avx512vbmi");  // an extension, no table
#endif
#if defined(Q8_ARCH_X86)
  // Also obtains Linux's grant of tile state. The table's other entries are avx512vnni's.
  if (isa == "amx") return q8::kern::qu8_amx_usable() && cpu_supports("avx512vnni");
  if (isa == "amx_model") return true;  // the AMX driver over the scalar tile model
  if (isa == "avxvnni") return q8::kern::qu8_avxvnni_usable();
#endif
#if defined(__aarch64__)
  if (isa == "neon") return true;
  if (isa == "neondot") return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  if (isa == "neoni8mm") return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) && (getauxval(AT_HWCAP2) & HWCAP2_I8MM);
#endif
  return false;
}

// What a skip message says after "this CPU cannot run <isa>".
inline std::string why_not(const std::string& isa) {
#if defined(Q8_ARCH_X86)
  const char* why = "";
  if (isa == "amx" && !q8::kern::qu8_amx_usable(&why)) return std::string(": ") + why;
  if (isa == "avxvnni" && !q8::kern::qu8_avxvnni_usable(&why)) return std::string(": ") + why;
#endif
  (void)isa;
  return "";
}

}  // namespace q8_test
