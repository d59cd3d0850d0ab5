// The avx512vnni table: the VNNI GEMM micro-kernels (kernels/x86/qu8_gemm_avx512vnni.cpp) with
// the AVX-512 F+BW depthwise, pooling and element-wise kernels of kernels/x86/qu8_ops_avx512.cpp
// (VNNI's vpdpbusd needs 4 consecutive reduction bytes per lane, which depthwise's layout of one
// tap per channel does not give).
#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
namespace q8::kern {
namespace {

// Constant-initialised (no code runs to build it), so asking for the table is safe on any CPU.
const QU8Kernels k_table = {
    "avx512vnni",
    kQu8Avx512vnniMR,
    kQu8Avx512vnniNR,
    4,  // kr: c4 blocks
    1,  // weight_bytes: int8
    Q8_KERNEL(qu8_igemm_8x32c4__avx512vnni),
    Q8_KERNEL(qu8_gemm_8x32c4__avx512vnni),
    Q8_KERNEL(qu8_dwconv__avx512),
    Q8_KERNEL(qu8_maxpool__avx512),
    Q8_KERNEL(qu8_avgpool__avx512),
    Q8_KERNEL(qu8_global_avgpool__avx512),
    Q8_KERNEL(qu8_add__avx512),
    Q8_KERNEL(qu8_quantize__avx512),
    Q8_KERNEL(qu8_dequantize__avx512),
    Q8_KERNEL(qu8_mul_rows__avx512),
    Q8_KERNEL(qu8_lookup__portable),
    Q8_KERNEL(qu8_gemm_dequantize_8x32c4__avx512vnni),
};

}  // namespace

const QU8Kernels* qu8_kernels_avx512vnni() { return &k_table; }

}  // namespace q8::kern

#else
namespace q8::kern {
const QU8Kernels* qu8_kernels_avx512vnni() { return nullptr; }  // no AVX-512 VNNI flags
}  // namespace q8::kern
#endif
