// The avx512vnni table: the VNNI GEMM micro-kernels (kernels/x86/qu8_gemm_avx512vnni.cpp), the
// VNNI depthwise below, and the AVX-512 F+BW pooling and element-wise kernels of
// kernels/x86/qu8_ops_avx512.cpp.
#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
// GCC 12's avx512fintrin.h initialises _mm512_undefined_*() from itself, which trips
// -Wmaybe-uninitialized on inlined intrinsics (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/x86/qu8_dwconv_quad_avx512.h"

namespace q8::kern {

// Depthwise kernels of up to kQu8DwBlockMaxTaps taps: four taps per vpdpbusd lane over the quad
// section of the packing (kernels/x86/qu8_dwconv_quad_avx512.h); longer kernels take the avx512
// table's path, which visits only the taps inside the input.
void qu8_dwconv__avx512vnni(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero,
                            uint8_t* out, size_t p0, size_t p1, const QU8Requant& p) {
  dw_quad::dwconv<dw_quad::DotVnni>(g, in, packed, zero, out, p0, p1, p, &qu8_dwconv__avx512);
}

namespace {

// The two tables differ in their GEMM tile shape only.
constexpr QU8Kernels k_table =
    qu8_avx512_family_table("avx512vnni", kQu8Avx512vnniMR, kQu8Avx512vnniNR, Q8_KERNEL(qu8_igemm_8x32c4__avx512vnni),
                            Q8_KERNEL(qu8_gemm_8x32c4__avx512vnni), Q8_KERNEL(qu8_dwconv__avx512vnni),
                            Q8_KERNEL(qu8_gemm_dequantize_8x32c4__avx512vnni));
constexpr QU8Kernels k_table_6x64 =
    qu8_avx512_family_table("avx512vnni", kQu8Avx512vnni6x64MR, kQu8Avx512vnni6x64NR,
                            Q8_KERNEL(qu8_igemm_6x64c4__avx512vnni), Q8_KERNEL(qu8_gemm_6x64c4__avx512vnni),
                            Q8_KERNEL(qu8_dwconv__avx512vnni), Q8_KERNEL(qu8_gemm_dequantize_6x64c4__avx512vnni));

}  // namespace

const QU8Kernels* qu8_kernels_avx512vnni() { return &k_table; }
const QU8Kernels* qu8_kernels_avx512vnni_6x64() { return &k_table_6x64; }

}  // namespace q8::kern

#else
namespace q8::kern {
const QU8Kernels* qu8_kernels_avx512vnni() { return nullptr; }  // no AVX-512 VNNI flags
const QU8Kernels* qu8_kernels_avx512vnni_6x64() { return nullptr; }
}  // namespace q8::kern
#endif
