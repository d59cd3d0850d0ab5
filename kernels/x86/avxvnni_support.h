// Whether this CPU and OS can run the avxvnni kernels (kernels/x86/qu8_gemm_avxvnni.cpp).
// Written here rather than asked of cpuinfo: the cpuinfo that Debian 12 ships predates AVX-VNNI.
#pragma once

namespace q8::kern {

// True when the CPU has AVX-VNNI (the VEX vpdpbusd: CPUID.(7,1):EAX bit 4) and the AVX2 and FMA
// the rest of the table uses, and the OS enabled the ymm register state in XCR0. Cheap; computed
// once per process. When false and `why` is not null, *why says what is missing (a static string).
bool qu8_avxvnni_usable(const char** why = nullptr);

}  // namespace q8::kern
