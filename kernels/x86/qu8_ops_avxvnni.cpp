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
const QU8Kernels k_table = {
    "avxvnni",
    kQu8AvxvnniMR,
    kQu8AvxvnniNR,
    4,  // kr: c4 blocks
    1,  // weight_bytes: int8
    Q8_KERNEL(qu8_igemm_6x16c4__avxvnni),
    Q8_KERNEL(qu8_gemm_6x16c4__avxvnni),
    Q8_KERNEL(qu8_dwconv__avx2),
    Q8_KERNEL(qu8_maxpool__avx2),
    Q8_KERNEL(qu8_avgpool__avx2),
    Q8_KERNEL(qu8_global_avgpool__avx2),
    Q8_KERNEL(qu8_add__avx2),
    Q8_KERNEL(qu8_quantize__avx2),
    Q8_KERNEL(qu8_dequantize__avx2),
    Q8_KERNEL(qu8_mul_rows__avx2),
    Q8_KERNEL(qu8_lookup__avx2),
    Q8_KERNEL(qu8_gemm_dequantize_6x16c4__avxvnni),
};

}  // namespace

const QU8Kernels* qu8_kernels_avxvnni() { return &k_table; }

}  // namespace q8::kern

#else
namespace q8::kern {
const QU8Kernels* qu8_kernels_avxvnni() { return nullptr; }  // no AVX-VNNI flags
}  // namespace q8::kern
#endif
