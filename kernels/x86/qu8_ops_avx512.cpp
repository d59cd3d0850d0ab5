// int8 depthwise conv, pools, add, quantize, dequantize for AVX-512 F+BW(+VL+DQ), and the avx512
// table. Depthwise kernels of up to kQu8DwBlockMaxTaps taps are kernels/x86/qu8_dwconv_quad_avx512.h
// (four taps per int32 lane, two vpmaddwd per 64 products). The rest are kernels/qu8_ops_simd.h's
// loops over the traits below: 16 int32 lanes per zmm (vpmovzxbd/vpmovsxbd, exact vpmulld
// products), 64 bytes per zmm for max pool; tails use masked loads and stores, which never touch
// the masked-off bytes.
//
// These functions (qu8_*__avx512, declared in kernels/qu8_internal.h) also fill the avx512vnni
// table, which has its own GEMM kernels and depthwise (vpdpbusd).
#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// GCC 12's avx512fintrin.h initialises _mm512_undefined_*() from itself, which trips
// -Wmaybe-uninitialized on inlined intrinsics (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/qu8_ops_simd.h"
#include "kernels/x86/qu8_dwconv_quad_avx512.h"

namespace q8::kern {
namespace {

struct Avx512 {
  static constexpr size_t W = 16;   // int32 / float lanes
  static constexpr size_t WB = 64;  // byte lanes
  using I = __m512i;
  using F = __m512;
  using B = __m512i;

  static __mmask16 mask16(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }  // n < 16
  static __mmask64 mask64(size_t n) { return n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1; }
  static __mmask16 maskw(size_t n) { return n >= 16 ? __mmask16(0xffff) : mask16(n); }

  static I set1(int32_t v) { return _mm512_set1_epi32(v); }
  static F set1f(float v) { return _mm512_set1_ps(v); }
  static I add(I a, I b) { return _mm512_add_epi32(a, b); }
  static I sub(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I mul(I a, I b) { return _mm512_mullo_epi32(a, b); }  // |u8 * s8| < 2^15: exact
  static F cvtf(I a) { return _mm512_cvtepi32_ps(a); }
  static F mulf(F a, F b) { return _mm512_mul_ps(a, b); }
  static F addf(F a, F b) { return _mm512_add_ps(a, b); }
  static F subf(F a, F b) { return _mm512_sub_ps(a, b); }
  static F divf(F a, F b) { return _mm512_div_ps(a, b); }
  static F maxf(F a, F lo) { return _mm512_max_ps(a, lo); }  // a > lo ? a : lo
  static F minf(F a, F hi) { return _mm512_min_ps(a, hi); }  // a < hi ? a : hi
  static I round(F a) { return _mm512_cvtps_epi32(a); }      // MXCSR: round half to even
  static F opaque(F a) {  // keeps the compiler from fusing this product into a later add
    __asm__("" : "+v"(a));
    return a;
  }

  static I load_u8(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static I load_s8(const int8_t* p) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static I load_u8_partial(const uint8_t* p, size_t n) {
    return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(maskw(n), p));
  }
  static I load_s8_partial(const int8_t* p, size_t n) {
    return _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(maskw(n), p));
  }
  static I load_i32(const void* p) { return _mm512_loadu_si512(p); }
  static I load_i32_partial(const void* p, size_t n) { return _mm512_maskz_loadu_epi32(maskw(n), p); }
  static void store_i32(I v, int32_t* p) { _mm512_store_si512(p, v); }  // aligned
  static F load_f32(const void* p) { return _mm512_loadu_ps(p); }
  static F load_f32_partial(const void* p, size_t n) { return _mm512_maskz_loadu_ps(maskw(n), p); }
  // Lanes hold values in [0, 255]: the truncating vpmovdb is exact.
  static void store_u8(I v, uint8_t* p) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v)); }
  static void store_u8_partial(I v, uint8_t* p, size_t n) { _mm512_mask_cvtepi32_storeu_epi8(p, maskw(n), v); }
  static void store_f32(F v, float* p) { _mm512_storeu_ps(p, v); }
  static void store_f32_partial(F v, float* p, size_t n) { _mm512_mask_storeu_ps(p, maskw(n), v); }

  static B zero_b() { return _mm512_setzero_si512(); }
  static B set1_b(uint8_t v) { return _mm512_set1_epi8(static_cast<char>(v)); }
  static B max_b(B a, B b) { return _mm512_max_epu8(a, b); }
  static B load_b(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static B load_b_partial(const uint8_t* p, size_t n) { return _mm512_maskz_loadu_epi8(mask64(n), p); }
  static void store_b(B v, uint8_t* p) { _mm512_storeu_si512(p, v); }
  static void store_b_partial(B v, uint8_t* p, size_t n) { _mm512_mask_storeu_epi8(p, mask64(n), v); }
  // f[j] = 2^23 + byte, as float bits 0x4B0000bb: bytes to words (vpunpck*bw with zero), words to
  // dwords under 0x4B00 (vpunpck*wd). Per 128-bit lane, f[0..3] hold bytes 0-3, 4-7, 8-11, 12-15,
  // the order narrow_u8's packs undo.
  static void widen_biased(B v, F f[4]) {
    const __m512i zero = _mm512_setzero_si512(), top = _mm512_set1_epi16(0x4B00);
    const __m512i lo = _mm512_unpacklo_epi8(v, zero), hi = _mm512_unpackhi_epi8(v, zero);
    f[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(lo, top));
    f[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(lo, top));
    f[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(hi, top));
    f[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(hi, top));
  }
  // Bytes of sat_u8(sat_s16(r) + z) (z in [0, 255], the int16 add saturating), in widen_biased's
  // order: vpackssdw, vpaddsw, vpackuswb work within 128-bit lanes, as the unpacks do.
  static B narrow_u8(const I r[4], int32_t z) {
    const __m512i zw = _mm512_set1_epi16(static_cast<int16_t>(z));
    const __m512i w01 = _mm512_adds_epi16(_mm512_packs_epi32(r[0], r[1]), zw);
    const __m512i w23 = _mm512_adds_epi16(_mm512_packs_epi32(r[2], r[3]), zw);
    return _mm512_packus_epi16(w01, w23);
  }
};

constexpr QU8Kernels k_table = qu8_avx512_family_table(
    "avx512", kQu8Avx512MR, kQu8Avx512NR, Q8_KERNEL(qu8_igemm_8x16c4__avx512), Q8_KERNEL(qu8_gemm_8x16c4__avx512),
    Q8_KERNEL(qu8_dwconv__avx512), Q8_KERNEL(qu8_gemm_dequantize_8x16c4__avx512));

}  // namespace

// The 256-byte table as 16 rows of 16 bytes, the high nibble picking the row and the low one the
// byte: vpshufb looks 64 bytes up in one row (broadcast to every 128-bit lane), and a tree of
// blends on the high nibble's four bits keeps each byte's row: 16 shuffles and 15 blends per 64
// bytes, where the byte loop spends a load, a dependent load and a store per byte.
void qu8_lookup__avx512(size_t n, const uint8_t* in, uint8_t* out, const uint8_t* table) {
  __m512i rows[16];
  for (int h = 0; h < 16; ++h)
    rows[h] = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * h)));
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  auto lookup = [&](__m512i x) {
    const __m512i lo = _mm512_and_si512(x, nibble);
    __m512i level[8];
    const __mmask64 b4 = _mm512_test_epi8_mask(x, _mm512_set1_epi8(0x10));
    for (int j = 0; j < 8; ++j)
      level[j] =
          _mm512_mask_blend_epi8(b4, _mm512_shuffle_epi8(rows[2 * j], lo), _mm512_shuffle_epi8(rows[2 * j + 1], lo));
    for (int bit = 5, count = 4; bit < 8; ++bit, count /= 2) {
      const __mmask64 b = _mm512_test_epi8_mask(x, _mm512_set1_epi8(static_cast<char>(1 << bit)));
      for (int j = 0; j < count; ++j) level[j] = _mm512_mask_blend_epi8(b, level[2 * j], level[2 * j + 1]);
    }
    return level[0];
  };
  size_t i = 0;
  for (; i + 64 <= n; i += 64) _mm512_storeu_si512(out + i, lookup(_mm512_loadu_si512(in + i)));
  if (i < n) {  // masked: the bytes past n are neither read nor written
    const __mmask64 m = (uint64_t{1} << (n - i)) - 1;
    _mm512_mask_storeu_epi8(out + i, m, lookup(_mm512_maskz_loadu_epi8(m, in + i)));
  }
}

void qu8_dwconv__avx512(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out,
                        size_t p0, size_t p1, const QU8Requant& p) {
  dw_quad::dwconv<dw_quad::DotMadd>(g, in, packed, zero, out, p0, p1, p, &qu8_simd::dwconv<Avx512>);
}
void qu8_maxpool__avx512(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1) {
  qu8_simd::maxpool<Avx512>(g, in, out, p0, p1);
}
void qu8_avgpool__avx512(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1,
                         const QU8PoolParams& p) {
  qu8_simd::avgpool<Avx512>(g, in, out, p0, p1, p);
}
void qu8_global_avgpool__avx512(size_t HW, size_t C, const uint8_t* in, uint8_t* out, size_t n0, size_t n1,
                                const QU8PoolParams& p) {
  qu8_simd::global_avgpool<Avx512>(HW, C, in, out, n0, n1, p);
}
void qu8_add__avx512(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out, const QU8AddParams& p) {
  qu8_simd::add<Avx512>(n, a, b, out, p);
}
void qu8_mul_rows__avx512(size_t rows, size_t n, const uint8_t* a, size_t a_rs, const uint8_t* b, size_t b_rs,
                          uint8_t* out, const QU8MulParams& p) {
  qu8_simd::mul_rows<Avx512>(rows, n, a, a_rs, b, b_rs, out, p);
}
void qu8_quantize__avx512(size_t n, const float* x, uint8_t* q, float scale, int32_t zero_point) {
  qu8_simd::quantize<Avx512>(n, x, q, scale, zero_point);
}
void qu8_dequantize__avx512(size_t n, const uint8_t* q, float* y, float scale, int32_t zero_point) {
  qu8_simd::dequantize<Avx512>(n, q, y, scale, zero_point);
}

const QU8Kernels* qu8_kernels_avx512() { return &k_table; }

}  // namespace q8::kern

#else
namespace q8::kern {
const QU8Kernels* qu8_kernels_avx512() { return nullptr; }  // this build has no AVX-512 flags
}  // namespace q8::kern
#endif
