// fp32 kernels for AVX2 + FMA (compiled with -mavx2 -mfma). GEMM tile: 6 rows x 16 channels
// (12 ymm accumulators + 2 weight vectors + 1 broadcast of the 16 registers).
#include "kernels/f32.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "kernels/f32_simd.h"

namespace q8::kern {
namespace {
using Arch = xsimd::fma3<xsimd::avx2>;

void f32_igemm_6x16__avx2(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w, float* c,
                          size_t c_stride, const float* residual, float out_min, float out_max) {
  f32_simd::igemm_tile<Arch, 6, 2>(mr, nc, kc, ks, a, w, c, c_stride, residual, out_min, out_max);
}

void f32_igemm_block_6x16__avx2(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_stride,
                                size_t a_offset, const float* bias, const float* w, float* c, size_t c_stride,
                                const float* residual, float out_min, float out_max, bool last) {
  f32_simd::igemm_block_rows<Arch, 6, 2>(mr, nc, kc, ks, a, a_stride, a_offset, bias, w, c, c_stride, residual, out_min,
                                         out_max, last);
}

void f32_gemm_6x16__avx2(size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w, float* c,
                         size_t c_stride, float out_min, float out_max) {
  f32_simd::gemm_tile<Arch, 6, 2>(mr, nc, kc, a, a_stride, w, c, c_stride, out_min, out_max);
}

// The shared SIMD kernels instantiated for this ISA, under the names the table reports.
constexpr auto f32_dwconv__avx2 = &f32_simd::dwconv<Arch>;
constexpr auto f32_maxpool__avx2 = &f32_simd::maxpool<Arch>;
constexpr auto f32_avgpool__avx2 = &f32_simd::avgpool<Arch>;
constexpr auto f32_global_avgpool__avx2 = &f32_simd::global_avgpool<Arch>;
constexpr auto f32_add__avx2 = &f32_simd::binary<Arch, BinaryOp::Add>;
constexpr auto f32_sub__avx2 = &f32_simd::binary<Arch, BinaryOp::Sub>;
constexpr auto f32_mul__avx2 = &f32_simd::binary<Arch, BinaryOp::Mul>;
constexpr auto f32_div__avx2 = &f32_simd::binary<Arch, BinaryOp::Div>;
constexpr auto f32_add_rows__avx2 = &f32_simd::binary_rows<Arch, BinaryOp::Add>;
constexpr auto f32_sub_rows__avx2 = &f32_simd::binary_rows<Arch, BinaryOp::Sub>;
constexpr auto f32_mul_rows__avx2 = &f32_simd::binary_rows<Arch, BinaryOp::Mul>;
constexpr auto f32_div_rows__avx2 = &f32_simd::binary_rows<Arch, BinaryOp::Div>;
constexpr auto f32_clamp__avx2 = &f32_simd::clamp<Arch>;
constexpr auto f32_unary__avx2 = &f32_simd::unary<Arch>;

// Constant-initialised (no code runs to build it), so asking for the table is safe on any CPU.
const F32Kernels k_table = {
    "avx2",
    {6, 16, Q8_KERNEL(f32_igemm_6x16__avx2), Q8_KERNEL(f32_igemm_block_6x16__avx2)},
    {},  // conv_narrow: conv's tile is two vectors of a narrow register
    Q8_KERNEL(f32_gemm_6x16__avx2),
    Q8_KERNEL(f32_dwconv__avx2),
    Q8_KERNEL(f32_maxpool__avx2),
    Q8_KERNEL(f32_avgpool__avx2),
    Q8_KERNEL(f32_global_avgpool__avx2),
    {Q8_KERNEL(f32_add__avx2), Q8_KERNEL(f32_sub__avx2), Q8_KERNEL(f32_mul__avx2), Q8_KERNEL(f32_div__avx2)},
    {Q8_KERNEL(f32_add_rows__avx2), Q8_KERNEL(f32_sub_rows__avx2), Q8_KERNEL(f32_mul_rows__avx2),
     Q8_KERNEL(f32_div_rows__avx2)},
    Q8_KERNEL(f32_clamp__avx2),
    Q8_KERNEL(f32_unary__avx2),
};
}  // namespace

const F32Kernels* f32_kernels_avx2() { return &k_table; }
}  // namespace q8::kern

#else
namespace q8::kern {
const F32Kernels* f32_kernels_avx2() { return nullptr; }  // this build has no AVX2 flags
}  // namespace q8::kern
#endif
