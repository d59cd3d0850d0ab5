// int8 depthwise conv, pools, add, quantize, dequantize for AVX2 (compiled with -mavx2 -mfma),
// and the avx2 table. The loops are kernels/qu8_ops_simd.h over the traits below: 8 int32
// lanes per ymm (u8 zero-extended and s8 sign-extended with vpmovzxbd/vpmovsxbd, exact vpmulld
// products), 32 bytes per ymm for max pool. Tails shorter than a vector go through a small stack
// buffer, so no load or store touches a byte past the caller's rows.
#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/qu8_ops_simd.h"

namespace q8::kern {
namespace {

struct Avx2 {
  static constexpr size_t W = 8;    // int32 / float lanes
  static constexpr size_t WB = 32;  // byte lanes
  using I = __m256i;
  using F = __m256;
  using B = __m256i;

  static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  static F set1f(float v) { return _mm256_set1_ps(v); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  static I sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I mul(I a, I b) { return _mm256_mullo_epi32(a, b); }  // |u8 * s8| < 2^15: exact
  static F cvtf(I a) { return _mm256_cvtepi32_ps(a); }
  static F mulf(F a, F b) { return _mm256_mul_ps(a, b); }
  static F addf(F a, F b) { return _mm256_add_ps(a, b); }
  static F divf(F a, F b) { return _mm256_div_ps(a, b); }
  static F maxf(F a, F lo) { return _mm256_max_ps(a, lo); }  // a > lo ? a : lo
  static F minf(F a, F hi) { return _mm256_min_ps(a, hi); }  // a < hi ? a : hi
  static I round(F a) { return _mm256_cvtps_epi32(a); }      // MXCSR: round half to even
  static F opaque(F a) {  // keeps the compiler from fusing this product into a later add
    __asm__("" : "+x"(a));
    return a;
  }

  static I load_u8(const uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static I load_s8(const int8_t* p) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static I load_u8_partial(const uint8_t* p, size_t n) {
    alignas(16) uint8_t tmp[16] = {};
    std::memcpy(tmp, p, n);
    return load_u8(tmp);
  }
  static I load_s8_partial(const int8_t* p, size_t n) {
    alignas(16) int8_t tmp[16] = {};
    std::memcpy(tmp, p, n);
    return load_s8(tmp);
  }
  static I load_i32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static I load_i32_partial(const void* p, size_t n) {
    alignas(32) int32_t tmp[8] = {};
    std::memcpy(tmp, p, n * 4);
    return load_i32(tmp);
  }
  static void store_i32(I v, int32_t* p) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }  // aligned
  static F load_f32(const void* p) { return _mm256_loadu_ps(static_cast<const float*>(p)); }
  static F load_f32_partial(const void* p, size_t n) {
    alignas(32) float tmp[8] = {};
    std::memcpy(tmp, p, n * 4);
    return load_f32(tmp);
  }
  // Lanes hold values in [0, 255]: the saturating packs are exact.
  static __m128i pack8(I v) {
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm_packus_epi16(w, w);
  }
  static void store_u8(I v, uint8_t* p) { _mm_storel_epi64(reinterpret_cast<__m128i*>(p), pack8(v)); }
  static void store_u8_partial(I v, uint8_t* p, size_t n) {
    alignas(16) uint8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), pack8(v));
    std::memcpy(p, tmp, n);
  }
  static void store_f32(F v, float* p) { _mm256_storeu_ps(p, v); }
  static void store_f32_partial(F v, float* p, size_t n) {
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, v);
    std::memcpy(p, tmp, n * 4);
  }

  static B zero_b() { return _mm256_setzero_si256(); }
  static B max_b(B a, B b) { return _mm256_max_epu8(a, b); }
  static B load_b(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static B load_b_partial(const uint8_t* p, size_t n) {
    alignas(32) uint8_t tmp[32] = {};
    std::memcpy(tmp, p, n);
    return load_b(tmp);
  }
  static void store_b(B v, uint8_t* p) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static void store_b_partial(B v, uint8_t* p, size_t n) {
    alignas(32) uint8_t tmp[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), v);
    std::memcpy(p, tmp, n);
  }
};

void qu8_dwconv__avx2(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out,
                      size_t p0, size_t p1, const QU8Requant& p) {
  qu8_simd::dwconv<Avx2>(g, in, packed, zero, out, p0, p1, p);
}
void qu8_maxpool__avx2(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1) {
  qu8_simd::maxpool<Avx2>(g, in, out, p0, p1);
}
void qu8_avgpool__avx2(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1,
                       const QU8PoolParams& p) {
  qu8_simd::avgpool<Avx2>(g, in, out, p0, p1, p);
}
void qu8_global_avgpool__avx2(size_t HW, size_t C, const uint8_t* in, uint8_t* out, size_t n0, size_t n1,
                              const QU8PoolParams& p) {
  qu8_simd::global_avgpool<Avx2>(HW, C, in, out, n0, n1, p);
}
void qu8_add__avx2(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out, const QU8AddParams& p) {
  qu8_simd::add<Avx2>(n, a, b, out, p);
}
void qu8_mul_rows__avx2(size_t rows, size_t n, const uint8_t* a, size_t a_rs, const uint8_t* b, size_t b_rs,
                        uint8_t* out, const QU8MulParams& p) {
  qu8_simd::mul_rows<Avx2>(rows, n, a, a_rs, b, b_rs, out, p);
}
void qu8_quantize__avx2(size_t n, const float* x, uint8_t* q, float scale, int32_t zero_point) {
  qu8_simd::quantize<Avx2>(n, x, q, scale, zero_point);
}
void qu8_dequantize__avx2(size_t n, const uint8_t* q, float* y, float scale, int32_t zero_point) {
  qu8_simd::dequantize<Avx2>(n, q, y, scale, zero_point);
}

// Constant-initialised (no code runs to build it), so asking for the table is safe on any CPU.
const QU8Kernels k_table = {
    "avx2",
    kQu8Avx2MR,
    kQu8Avx2NR,
    4,  // kr: c4 blocks
    Q8_KERNEL(qu8_igemm_4x16c4__avx2),
    Q8_KERNEL(qu8_gemm_4x16c4__avx2),
    Q8_KERNEL(qu8_dwconv__avx2),
    Q8_KERNEL(qu8_maxpool__avx2),
    Q8_KERNEL(qu8_avgpool__avx2),
    Q8_KERNEL(qu8_global_avgpool__avx2),
    Q8_KERNEL(qu8_add__avx2),
    Q8_KERNEL(qu8_quantize__avx2),
    Q8_KERNEL(qu8_dequantize__avx2),
    Q8_KERNEL(qu8_mul_rows__avx2),
    Q8_KERNEL(qu8_lookup__portable),
};

}  // namespace

const QU8Kernels* qu8_kernels_avx2() { return &k_table; }

}  // namespace q8::kern

#else
namespace q8::kern {
const QU8Kernels* qu8_kernels_avx2() { return nullptr; }  // this build has no AVX2 flags
}  // namespace q8::kern
#endif
