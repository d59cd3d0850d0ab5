// AVX-VNNI detection: CPUID and XCR0. Compiled without ISA flags: it must run on any CPU, above all
// on those without AVX-VNNI.
#include "kernels/x86/avxvnni_support.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

#include <cstdint>
#endif

namespace q8::kern {
namespace {

#if defined(__x86_64__) || defined(__i386__)
// The reason the avxvnni kernels cannot run, or null when they can.
const char* avxvnni_problem() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return "CPU has no CPUID leaf 1";
  // FMA (ecx 12), OSXSAVE (ecx 27: XGETBV is defined), AVX (ecx 28).
  if (!(c & (1u << 12)) || !(c & (1u << 28))) return "CPU has no AVX2 and FMA3";
  if (!(c & (1u << 27))) return "OS does not use XSAVE (no OSXSAVE)";
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 6u) != 6u) return "OS has not enabled the AVX register state (XCR0)";
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 5))) return "CPU has no AVX2 and FMA3";
  if (a < 1) return "CPU has no AVX-VNNI";  // no sub-leaf 1
  __cpuid_count(7, 1, a, b, c, d);
  if (!(a & (1u << 4))) return "CPU has no AVX-VNNI";
  return nullptr;
}
#endif

}  // namespace

bool qu8_avxvnni_usable(const char** why) {
#if defined(__x86_64__) || defined(__i386__)
  static const char* const problem = avxvnni_problem();
#else
  static const char* const problem = "not an x86 build";
#endif
  if (problem && why) *why = problem;
  return problem == nullptr;
}

}  // namespace q8::kern
