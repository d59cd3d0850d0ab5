#include "kernels/upsample.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace q8::kern {

float resize_source_coord(ResizeCoord mode, const ResizeAxis& a, size_t o) {
  const float x = static_cast<float>(o);
  switch (mode) {
    case ResizeCoord::HalfPixel: return (x + 0.5f) / a.scale - 0.5f;
    case ResizeCoord::PytorchHalfPixel: return a.out_len > 1 ? (x + 0.5f) / a.scale - 0.5f : 0.f;
    case ResizeCoord::AlignCorners:
      return a.resized == 1.f ? 0.f : x * static_cast<float>(a.in_len - 1) / (a.resized - 1.f);
    case ResizeCoord::Asymmetric: return x / a.scale;
  }
  return 0.f;
}

void resize_nearest_index(ResizeCoord mode, ResizeRound round, const ResizeAxis& a, int32_t* idx) {
  const size_t in_len = a.in_len;
  for (size_t o = 0; o < a.out_len; ++o) {
    const float c = resize_source_coord(mode, a, o);
    float r = 0.f;
    switch (round) {
      case ResizeRound::RoundPreferFloor: r = c == std::floor(c) + 0.5f ? std::floor(c) : std::round(c); break;
      case ResizeRound::RoundPreferCeil: r = std::round(c); break;  // halves round away from zero
      case ResizeRound::Floor: r = std::floor(c); break;
      case ResizeRound::Ceil: r = std::ceil(c); break;
    }
    const float hi = static_cast<float>(in_len - 1);
    idx[o] = static_cast<int32_t>(std::min(std::max(r, 0.f), hi));
  }
}

void resize_linear_taps(ResizeCoord mode, const ResizeAxis& a, const LinearTaps& t) {
  const size_t in_len = a.in_len;
  const float last = static_cast<float>(in_len - 1);
  for (size_t o = 0; o < a.out_len; ++o) {
    const float c = std::min(std::max(resize_source_coord(mode, a, o), 0.f), last);
    const int32_t lo = std::min(static_cast<int32_t>(c), static_cast<int32_t>(in_len - 1));
    const int32_t hi = std::min(lo + 1, static_cast<int32_t>(in_len - 1));
    t.lo[o] = lo;
    t.hi[o] = hi;
    if (lo == hi) {
      t.w_lo[o] = t.w_hi[o] = 0.5f;
    } else {
      t.w_lo[o] = std::fabs(c - static_cast<float>(hi));
      t.w_hi[o] = std::fabs(c - static_cast<float>(lo));
    }
  }
}

void resize_nearest_nhwc(const ResizeGeometry& g, size_t pixel_bytes, const int32_t* iy, const int32_t* ix,
                         const uint8_t* in, uint8_t* out, size_t p0, size_t p1) {
  for (size_t p = p0; p < p1; ++p) {
    const size_t ow = p % g.OW, oh = (p / g.OW) % g.OH, n = p / (g.OW * g.OH);
    const size_t src = (n * g.IH + static_cast<size_t>(iy[oh])) * g.IW + static_cast<size_t>(ix[ow]);
    std::memcpy(out + p * pixel_bytes, in + src * pixel_bytes, pixel_bytes);
  }
}

void f32_resize_bilinear_nhwc(const ResizeGeometry& g, size_t C, const LinearTaps& ty, const LinearTaps& tx,
                              const float* in, float* out, size_t p0, size_t p1) {
  for (size_t p = p0; p < p1; ++p) {
    const size_t ow = p % g.OW, oh = (p / g.OW) % g.OH, n = p / (g.OW * g.OH);
    const float* img = in + n * g.IH * g.IW * C;
    const float* r_lo = img + static_cast<size_t>(ty.lo[oh]) * g.IW * C;
    const float* r_hi = img + static_cast<size_t>(ty.hi[oh]) * g.IW * C;
    const size_t c_lo = static_cast<size_t>(tx.lo[ow]) * C, c_hi = static_cast<size_t>(tx.hi[ow]) * C;
    const float w00 = ty.w_lo[oh] * tx.w_lo[ow], w01 = ty.w_lo[oh] * tx.w_hi[ow];
    const float w10 = ty.w_hi[oh] * tx.w_lo[ow], w11 = ty.w_hi[oh] * tx.w_hi[ow];
    float* y = out + p * C;
    for (size_t c = 0; c < C; ++c)
      y[c] = w00 * r_lo[c_lo + c] + w01 * r_lo[c_hi + c] + w10 * r_hi[c_lo + c] + w11 * r_hi[c_hi + c];
  }
}

void f32_conv_transpose_gather_pack(const ConvTransposeGeometry& g, const float* w, float* packed) {
  const size_t Cg = g.Cg(), Kg = g.Kg();
  for (size_t gr = 0; gr < g.groups; ++gr)
    for (size_t kh = 0; kh < g.KH; ++kh)
      for (size_t kw = 0; kw < g.KW; ++kw)
        for (size_t c = 0; c < Cg; ++c)
          for (size_t k = 0; k < Kg; ++k)
            packed[(((gr * g.KH + kh) * g.KW + kw) * Cg + c) * Kg + k] =
                w[(((gr * Cg + c) * Kg + k) * g.KH + kh) * g.KW + kw];
}

namespace {

// The input index a tap reaches output index o from, or -1: o + pad - tap*dilation must be a
// non-negative multiple of the stride below stride * in_len.
inline ptrdiff_t transposed_source(size_t o, size_t pad, size_t tap, size_t dilation, size_t stride, size_t in_len) {
  const ptrdiff_t t = static_cast<ptrdiff_t>(o + pad) - static_cast<ptrdiff_t>(tap * dilation);
  if (t < 0 || t % static_cast<ptrdiff_t>(stride) != 0) return -1;
  const ptrdiff_t i = t / static_cast<ptrdiff_t>(stride);
  return i < static_cast<ptrdiff_t>(in_len) ? i : -1;
}

}  // namespace

void f32_conv_transpose_gather_nhwc(const ConvTransposeGeometry& g, const float* x, const float* packed,
                                    const float* bias, float* y, size_t p0, size_t p1) {
  const size_t Cg = g.Cg(), Kg = g.Kg();
  // Output channels in blocks of kBlock held in a local array (registers), so each input value is
  // loaded once per block; every output still sums bias, then taps in (kh, kw) order, then channels.
  constexpr size_t kBlock = 16;
  for (size_t p = p0; p < p1; ++p) {
    const size_t ow = p % g.OW, oh = (p / g.OW) % g.OH, n = p / (g.OW * g.OH);
    // The input pixels of this output pixel's taps, or none.
    ptrdiff_t ih[64], iw[64];
    const size_t th = std::min<size_t>(g.KH, 64), tw = std::min<size_t>(g.KW, 64);
    for (size_t kh = 0; kh < th; ++kh) ih[kh] = transposed_source(oh, g.PT, kh, g.DH, g.SH, g.IH);
    for (size_t kw = 0; kw < tw; ++kw) iw[kw] = transposed_source(ow, g.PL, kw, g.DW, g.SW, g.IW);
    float* yp = y + p * g.K;
    for (size_t gr = 0; gr < g.groups; ++gr) {
      for (size_t k0 = 0; k0 < Kg; k0 += kBlock) {
        const size_t kb = std::min(kBlock, Kg - k0);
        float acc[kBlock];
        for (size_t j = 0; j < kBlock; ++j) acc[j] = j < kb && bias ? bias[gr * Kg + k0 + j] : 0.f;
        for (size_t kh = 0; kh < g.KH; ++kh) {
          const ptrdiff_t sh = kh < th ? ih[kh] : transposed_source(oh, g.PT, kh, g.DH, g.SH, g.IH);
          if (sh < 0) continue;
          for (size_t kw = 0; kw < g.KW; ++kw) {
            const ptrdiff_t sw = kw < tw ? iw[kw] : transposed_source(ow, g.PL, kw, g.DW, g.SW, g.IW);
            if (sw < 0) continue;
            const float* xp =
                x + ((n * g.IH + static_cast<size_t>(sh)) * g.IW + static_cast<size_t>(sw)) * g.C + gr * Cg;
            const float* wt = packed + ((gr * g.KH + kh) * g.KW + kw) * Cg * Kg + k0;
            if (kb == kBlock) {
              for (size_t c = 0; c < Cg; ++c) {
                const float xv = xp[c];
                const float* wr = wt + c * Kg;
                for (size_t j = 0; j < kBlock; ++j) acc[j] += xv * wr[j];
              }
            } else {
              for (size_t c = 0; c < Cg; ++c) {
                const float xv = xp[c];
                const float* wr = wt + c * Kg;
                for (size_t j = 0; j < kb; ++j) acc[j] += xv * wr[j];
              }
            }
          }
        }
        for (size_t j = 0; j < kb; ++j) yp[gr * Kg + k0 + j] = acc[j];
      }
    }
  }
}

}  // namespace q8::kern
