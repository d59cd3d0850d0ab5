// The part of cpuinfo's C API that q8 calls, answered from the CPU itself, for the
// dependency-light build (Q8_BUNDLED_DEPS). Debian 12 ships cpuinfo only as a shared library, and
// a runtime that must work in an empty root cannot read /proc or /sys as cpuinfo does: here the
// x86 answers come from CPUID and XGETBV, the Arm ones from the kernel's hardware capability bits
// (getauxval), neither of which needs a file. Only what q8 asks is filled in: SIMD features,
// the package name, the processor count and the vendor of core 0.
#include <cpuinfo.h>

#include <sched.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#if CPUINFO_ARCH_X86_64
#include <cpuid.h>
#elif CPUINFO_ARCH_ARM64
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

extern "C" {
#if CPUINFO_ARCH_X86_64
struct cpuinfo_x86_isa cpuinfo_isa;
#elif CPUINFO_ARCH_ARM64
struct cpuinfo_arm_isa cpuinfo_isa;
#endif
}

namespace {

cpuinfo_package g_package;
cpuinfo_core g_core;  // core 0: only its vendor is filled in
uint32_t g_processors = 1;

#if CPUINFO_ARCH_X86_64
// XCR0 says which register states the OS saves on a context switch: a CPU feature whose
// registers the OS does not save cannot be used.
uint64_t xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

void detect() {
  unsigned a, b, c, d;
  // The vendor string of leaf 0, e.g. "GenuineIntel", lies in EBX, EDX, ECX.
  if (!__get_cpuid(0, &a, &b, &c, &d)) return;
  const unsigned v[3] = {b, d, c};
  char vendor[13] = {};
  std::memcpy(vendor, v, 12);
  if (std::strcmp(vendor, "GenuineIntel") == 0) g_core.vendor = cpuinfo_vendor_intel;
  if (std::strcmp(vendor, "AuthenticAMD") == 0) g_core.vendor = cpuinfo_vendor_amd;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return;
  const bool osxsave = (c >> 27) & 1;
  const uint64_t xcr = osxsave ? xcr0() : 0;
  const bool ymm = (xcr & 0x6) == 0x6;           // SSE and AVX state
  const bool zmm = ymm && (xcr & 0xE0) == 0xE0;  // opmask, upper ZMM0-15, ZMM16-31
  cpuinfo_isa.sse4_2 = (c >> 20) & 1;
  cpuinfo_isa.avx = ymm && ((c >> 28) & 1);
  cpuinfo_isa.fma3 = ymm && ((c >> 12) & 1);
  cpuinfo_isa.f16c = ymm && ((c >> 29) & 1);
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    cpuinfo_isa.avx2 = ymm && ((b >> 5) & 1);
    cpuinfo_isa.avx512f = zmm && ((b >> 16) & 1);
    cpuinfo_isa.avx512dq = zmm && ((b >> 17) & 1);
    cpuinfo_isa.avx512bw = zmm && ((b >> 30) & 1);
    cpuinfo_isa.avx512vl = zmm && ((b >> 31) & 1);
    cpuinfo_isa.avx512vnni = zmm && ((c >> 11) & 1);
  }
  // The brand string, e.g. "AMD EPYC 7B13 64-Core Processor", without its padding spaces.
  char brand[49] = {};
  if (__get_cpuid_max(0x80000000, nullptr) >= 0x80000004) {
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002 + i, &a, &b, &c, &d);
      const unsigned regs[4] = {a, b, c, d};
      std::memcpy(brand + 16 * i, regs, 16);
    }
  }
  const char* s = brand;
  while (*s == ' ') ++s;
  std::memcpy(g_package.name, s, std::min<size_t>(std::strlen(s), CPUINFO_PACKAGE_NAME_MAX - 1));
  for (size_t n = std::strlen(g_package.name); n > 0 && g_package.name[n - 1] == ' '; --n) g_package.name[n - 1] = '\0';
}
#elif CPUINFO_ARCH_ARM64
void detect() {
  // Advanced SIMD is part of AArch64; the dot-product instructions are optional (Armv8.2).
  cpuinfo_isa.dot = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
}
#else
void detect() {}
#endif

}  // namespace

extern "C" {

bool CPUINFO_ABI cpuinfo_initialize(void) {
  static std::once_flag once;
  std::call_once(once, [] {
    detect();
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
      g_processors = static_cast<uint32_t>(CPU_COUNT(&set));
    g_package.processor_count = g_package.core_count = g_processors;
    g_package.cluster_count = 1;
  });
  return true;
}

uint32_t CPUINFO_ABI cpuinfo_get_packages_count(void) { return 1; }

const struct cpuinfo_package* CPUINFO_ABI cpuinfo_get_package(uint32_t index) {
  return index == 0 ? &g_package : nullptr;
}

// Core 0, of which q8 reads the vendor (runtime/dispatch.cpp picks the AVX-512 GEMM tiles by it).
const struct cpuinfo_core* CPUINFO_ABI cpuinfo_get_core(uint32_t index) { return index == 0 ? &g_core : nullptr; }

// Logical processors this process may run on, as cpuinfo counts them; q8 only prints it.
uint32_t CPUINFO_ABI cpuinfo_get_processors_count(void) { return g_processors; }

}  // extern "C"
