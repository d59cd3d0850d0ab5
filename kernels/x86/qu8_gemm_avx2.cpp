// int8 GEMM / indirect GEMM micro-kernels for AVX2: tile of 4 rows x 8 output channels.
// vpmaddubsw would saturate (255 * 127 * 2 > 32767), so both operands are widened to int16 and
// multiplied with vpmaddwd, which is exact: per step of 4 input channels, the 32 weight bytes
// become two ymm of int16 (lanes 0-3 and 4-7, 4 channels each), the 4 activation bytes of a row
// become (a0 a1 a2 a3) x 4 in int16, and each vpmaddwd yields, per output channel, two int32
// partial sums (channels 0-1 and 2-3), folded with vphaddd when the tile ends.
#include "kernels/qu8_internal.h"

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstring>

namespace q8::kern {
namespace {

constexpr size_t kMR = kQu8Avx2MR, kNR = kQu8Avx2NR;
static_assert(kNR == 8, "one ymm of int32 per row");

inline int32_t load_u32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <int R>
void tile(size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, uint8_t* c,
          size_t c_stride, const QU8Requant& p) {
  const uint8_t* pw = static_cast<const uint8_t*>(w);
  const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pw));
  pw += kNR * 4;
  __m256i acc[R][2];  // [r][0]: lanes 0-3, [r][1]: lanes 4-7; int32 element e = lane e/2, pair e%2
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  const size_t blocks = (kc + 3) / 4;  // the last block may read up to 3 bytes past kc
  for (size_t t = 0; t < ks; ++t) {
    const uint8_t* ar[R];
    for (int r = 0; r < R; ++r) ar[r] = a[r * ks + t];
    for (size_t b = 0; b < blocks; ++b) {
      const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pw)));
      const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pw + 16)));
      for (int r = 0; r < R; ++r) {
        const __m256i x = _mm256_cvtepu8_epi16(_mm_set1_epi32(load_u32(ar[r] + 4 * b)));
        acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(x, w0));
        acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(x, w1));
      }
      pw += kNR * 4;
    }
  }
  // Requantize exactly as qu8.h (see the VNNI kernel). The result is in [out_min, out_max], so
  // the saturating packs (int32 -> int16 -> uint8) never change it.
  const __m256 lo = _mm256_set1_ps(static_cast<float>(int32_t{p.out_min} - p.out_zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(int32_t{p.out_max} - p.out_zero_point));
  const __m256i z = _mm256_set1_epi32(p.out_zero_point);
  const __m256 m = _mm256_loadu_ps(reinterpret_cast<const float*>(pw));
  for (int r = 0; r < R; ++r) {
    // hadd gives lanes [0 1 4 5 | 2 3 6 7]; the permute restores 0..7.
    const __m256i sum = _mm256_add_epi32(
        bias, _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][0], acc[r][1]), 0xD8));
    __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(sum), m);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(x), z);
    const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i q8 = _mm_packus_epi16(q16, q16);
    uint8_t* out = c + r * c_stride;
    if (nc == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out), q8);
    } else {
      uint8_t tmp[16];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), q8);
      std::memcpy(out, tmp, nc);
    }
  }
}

using TileFn = void (*)(size_t, size_t, size_t, const uint8_t* const*, const void*, uint8_t*,
                        size_t, const QU8Requant&);
TileFn select(size_t mr) {
  switch (mr) {
    case 1: return &tile<1>;
    case 2: return &tile<2>;
    case 3: return &tile<3>;
    default: return &tile<4>;
  }
}

}  // namespace

void qu8_igemm_4x8c4__avx2(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a,
                           const void* w, uint8_t* c, size_t c_stride, const QU8Requant& p) {
  select(mr)(nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_4x8c4__avx2(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                          const void* w, uint8_t* c, size_t c_stride, const QU8Requant& p) {
  const uint8_t* rows[kMR];
  for (size_t i = 0; i < mr; ++i) rows[i] = a + i * a_stride;
  select(mr)(nc, kc, 1, rows, w, c, c_stride, p);
}

}  // namespace q8::kern
#endif
