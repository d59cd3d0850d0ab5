// The avxvnni table: the AVX-VNNI GEMM micro-kernels (kernels/x86/qu8_gemm_avxvnni.cpp) with the
// avx2 table's depthwise, pooling and element-wise kernels (kernels/x86/qu8_ops_avx2.cpp), which
// are exact and need no VNNI. (The four-taps-per-lane vpdpbusd depthwise exists for AVX-512 only:
// kernels/x86/qu8_dwconv_quad_avx512.h.)
#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"

#if defined(__AVX2__) && defined(__AVXVNNI__)
namespace q8::kern {
namespace {

// Constant-initialised (no code runs to build it), so asking for the table is safe on any CPU.
constexpr QU8Kernels k_table =
    qu8_avx2_family_table("avxvnni", kQu8AvxvnniMR, kQu8AvxvnniNR, 1,  // int8 weights
                          Q8_KERNEL(qu8_igemm_6x16c4__avxvnni), Q8_KERNEL(qu8_gemm_6x16c4__avxvnni),
                          Q8_KERNEL(qu8_gemm_dequantize_6x16c4__avxvnni), nullptr);

}  // namespace

const QU8Kernels* qu8_kernels_avxvnni() { return &k_table; }

}  // namespace q8::kern

#else
namespace q8::kern {
const QU8Kernels* qu8_kernels_avxvnni() { return nullptr; }  // no AVX-VNNI flags
}  // namespace q8::kern
#endif
