// int8 GEMM / indirect GEMM micro-kernels for AVX-512 F+BW without VNNI: tile of 8 rows x 16
// output channels. vpmaddubsw would saturate (255 * 127 * 2 > 32767), so both operands are
// widened to int16 and multiplied with vpmaddwd, which is exact: per step of 4 input channels,
// the 64 weight bytes become two zmm of int16 (lanes 0-7 and 8-15, 4 channels each), the 4
// activation bytes of a row become (a0 a1 a2 a3) x 8 in int16, and each vpmaddwd yields, per
// output channel, two int32 partial sums (channels 0-1 and 2-3). The partials are folded into
// one sum per channel when the tile ends.
#include "kernels/pin_registers.h"
#include "kernels/qu8_gemm_rows.h"
#include "kernels/qu8_internal.h"
#include "kernels/unroll.h"

#if defined(__AVX512F__) && defined(__AVX512BW__)
// GCC 12's avx512fintrin.h initialises _mm512_undefined_ps() from itself, and the uninitialized
// warnings then flag every intrinsic inlined here that uses it (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstring>
#include <type_traits>

namespace q8::kern {
namespace {

constexpr size_t kMR = kQu8Avx512MR, kNR = kQu8Avx512NR;
static_assert(kNR == 16, "one zmm of int32 per row");

inline int32_t load_u32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Out is uint8_t (requantized, the gemm) or float (dequantized, gemm_dequantize).
template <int R, class Out>
void tile(size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, Out* c, size_t c_stride,
          const QU8Requant& p) {
  const uint8_t* pw = static_cast<const uint8_t*>(w);
  const __m512i bias = _mm512_loadu_si512(pw);
  pw += kNR * 4;
  __m512i acc[R][2];  // [r][0]: lanes 0-7, [r][1]: lanes 8-15; int32 element e = lane e/2, pair e%2
  Q8_UNROLL
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
  const size_t blocks = (kc + 3) / 4;  // the last block may read up to 3 bytes past kc
  for (size_t t = 0; t < ks; ++t) {
    const uint8_t* ar[R];
    Q8_UNROLL
    for (int r = 0; r < R; ++r) ar[r] = a[r * ks + t];
    for (size_t b = 0; b < blocks; ++b) {
      const __m512i w0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pw)));
      const __m512i w1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pw + 32)));
      Q8_UNROLL
      for (int r = 0; r < R; ++r) {
        const __m512i x = _mm512_cvtepu8_epi16(_mm256_set1_epi32(load_u32(ar[r] + 4 * b)));
        acc[r][0] = _mm512_add_epi32(acc[r][0], _mm512_madd_epi16(x, w0));
        acc[r][1] = _mm512_add_epi32(acc[r][1], _mm512_madd_epi16(x, w1));
      }
      pw += kNR * 4;
    }
  }
  pin_registers(acc);  // kernels/pin_registers.h: no accumulator spills in the loop
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 m = _mm512_loadu_ps(reinterpret_cast<const float*>(pw));
  const __mmask16 mask = nc >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nc) - 1);
  // Requantize exactly as qu8.h (see the VNNI kernel); the result is already in [out_min,
  // out_max], so the saturating narrowing store never changes it. Or dequantize: (float)acc * M.
  const __m512 lo = _mm512_set1_ps(static_cast<float>(int32_t{p.out_min} - p.out_zero_point));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(int32_t{p.out_max} - p.out_zero_point));
  const __m512i z = _mm512_set1_epi32(p.out_zero_point);
  Q8_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m512i sum = _mm512_add_epi32(bias, _mm512_add_epi32(_mm512_permutex2var_epi32(acc[r][0], even, acc[r][1]),
                                                                _mm512_permutex2var_epi32(acc[r][0], odd, acc[r][1])));
    __m512 x = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), m);
    if constexpr (std::is_same_v<Out, float>) {
      _mm512_mask_storeu_ps(c + r * c_stride, mask, x);
    } else {
      x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
      const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(x), z);
      _mm512_mask_cvtusepi32_storeu_epi8(c + r * c_stride, mask, q);
    }
  }
}

template <class Out>
TileFn<Out> select(size_t mr, size_t /*nc: each tile takes any nc <= kNR*/) {
  switch (mr) {
    case 1: return &tile<1, Out>;
    case 2: return &tile<2, Out>;
    case 3: return &tile<3, Out>;
    case 4: return &tile<4, Out>;
    case 5: return &tile<5, Out>;
    case 6: return &tile<6, Out>;
    case 7: return &tile<7, Out>;
    default: return &tile<8, Out>;
  }
}

}  // namespace

void qu8_igemm_8x16c4__avx512(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                              uint8_t* c, size_t c_stride, const QU8Requant& p) {
  select<uint8_t>(mr, nc)(nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_8x16c4__avx512(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                             uint8_t* c, size_t c_stride, const QU8Requant& p) {
  gemm_rows<kMR>(select<uint8_t>, mr, nc, kc, a, a_stride, w, c, c_stride, p);
}

void qu8_gemm_dequantize_8x16c4__avx512(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                        const void* w, float* c, size_t c_stride) {
  gemm_rows<kMR>(select<float>, mr, nc, kc, a, a_stride, w, c, c_stride, QU8Requant{});
}

}  // namespace q8::kern
#endif
