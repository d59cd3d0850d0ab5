// The model input quantized straight into NHWC: ISA-independent driver around the table's
// quantize kernel. (The first convolution's kernel rows are conv_rows.h's.)
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels/qu8.h"

namespace q8::kern {
namespace {

// Pixels quantized per pass: the C planes' pieces (C x this many bytes) stay in L1.
constexpr size_t kQuantizeBlockBytes = 8 * 1024;

// dst[p * C + c] = planes[c * stride + p] for p < n: the interleave of C planes of bytes.
template <size_t C>
void interleave_fixed(const uint8_t* planes, size_t stride, size_t n, uint8_t* dst) {
  for (size_t p = 0; p < n; ++p)
    for (size_t c = 0; c < C; ++c) dst[p * C + c] = planes[c * stride + p];
}

// Three planes (the RGB input) 16 pixels at a time with SSE2, which every x86-64 CPU has: bytes
// unpacked to one 32-bit lane [a b c 0] per pixel, each 64-bit half of two pixels squeezed to
// their 6 bytes and stored 8 bytes wide, 6 bytes apart (each store's 2 extra bytes are rewritten
// by the next). The last store of a group writes 2 bytes past it, so at least one pixel is left
// for the byte-wise loop. Returns the pixels done.
size_t interleave3_simd(const uint8_t* planes, size_t stride, size_t n, uint8_t* dst) {
#if defined(__SSE2__)
  size_t p = 0;
  const __m128i zero = _mm_setzero_si128();
  const __m128i low3 = _mm_set1_epi64x(0x0000000000FFFFFFll), high3 = _mm_set1_epi64x(0x0000FFFFFF000000ll);
  for (; p + 16 < n; p += 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes + p));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes + stride + p));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes + 2 * stride + p));
    const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
    const __m128i c_lo = _mm_unpacklo_epi8(c, zero), c_hi = _mm_unpackhi_epi8(c, zero);
    const __m128i w[4] = {_mm_unpacklo_epi16(ab_lo, c_lo), _mm_unpackhi_epi16(ab_lo, c_lo),
                          _mm_unpacklo_epi16(ab_hi, c_hi), _mm_unpackhi_epi16(ab_hi, c_hi)};
    uint8_t* d = dst + 3 * p;
    for (int i = 0; i < 4; ++i, d += 12) {
      const __m128i six = _mm_or_si128(_mm_and_si128(w[i], low3), _mm_and_si128(_mm_srli_epi64(w[i], 8), high3));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d), six);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 6), _mm_unpackhi_epi64(six, six));
    }
  }
  return p;
#else
  (void)planes, (void)stride, (void)n, (void)dst;
  return 0;
#endif
}

void interleave(size_t C, const uint8_t* planes, size_t stride, size_t n, uint8_t* dst) {
  switch (C) {
    case 1: std::memcpy(dst, planes, n); return;
    case 2: interleave_fixed<2>(planes, stride, n, dst); return;
    case 3: {
      const size_t done = interleave3_simd(planes, stride, n, dst);
      interleave_fixed<3>(planes + done, stride, n - done, dst + 3 * done);
      return;
    }
    case 4: interleave_fixed<4>(planes, stride, n, dst); return;
    default:
      for (size_t p = 0; p < n; ++p)
        for (size_t c = 0; c < C; ++c) dst[p * C + c] = planes[c * stride + p];
  }
}

}  // namespace

void qu8_quantize_nchw_to_nhwc(const QU8Kernels& k, size_t C, size_t HW, const float* in, uint8_t* out, float scale,
                               int32_t zero_point, size_t p0, size_t p1) {
  alignas(64) uint8_t planes[kQuantizeBlockBytes];
  const size_t block = std::max<size_t>(1, kQuantizeBlockBytes / std::max<size_t>(C, 1));
  if (block * C > kQuantizeBlockBytes) {  // C beyond the buffer: pixel by pixel, channel by channel
    for (size_t p = p0; p < p1; ++p) {
      const float* src = in + (p / HW) * C * HW + p % HW;
      for (size_t c = 0; c < C; ++c) k.quantize(1, src + c * HW, out + p * C + c, scale, zero_point);
    }
    return;
  }
  for (size_t p = p0; p < p1;) {
    // A block never crosses an image: within one, the pixels of a plane are contiguous.
    const size_t n = std::min({block, p1 - p, HW - p % HW});
    const float* src = in + (p / HW) * C * HW + p % HW;
    for (size_t c = 0; c < C; ++c) k.quantize(n, src + c * HW, planes + c * block, scale, zero_point);
    interleave(C, planes, block, n, out + p * C);
    p += n;
  }
}

}  // namespace q8::kern
