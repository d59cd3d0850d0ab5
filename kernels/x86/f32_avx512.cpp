// fp32 kernels for AVX-512 (F+BW+VL+DQ), in two tables that differ only in the GEMM tile:
//   6 rows x 32 channels: 12 zmm accumulators, 2 weight vectors and one broadcast per row (12 FMAs
//     for 8 loads per input channel);
//   6 rows x 64 channels: 24 accumulators, 4 weight vectors (24 FMAs for 10 loads), 29 of the 32
//     registers.
// Which one a CPU runs is dispatch's choice (runtime/dispatch.cpp, by core vendor): on an Intel
// Xeon (Ice Lake) the 6x64 tile keeps both FMA pipes busier while the weights stream from L2; on
// AMD Zen 5 the 6x32 tile measured faster, against a 6x64 build that still spilled a register
// (BENCHMARKS.md). Every output's operations are the same.
#include "kernels/f32.h"

#if defined(__AVX512F__) && defined(__AVX512BW__)
// GCC 12's avx512fintrin.h initialises _mm512_undefined_ps() from itself, and -Wmaybe-uninitialized
// then flags every _mm512_max_ps/_mm512_min_ps inlined here (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/f32_simd.h"

namespace q8::kern {
namespace {
using Arch = xsimd::avx512bw;

void f32_igemm_6x32__avx512(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w, float* c,
                            size_t c_stride, const float* residual, float out_min, float out_max) {
  f32_simd::igemm_tile<Arch, 6, 2>(mr, nc, kc, ks, a, w, c, c_stride, residual, out_min, out_max);
}

void f32_igemm_block_6x32__avx512(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_stride,
                                  size_t a_offset, const float* bias, const float* w, float* c, size_t c_stride,
                                  const float* residual, float out_min, float out_max, bool last) {
  f32_simd::igemm_block_rows<Arch, 6, 2>(mr, nc, kc, ks, a, a_stride, a_offset, bias, w, c, c_stride, residual, out_min,
                                         out_max, last);
}

// The narrow tile: 12 rows x 16 channels (12 zmm accumulators, one weight vector and one
// broadcast per row: 12 FMAs for 13 loads per input channel, against 6x32's 12 for 8, but no lane
// wasted on layers of 16 channels or fewer).
void f32_igemm_12x16__avx512(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w,
                             float* c, size_t c_stride, const float* residual, float out_min, float out_max) {
  f32_simd::igemm_tile<Arch, 12, 1>(mr, nc, kc, ks, a, w, c, c_stride, residual, out_min, out_max);
}

void f32_igemm_block_12x16__avx512(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_stride,
                                   size_t a_offset, const float* bias, const float* w, float* c, size_t c_stride,
                                   const float* residual, float out_min, float out_max, bool last) {
  f32_simd::igemm_block_rows<Arch, 12, 1>(mr, nc, kc, ks, a, a_stride, a_offset, bias, w, c, c_stride, residual,
                                          out_min, out_max, last);
}

void f32_igemm_6x64__avx512(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w, float* c,
                            size_t c_stride, const float* residual, float out_min, float out_max) {
  f32_simd::igemm_tile<Arch, 6, 4>(mr, nc, kc, ks, a, w, c, c_stride, residual, out_min, out_max);
}

void f32_igemm_block_6x64__avx512(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_stride,
                                  size_t a_offset, const float* bias, const float* w, float* c, size_t c_stride,
                                  const float* residual, float out_min, float out_max, bool last) {
  f32_simd::igemm_block_rows<Arch, 6, 4>(mr, nc, kc, ks, a, a_stride, a_offset, bias, w, c, c_stride, residual, out_min,
                                         out_max, last);
}

void f32_gemm_6x64__avx512(size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w, float* c,
                           size_t c_stride, float out_min, float out_max) {
  f32_simd::gemm_tile<Arch, 6, 4>(mr, nc, kc, a, a_stride, w, c, c_stride, out_min, out_max);
}

void f32_gemm_6x32__avx512(size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w, float* c,
                           size_t c_stride, float out_min, float out_max) {
  f32_simd::gemm_tile<Arch, 6, 2>(mr, nc, kc, a, a_stride, w, c, c_stride, out_min, out_max);
}

// The shared SIMD kernels instantiated for this ISA, under the names the table reports.
constexpr auto f32_dwconv__avx512 = &f32_simd::dwconv<Arch>;
constexpr auto f32_maxpool__avx512 = &f32_simd::maxpool<Arch>;
constexpr auto f32_avgpool__avx512 = &f32_simd::avgpool<Arch>;
constexpr auto f32_global_avgpool__avx512 = &f32_simd::global_avgpool<Arch>;
constexpr auto f32_add__avx512 = &f32_simd::binary<Arch, BinaryOp::Add>;
constexpr auto f32_sub__avx512 = &f32_simd::binary<Arch, BinaryOp::Sub>;
constexpr auto f32_mul__avx512 = &f32_simd::binary<Arch, BinaryOp::Mul>;
constexpr auto f32_div__avx512 = &f32_simd::binary<Arch, BinaryOp::Div>;
constexpr auto f32_add_rows__avx512 = &f32_simd::binary_rows<Arch, BinaryOp::Add>;
constexpr auto f32_sub_rows__avx512 = &f32_simd::binary_rows<Arch, BinaryOp::Sub>;
constexpr auto f32_mul_rows__avx512 = &f32_simd::binary_rows<Arch, BinaryOp::Mul>;
constexpr auto f32_div_rows__avx512 = &f32_simd::binary_rows<Arch, BinaryOp::Div>;
constexpr auto f32_clamp__avx512 = &f32_simd::clamp<Arch>;
constexpr auto f32_unary__avx512 = &f32_simd::unary<Arch>;

// The table around a GEMM tile (its conv entry and the plain GEMM of the same shape). constexpr,
// so both tables are constant-initialised (no code runs to build them) and asking for one is safe
// on any CPU.
constexpr F32Kernels avx512_table(F32ConvKernel conv, decltype(F32Kernels::gemm) gemm) {
  return {
      "avx512",
      conv,
      {12, 16, Q8_KERNEL(f32_igemm_12x16__avx512), Q8_KERNEL(f32_igemm_block_12x16__avx512)},
      gemm,
      Q8_KERNEL(f32_dwconv__avx512),
      Q8_KERNEL(f32_maxpool__avx512),
      Q8_KERNEL(f32_avgpool__avx512),
      Q8_KERNEL(f32_global_avgpool__avx512),
      {Q8_KERNEL(f32_add__avx512), Q8_KERNEL(f32_sub__avx512), Q8_KERNEL(f32_mul__avx512), Q8_KERNEL(f32_div__avx512)},
      {Q8_KERNEL(f32_add_rows__avx512), Q8_KERNEL(f32_sub_rows__avx512), Q8_KERNEL(f32_mul_rows__avx512),
       Q8_KERNEL(f32_div_rows__avx512)},
      Q8_KERNEL(f32_clamp__avx512),
      Q8_KERNEL(f32_unary__avx512),
  };
}
constexpr F32Kernels k_table =
    avx512_table({6, 32, Q8_KERNEL(f32_igemm_6x32__avx512), Q8_KERNEL(f32_igemm_block_6x32__avx512)},
                 Q8_KERNEL(f32_gemm_6x32__avx512));
constexpr F32Kernels k_table_6x64 =
    avx512_table({6, 64, Q8_KERNEL(f32_igemm_6x64__avx512), Q8_KERNEL(f32_igemm_block_6x64__avx512)},
                 Q8_KERNEL(f32_gemm_6x64__avx512));
}  // namespace

const F32Kernels* f32_kernels_avx512() { return &k_table; }
const F32Kernels* f32_kernels_avx512_6x64() { return &k_table_6x64; }
}  // namespace q8::kern

#else
namespace q8::kern {
const F32Kernels* f32_kernels_avx512() { return nullptr; }  // this build has no AVX-512 flags
const F32Kernels* f32_kernels_avx512_6x64() { return nullptr; }
}  // namespace q8::kern
#endif
