// Whether this CPU, OS and process can run the AMX int8 kernels (kernels/x86/qu8_gemm_amx.cpp).
// Written here rather than asked of cpuinfo: the cpuinfo that Debian 12 ships predates AMX.
#pragma once

namespace q8::kern {

// True when the CPU has AMX-TILE and AMX-INT8 (and the AVX-512 F/BW/VL/DQ the kernels' epilogue
// uses), the OS enabled their register state in XCR0, and Linux granted this process the tile
// data state (arch_prctl ARCH_REQ_XCOMP_PERM): without that grant the first tile instruction
// kills the process. The answer is computed once per process; asking is thread-safe and cheap.
// When false and `why` is not null, *why says what is missing (a static string).
bool qu8_amx_usable(const char** why = nullptr);

}  // namespace q8::kern
