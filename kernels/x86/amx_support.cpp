// AMX detection: CPUID, XCR0 and Linux's per-process permission for the tile data state.
// Compiled without ISA flags: it must run on any CPU, above all on those without AMX.
#include "kernels/x86/amx_support.h"

#include <string>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#endif

namespace q8::kern {
namespace {

#if defined(__x86_64__) && defined(__linux__)
// XGETBV is only defined when CPUID.1:ECX.OSXSAVE says the OS uses XSAVE; the caller checks.
uint64_t xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t{hi} << 32) | lo;
}

// The reason AMX is unusable, or null when it is usable.
const char* amx_problem() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return "CPU has no CPUID leaf 7";
  if (!(d & (1u << 24))) return "CPU has no AMX-TILE";
  if (!(d & (1u << 25))) return "CPU has no AMX-INT8";
  // AVX-512 F (ebx 16), DQ (17), BW (30), VL (31): the requantizing epilogue is AVX-512.
  const unsigned avx512 = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
  if ((b & avx512) != avx512) return "CPU has AMX but not AVX-512 F/BW/VL/DQ";
  unsigned a1, b1, c1, d1;
  if (!__get_cpuid(1, &a1, &b1, &c1, &d1) || !(c1 & (1u << 27))) return "OS does not use XSAVE (no OSXSAVE)";
  const uint64_t x = xcr0();
  // XCR0: SSE 1, AVX 2, opmask 5, ZMM_Hi256 6, Hi16_ZMM 7, XTILECFG 17, XTILEDATA 18.
  if ((x & 0xE6) != 0xE6) return "OS did not enable the AVX-512 register state";
  if (!(x & (uint64_t{1} << 17))) return "OS did not enable XTILECFG";
  if (!(x & (uint64_t{1} << 18))) return "OS did not enable XTILEDATA";
  // Linux 5.16+ hands out the 8 KiB tile data state only on request, once per process.
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
    const int err = errno;
    static const std::string msg =
        std::string("arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) refused: ") + std::strerror(err);
    return msg.c_str();
  }
  return nullptr;
}
#else
const char* amx_problem() { return "not an x86-64 Linux build"; }
#endif

}  // namespace

bool qu8_amx_usable(const char** why) {
  static const char* const problem = amx_problem();  // thread-safe, once per process
  if (problem && why) *why = problem;
  return problem == nullptr;
}

}  // namespace q8::kern
