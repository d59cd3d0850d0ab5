// The int8 work at the edges of a CNN, around the big convolutions: the model input quantized
// straight into NHWC, and the first convolution (few input channels) as an indirect GEMM over
// kernel rows. ISA-independent drivers around the tables' kernels.
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

size_t round_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

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

namespace {

// Output columns [0, left) and [right_start, OW) have kernel rows that overlap the left or right
// padding: ox is inside iff ox * SW >= PL and ox * SW - PL + (KW - 1) * DW < IW.
struct RowEdges {
  size_t left = 0, right_start = 0, per_row = 0, slot = 0;
};
RowEdges row_edges(const ConvGeometry& g) {
  RowEdges e;
  const size_t span_x = (g.KW - 1) * g.DW;
  e.left = std::min(g.OW, (g.PL + g.SW - 1) / g.SW);
  const size_t limit = g.IW + g.PL;  // ox * SW + span_x < limit
  e.right_start = limit <= span_x ? e.left : std::min(g.OW, std::max(e.left, (limit - span_x + g.SW - 1) / g.SW));
  e.per_row = e.left + (g.OW - e.right_start);
  // A slot holds KW * C bytes and the kQu8MaxKr - 1 bytes the igemm may read past them.
  e.slot = round_up(g.KW * g.C, kQu8MaxKr) + kQu8MaxKr;
  return e;
}

}  // namespace

ConvGeometry qu8_conv_rows_geometry(const ConvGeometry& g) {
  ConvGeometry r = g;
  r.C = g.KW * g.C;
  r.KW = 1;
  r.DW = 1;
  return r;
}

size_t qu8_conv_rows_edge_bytes(const ConvGeometry& g) {
  const RowEdges e = row_edges(g);
  return g.N * g.OH * e.per_row * g.KH * e.slot;
}

void qu8_conv_rows_indirection_init(const ConvGeometry& g, const uint8_t* input, const uint8_t* zero,
                                    const uint8_t* edges, const uint8_t** indirection) {
  const RowEdges e = row_edges(g);
  const size_t C = g.C;
  for (size_t n = 0; n < g.N; ++n)
    for (size_t oy = 0; oy < g.OH; ++oy)
      for (size_t ox = 0; ox < g.OW; ++ox) {
        const uint8_t** row = indirection + ((n * g.OH + oy) * g.OW + ox) * g.KH;
        const bool inside = ox >= e.left && ox < e.right_start;
        const size_t ei = ox < e.left ? ox : e.left + (ox - e.right_start);
        const size_t ix0 = ox * g.SW - g.PL;
        for (size_t ky = 0; ky < g.KH; ++ky) {
          const size_t iy = oy * g.SH + ky * g.DH - g.PT;  // wraps above the input: one test
          if (iy >= g.IH)
            row[ky] = zero;
          else if (inside)
            row[ky] = input + ((n * g.IH + iy) * g.IW + ix0) * C;
          else
            row[ky] = edges + (((n * g.OH + oy) * e.per_row + ei) * g.KH + ky) * e.slot;
        }
      }
}

void qu8_conv_rows_gather_edges(const ConvGeometry& g, const uint8_t* input, uint8_t a_zero_point, uint8_t* edges,
                                size_t p0, size_t p1) {
  const RowEdges e = row_edges(g);
  const size_t C = g.C, OW = g.OW;
  for (size_t p = p0; p < p1; ++p) {
    const size_t ox = p % OW;
    if (ox >= e.left && ox < e.right_start) {  // an inside pixel: jump to the row's right edge
      p += e.right_start - ox - 1;
      continue;
    }
    const size_t n = p / (g.OH * OW), oy = p / OW % g.OH;
    const size_t ei = ox < e.left ? ox : e.left + (ox - e.right_start);
    const size_t ix0 = ox * g.SW - g.PL;
    for (size_t ky = 0; ky < g.KH; ++ky) {
      const size_t iy = oy * g.SH + ky * g.DH - g.PT;
      if (iy >= g.IH) continue;  // the indirection points at `zero`
      uint8_t* dst = edges + (((n * g.OH + oy) * e.per_row + ei) * g.KH + ky) * e.slot;
      const uint8_t* src = input + (n * g.IH + iy) * g.IW * C;
      for (size_t kx = 0; kx < g.KW; ++kx) {
        const size_t ix = ix0 + kx * g.DW;
        if (ix < g.IW)
          std::memcpy(dst + kx * C, src + ix * C, C);
        else
          std::memset(dst + kx * C, a_zero_point, C);
      }
    }
  }
}

}  // namespace q8::kern
