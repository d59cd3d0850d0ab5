// int8 depthwise conv, pools, add, quantize and dequantize, written once over a small
// traits struct (Avx2, Avx512 in kernels/x86/, Neon in kernels/arm/) and instantiated by each
// ISA file with its own compiler flags.
//
// Bit-exactness with the scalar reference (kernels/reference/qu8_ops_scalar.cpp):
//  - integer sums are exact in int32 (u8 and s8 widened to int32, vpmulld/vpaddd), so their order
//    does not matter;
//  - the float steps are qu8.h's sequence, one intrinsic per IEEE operation: cvtdq2ps (exact),
//    mulps, maxps/minps (MAXPS(a, b) = a > b ? a : b, the reference's ternary, so a NaN in
//    quantize becomes the lower bound), cvtps2dq under the default MXCSR rounding
//    (round-half-even, as nearbyintf). GCC implements _mm*_mul_ps/_mm*_add_ps as plain vector
//    operators, which it may contract into an FMA in these -mfma files: the one place a product
//    meets an addition (Add's x + y) hides the products behind an empty asm (`opaque`).
//
// Everything lives in an unnamed namespace so each ISA file gets its own private copy (see
// kernels/f32_simd.h for why), and calls no std:: templates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/qu8.h"

namespace q8::kern {
namespace {  // NOLINT: per-translation-unit instantiations
namespace qu8_simd {

#if defined(__GNUC__)
#define Q8_QU8_UNROLL _Pragma("GCC unroll 32")
#else
#define Q8_QU8_UNROLL
#endif

// Pointers to the taps of one window, at most kMaxTaps at a time (longer kernels are walked in
// consecutive lists).
constexpr size_t kMaxTaps = 64;

// Walks output pixels [p0, p1) as (n, oy, ox) without a division per pixel.
struct PixelCursor {
  size_t n, oy, ox, OH, OW;
  PixelCursor(size_t p0, size_t oh, size_t ow)
      : n(p0 / (oh * ow)), oy(p0 % (oh * ow) / ow), ox(p0 % ow), OH(oh), OW(ow) {}
  void next() {
    if (++ox == OW) {
      ox = 0;
      if (++oy == OH) oy = 0, ++n;
    }
  }
};

// Rows of the taps [t0, t1) of output (oy, ox), in row-major tap order. With `zero` non-null a tap
// outside the input gets `zero` (depthwise: every tap contributes); with null it is skipped
// (pools). Returns how many rows were written.
template <class Geometry>
inline size_t collect_rows(const Geometry& g, const uint8_t* in_n, const uint8_t* zero, size_t oy,
                           size_t ox, size_t t0, size_t t1, const uint8_t** rows) {
  size_t count = 0;
  for (size_t ky = t0 / g.KW, t = ky * g.KW; t < t1; ++ky) {
    const size_t iy = oy * g.SH + ky * g.DH - g.PT;  // wraps to a huge value above the input
    for (size_t kx = 0; kx < g.KW; ++kx, ++t) {
      if (t < t0 || t >= t1) continue;
      const size_t ix = ox * g.SW + kx * g.DW - g.PL;
      if (iy < g.IH && ix < g.IW)
        rows[count++] = in_n + (iy * g.IW + ix) * g.C;
      else if (zero)
        rows[count++] = zero;
    }
  }
  return count;
}

// Whether the whole window of (oy, ox) lies inside the input.
template <class Geometry>
inline bool window_inside(const Geometry& g, size_t oy, size_t ox) {
  const size_t y0 = oy * g.SH, x0 = ox * g.SW;
  return y0 >= g.PT && x0 >= g.PL && y0 - g.PT + (g.KH - 1) * g.DH < g.IH &&
         x0 - g.PL + (g.KW - 1) * g.DW < g.IW;
}

// Requantization constants (qu8.h): clamp bounds relative to z_out, and z_out.
template <class T>
struct Requant {
  typename T::F lo, hi;
  typename T::I z;
  explicit Requant(const QU8Requant& p)
      : lo(T::set1f(static_cast<float>(static_cast<int32_t>(p.out_min) - p.out_zero_point))),
        hi(T::set1f(static_cast<float>(static_cast<int32_t>(p.out_max) - p.out_zero_point))),
        z(T::set1(p.out_zero_point)) {}
  // x = (float)acc * m; clamp; round half to even; + z_out. Lanes end in [out_min, out_max].
  typename T::I operator()(typename T::I acc, typename T::F m) const {
    typename T::F x = T::mulf(T::cvtf(acc), m);
    x = T::minf(T::maxf(x, lo), hi);
    return T::add(T::round(x), z);
  }
  // After a sum s of products: the same clamp/round.
  typename T::I of_float(typename T::F x) const {
    x = T::minf(T::maxf(x, lo), hi);
    return T::add(T::round(x), z);
  }
};

// --- Depthwise ------------------------------------------------------------------------------
// Packed [C int32 bias'][taps][C int8 w][C float M] (the M array is not necessarily aligned).
// acc = bias'[c] + sum over all taps of a_t * w_t, bias' having -z_a * sum_t w_t folded in, so a
// tap outside the input reads z_a from `zero`.
// 3x3 and 5x5 (MobileNet's) run in tiles of pixels with each channel block's weights widened to
// int32 once per tile (dwconv_tiled); other kernels run pixel by pixel (dwconv_generic).

// acc[v] += sum over rows[0..n) of a * w for channels [c, c + NV*W); w points at tap 0 of the list.
template <class T, size_t NV, size_t KT>
inline void dw_accumulate(typename T::I* acc, const uint8_t* const* rows, size_t n,
                          const int8_t* w, size_t C, size_t c) {
  constexpr size_t W = T::W;
  const size_t taps = KT ? KT : n;
  Q8_QU8_UNROLL
  for (size_t t = 0; t < taps; ++t) {
    const uint8_t* ip = rows[t] + c;
    const int8_t* wp = w + t * C + c;
    Q8_QU8_UNROLL
    for (size_t v = 0; v < NV; ++v)
      acc[v] = T::add(acc[v], T::mul(T::load_u8(ip + v * W), T::load_s8(wp + v * W)));
  }
}

// The last nc <= W channels starting at c.
template <class T>
inline void dw_accumulate_partial(typename T::I& acc, const uint8_t* const* rows, size_t n,
                                  const int8_t* w, size_t C, size_t c, size_t nc) {
  for (size_t t = 0; t < n; ++t)
    acc = T::add(acc, T::mul(T::load_u8_partial(rows[t] + c, nc),
                             T::load_s8_partial(w + t * C + c, nc)));
}

// One output pixel whose tap rows (all taps) are in `rows`.
template <class T, size_t KT>
inline void dw_pixel(const uint8_t* const* rows, size_t taps, const uint8_t* bias, const int8_t* w,
                     const uint8_t* m, size_t C, uint8_t* o, const Requant<T>& rq) {
  using I = typename T::I;
  constexpr size_t W = T::W;
  size_t c = 0;
  for (; c + 4 * W <= C; c += 4 * W) {
    I acc[4];
    Q8_QU8_UNROLL
    for (size_t v = 0; v < 4; ++v) acc[v] = T::load_i32(bias + (c + v * W) * 4);
    dw_accumulate<T, 4, KT>(acc, rows, taps, w, C, c);
    Q8_QU8_UNROLL
    for (size_t v = 0; v < 4; ++v) T::store_u8(rq(acc[v], T::load_f32(m + (c + v * W) * 4)), o + c + v * W);
  }
  for (; c + W <= C; c += W) {
    I acc[1] = {T::load_i32(bias + c * 4)};
    dw_accumulate<T, 1, KT>(acc, rows, taps, w, C, c);
    T::store_u8(rq(acc[0], T::load_f32(m + c * 4)), o + c);
  }
  if (c < C) {
    const size_t nc = C - c;
    I acc = T::load_i32_partial(bias + c * 4, nc);
    dw_accumulate_partial<T>(acc, rows, taps, w, C, c, nc);
    T::store_u8_partial(rq(acc, T::load_f32_partial(m + c * 4, nc)), o + c, nc);
  }
}

// A pixel of a kernel with more than kMaxTaps taps: per block of channels, the taps are walked in
// lists of kMaxTaps, the int32 sums staying in registers.
template <class T>
inline void dw_pixel_long(const ConvGeometry& g, const uint8_t* in_n, const uint8_t* zero,
                          size_t oy, size_t ox, const uint8_t* bias, const int8_t* w,
                          const uint8_t* m, uint8_t* o, const Requant<T>& rq) {
  using I = typename T::I;
  constexpr size_t W = T::W;
  const size_t C = g.C, taps = g.taps();
  const uint8_t* rows[kMaxTaps];
  for (size_t c = 0; c < C; c += W) {
    const size_t nc = C - c < W ? C - c : W;
    I acc = T::load_i32_partial(bias + c * 4, nc);
    for (size_t t0 = 0; t0 < taps; t0 += kMaxTaps) {
      const size_t t1 = taps - t0 > kMaxTaps ? t0 + kMaxTaps : taps;
      const size_t n = collect_rows(g, in_n, zero, oy, ox, t0, t1, rows);
      dw_accumulate_partial<T>(acc, rows, n, w + t0 * C, C, c, nc);
    }
    T::store_u8_partial(rq(acc, T::load_f32_partial(m + c * 4, nc)), o + c, nc);
  }
}

// Rows of the taps of output pixel `px` (all taps; `zero` for those outside the input).
template <class T>
inline void dw_rows(const ConvGeometry& g, const uint8_t* in, const uint8_t* zero,
                    const PixelCursor& px, const size_t* offset, const uint8_t** rows) {
  const size_t taps = g.taps();
  const uint8_t* in_n = in + px.n * g.IH * g.IW * g.C;
  if (window_inside(g, px.oy, px.ox)) {
    const uint8_t* base = in_n + ((px.oy * g.SH - g.PT) * g.IW + (px.ox * g.SW - g.PL)) * g.C;
    for (size_t t = 0; t < taps; ++t) rows[t] = base + offset[t];
  } else {
    collect_rows(g, in_n, zero, px.oy, px.ox, 0, taps, rows);
  }
}

// Channels [c, c + NV*W) of the `np` pixels of a tile (rows[i*KT .. i*KT+KT) for pixel i), with
// weights already widened to int32 in wbuf[KT][NV*W]: per 8 or 16 MACs one widening load of the
// input, one vpmulld with the weights from memory and one add.
template <class T, size_t NV, size_t KT>
inline void dw_tile_block(const uint8_t* const* rows, size_t np, const int32_t* wbuf,
                          const uint8_t* bias, const uint8_t* m, size_t c, size_t C, uint8_t* o,
                          const Requant<T>& rq) {
  using I = typename T::I;
  constexpr size_t W = T::W;
  for (size_t i = 0; i < np; ++i) {
    const uint8_t* const* r = rows + i * KT;
    I acc[NV];
    Q8_QU8_UNROLL
    for (size_t v = 0; v < NV; ++v) acc[v] = T::load_i32(bias + (c + v * W) * 4);
    Q8_QU8_UNROLL
    for (size_t t = 0; t < KT; ++t) {
      const uint8_t* ip = r[t] + c;
      Q8_QU8_UNROLL
      for (size_t v = 0; v < NV; ++v)
        acc[v] = T::add(acc[v], T::mul(T::load_u8(ip + v * W), T::load_i32(wbuf + (t * NV + v) * W)));
    }
    uint8_t* oi = o + i * C + c;
    Q8_QU8_UNROLL
    for (size_t v = 0; v < NV; ++v) T::store_u8(rq(acc[v], T::load_f32(m + (c + v * W) * 4)), oi + v * W);
  }
}

// Widens the weights of channels [c, c + NV*W) for the KT taps into wbuf[KT][NV*W].
template <class T, size_t NV, size_t KT>
inline void dw_widen(const int8_t* w, size_t C, size_t c, int32_t* wbuf) {
  constexpr size_t W = T::W;
  Q8_QU8_UNROLL
  for (size_t t = 0; t < KT; ++t)
    Q8_QU8_UNROLL
    for (size_t v = 0; v < NV; ++v) T::store_i32(T::load_s8(w + t * C + c + v * W), wbuf + (t * NV + v) * W);
}

// Output pixels in tiles of kTile; per tile, channel blocks of 4, 2, 1 vectors (weights widened
// once per tile and block), then the last partial vector pixel by pixel.
constexpr size_t kTile = 32;

template <class T, size_t KT>
void dwconv_tiled(const ConvGeometry& g, const uint8_t* in, const void* packed,
                  const uint8_t* zero, uint8_t* out, size_t p0, size_t p1, const QU8Requant& p) {
  constexpr size_t W = T::W;
  const size_t C = g.C;
  const uint8_t* bias = static_cast<const uint8_t*>(packed);
  const int8_t* w = reinterpret_cast<const int8_t*>(bias + C * 4);
  const uint8_t* m = bias + C * 4 + KT * C;
  const Requant<T> rq(p);
  size_t offset[KT];
  for (size_t ky = 0; ky < g.KH; ++ky)
    for (size_t kx = 0; kx < g.KW; ++kx) offset[ky * g.KW + kx] = (ky * g.DH * g.IW + kx * g.DW) * C;
  const uint8_t* rows[kTile * KT];
  alignas(64) int32_t wbuf[KT * 4 * W];
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t p = p0; p < p1; p += kTile) {
    const size_t np = p1 - p < kTile ? p1 - p : kTile;
    for (size_t i = 0; i < np; ++i, px.next()) dw_rows<T>(g, in, zero, px, offset, rows + i * KT);
    uint8_t* o = out + p * C;
    size_t c = 0;
    for (; c + 4 * W <= C; c += 4 * W) {
      dw_widen<T, 4, KT>(w, C, c, wbuf);
      dw_tile_block<T, 4, KT>(rows, np, wbuf, bias, m, c, C, o, rq);
    }
    for (; c + 2 * W <= C; c += 2 * W) {
      dw_widen<T, 2, KT>(w, C, c, wbuf);
      dw_tile_block<T, 2, KT>(rows, np, wbuf, bias, m, c, C, o, rq);
    }
    for (; c + W <= C; c += W) {
      dw_widen<T, 1, KT>(w, C, c, wbuf);
      dw_tile_block<T, 1, KT>(rows, np, wbuf, bias, m, c, C, o, rq);
    }
    if (c < C) {
      const size_t nc = C - c;
      const typename T::I b = T::load_i32_partial(bias + c * 4, nc);
      const typename T::F mv = T::load_f32_partial(m + c * 4, nc);
      for (size_t i = 0; i < np; ++i) {
        typename T::I acc = b;
        dw_accumulate_partial<T>(acc, rows + i * KT, KT, w, C, c, nc);
        T::store_u8_partial(rq(acc, mv), o + i * C + c, nc);
      }
    }
  }
}

// Any other kernel, pixel by pixel.
template <class T>
void dwconv_generic(const ConvGeometry& g, const uint8_t* in, const void* packed,
                    const uint8_t* zero, uint8_t* out, size_t p0, size_t p1, const QU8Requant& p) {
  const size_t C = g.C, taps = g.taps();
  const uint8_t* bias = static_cast<const uint8_t*>(packed);
  const int8_t* w = reinterpret_cast<const int8_t*>(bias + C * 4);
  const uint8_t* m = bias + C * 4 + taps * C;
  const Requant<T> rq(p);
  const uint8_t* rows[kMaxTaps];
  // Offsets of the taps from the window's first pixel, for windows wholly inside the input.
  size_t offset[kMaxTaps];
  if (taps <= kMaxTaps)
    for (size_t ky = 0; ky < g.KH; ++ky)
      for (size_t kx = 0; kx < g.KW; ++kx) offset[ky * g.KW + kx] = (ky * g.DH * g.IW + kx * g.DW) * C;
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t pix = p0; pix < p1; ++pix, px.next()) {
    uint8_t* o = out + pix * C;
    if (taps > kMaxTaps) {
      dw_pixel_long<T>(g, in + px.n * g.IH * g.IW * C, zero, px.oy, px.ox, bias, w, m, o, rq);
      continue;
    }
    dw_rows<T>(g, in, zero, px, offset, rows);
    dw_pixel<T, 0>(rows, taps, bias, w, m, C, o, rq);
  }
}

template <class T>
void dwconv(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero,
            uint8_t* out, size_t p0, size_t p1, const QU8Requant& p) {
  switch (g.taps()) {
    case 9: return dwconv_tiled<T, 9>(g, in, packed, zero, out, p0, p1, p);
    case 25: return dwconv_tiled<T, 25>(g, in, packed, zero, out, p0, p1, p);
    default: return dwconv_generic<T>(g, in, packed, zero, out, p0, p1, p);
  }
}

// --- Max pool (bytes, vectorised over channels) -----------------------------------------------
// Positions outside the input are ignored; a window with none inside gives 0. Kernels longer
// than kMaxTaps fold list after list into the output row (max is exact and idempotent).
template <class T>
void maxpool(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1) {
  using B = typename T::B;
  constexpr size_t WB = T::WB;
  const size_t C = g.C, taps = g.KH * g.KW;
  // The common 2x2 stride-2 window with every tap inside the input: four rows, no bookkeeping.
  if (g.KH == 2 && g.KW == 2 && g.SH == 2 && g.SW == 2 && g.DH == 1 && g.DW == 1 && g.PT == 0 && g.PL == 0 &&
      2 * g.OH <= g.IH && 2 * g.OW <= g.IW) {
    const size_t row = g.IW * C;
    PixelCursor px(p0, g.OH, g.OW);
    for (size_t pix = p0; pix < p1; ++pix, px.next()) {
      const uint8_t* r0 = in + ((px.n * g.IH + 2 * px.oy) * g.IW + 2 * px.ox) * C;
      const uint8_t* r2 = r0 + row;
      uint8_t* o = out + pix * C;
      size_t c = 0;
      for (; c + WB <= C; c += WB)
        T::store_b(T::max_b(T::max_b(T::load_b(r0 + c), T::load_b(r0 + C + c)),
                            T::max_b(T::load_b(r2 + c), T::load_b(r2 + C + c))),
                   o + c);
      if (c < C) {
        const size_t nc = C - c;
        T::store_b_partial(T::max_b(T::max_b(T::load_b_partial(r0 + c, nc), T::load_b_partial(r0 + C + c, nc)),
                                    T::max_b(T::load_b_partial(r2 + c, nc), T::load_b_partial(r2 + C + c, nc))),
                           o + c, nc);
      }
    }
    return;
  }
  const uint8_t* rows[kMaxTaps];
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t pix = p0; pix < p1; ++pix, px.next()) {
    const uint8_t* in_n = in + px.n * g.IH * g.IW * C;
    uint8_t* o = out + pix * C;
    for (size_t t0 = 0; t0 < taps; t0 += kMaxTaps) {
      const size_t t1 = taps - t0 > kMaxTaps ? t0 + kMaxTaps : taps;
      const size_t n = collect_rows(g, in_n, nullptr, px.oy, px.ox, t0, t1, rows);
      const bool first = t0 == 0;
      size_t c = 0;
      for (; c + 2 * WB <= C; c += 2 * WB) {
        B m0 = first ? T::zero_b() : T::load_b(o + c), m1 = first ? T::zero_b() : T::load_b(o + c + WB);
        for (size_t j = 0; j < n; ++j) {
          m0 = T::max_b(m0, T::load_b(rows[j] + c));
          m1 = T::max_b(m1, T::load_b(rows[j] + c + WB));
        }
        T::store_b(m0, o + c);
        T::store_b(m1, o + c + WB);
      }
      for (; c < C; c += WB) {
        const size_t nc = C - c < WB ? C - c : WB;
        B m0 = first ? T::zero_b() : T::load_b_partial(o + c, nc);
        for (size_t j = 0; j < n; ++j) m0 = T::max_b(m0, T::load_b_partial(rows[j] + c, nc));
        T::store_b_partial(m0, o + c, nc);
      }
    }
  }
}

// --- Average pools ------------------------------------------------------------------------------
// acc = sum over the taps inside the input of (a - z_in) = (sum of a) - inside * z_in, exact in
// int32; x = (float)acc * (in_over_out / (float)count), count as in the reference (0 for an
// empty window gives scale 0, hence z_out).
template <class Geometry>
inline size_t avgpool_count(const Geometry& g, size_t oy, size_t ox) {
  size_t nh = 0, nw = 0;
  for (size_t ky = 0; ky < g.KH; ++ky) {
    const size_t y = oy * g.SH + ky * g.DH;  // position in the padded input
    nh += g.count_include_pad ? y < g.IH + g.PT + g.PB : (y >= g.PT && y - g.PT < g.IH);
  }
  for (size_t kx = 0; kx < g.KW; ++kx) {
    const size_t x = ox * g.SW + kx * g.DW;
    nw += g.count_include_pad ? x < g.IW + g.PL + g.PR : (x >= g.PL && x - g.PL < g.IW);
  }
  return nh * nw;
}

template <class T>
void avgpool(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1,
             const QU8PoolParams& p) {
  using I = typename T::I;
  constexpr size_t W = T::W;
  const size_t C = g.C, taps = g.KH * g.KW;
  const Requant<T> rq(p.out);
  const uint8_t* rows[kMaxTaps];
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t pix = p0; pix < p1; ++pix, px.next()) {
    const uint8_t* in_n = in + px.n * g.IH * g.IW * C;
    uint8_t* o = out + pix * C;
    const size_t count = avgpool_count(g, px.oy, px.ox);
    const typename T::F scale =
        T::set1f(count ? p.in_over_out / static_cast<float>(count) : 0.0f);
    if (taps <= kMaxTaps) {
      const size_t n = collect_rows(g, in_n, nullptr, px.oy, px.ox, 0, taps, rows);
      const I zsum = T::set1(static_cast<int32_t>(n) * p.in_zero_point);
      size_t c = 0;
      for (; c + 4 * W <= C; c += 4 * W) {
        I acc[4];
        Q8_QU8_UNROLL
        for (size_t v = 0; v < 4; ++v) acc[v] = T::sub(T::set1(0), zsum);
        for (size_t j = 0; j < n; ++j)
          Q8_QU8_UNROLL
          for (size_t v = 0; v < 4; ++v) acc[v] = T::add(acc[v], T::load_u8(rows[j] + c + v * W));
        Q8_QU8_UNROLL
        for (size_t v = 0; v < 4; ++v) T::store_u8(rq(acc[v], scale), o + c + v * W);
      }
      for (; c < C; c += W) {
        const size_t nc = C - c < W ? C - c : W;
        I acc = T::sub(T::set1(0), zsum);
        for (size_t j = 0; j < n; ++j) acc = T::add(acc, T::load_u8_partial(rows[j] + c, nc));
        T::store_u8_partial(rq(acc, scale), o + c, nc);
      }
    } else {
      for (size_t c = 0; c < C; c += W) {
        const size_t nc = C - c < W ? C - c : W;
        I acc = T::set1(0);
        for (size_t t0 = 0; t0 < taps; t0 += kMaxTaps) {
          const size_t t1 = taps - t0 > kMaxTaps ? t0 + kMaxTaps : taps;
          const size_t n = collect_rows(g, in_n, nullptr, px.oy, px.ox, t0, t1, rows);
          acc = T::sub(acc, T::set1(static_cast<int32_t>(n) * p.in_zero_point));
          for (size_t j = 0; j < n; ++j) acc = T::add(acc, T::load_u8_partial(rows[j] + c, nc));
        }
        T::store_u8_partial(rq(acc, scale), o + c, nc);
      }
    }
  }
}

// Sums over hw per channel; int32 holds HW * 255 for any realistic HW.
template <class T>
void global_avgpool(size_t HW, size_t C, const uint8_t* in, uint8_t* out, size_t n0, size_t n1,
                    const QU8PoolParams& p) {
  using I = typename T::I;
  constexpr size_t W = T::W;
  const Requant<T> rq(p.out);
  const typename T::F scale = T::set1f(HW ? p.in_over_out / static_cast<float>(HW) : 0.0f);
  const I init = T::set1(-static_cast<int32_t>(HW) * p.in_zero_point);
  for (size_t n = n0; n < n1; ++n) {
    const uint8_t* in_n = in + n * HW * C;
    uint8_t* o = out + n * C;
    size_t c = 0;
    for (; c + 4 * W <= C; c += 4 * W) {
      I acc[4] = {init, init, init, init};
      for (size_t i = 0; i < HW; ++i) {
        const uint8_t* r = in_n + i * C + c;
        Q8_QU8_UNROLL
        for (size_t v = 0; v < 4; ++v) acc[v] = T::add(acc[v], T::load_u8(r + v * W));
      }
      Q8_QU8_UNROLL
      for (size_t v = 0; v < 4; ++v) T::store_u8(rq(acc[v], scale), o + c + v * W);
    }
    for (; c < C; c += W) {
      const size_t nc = C - c < W ? C - c : W;
      I acc = init;
      for (size_t i = 0; i < HW; ++i) acc = T::add(acc, T::load_u8_partial(in_n + i * C + c, nc));
      T::store_u8_partial(rq(acc, scale), o + c, nc);
    }
  }
}

// --- Element-wise ---------------------------------------------------------------------------
// x = (float)(a - z_a) * Ma; y = (float)(b - z_b) * Mb; s = x + y; clamp; round; + z_out.
template <class T>
void add(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out, const QU8AddParams& p) {
  using I = typename T::I;
  using F = typename T::F;
  constexpr size_t W = T::W;
  const Requant<T> rq(p.out);
  const I za = T::set1(p.a_zero_point), zb = T::set1(p.b_zero_point);
  const F ma = T::set1f(p.a_multiplier), mb = T::set1f(p.b_multiplier);
  auto one = [&](I va, I vb) {
    const F x = T::opaque(T::mulf(T::cvtf(T::sub(va, za)), ma));
    const F y = T::opaque(T::mulf(T::cvtf(T::sub(vb, zb)), mb));
    return rq.of_float(T::addf(x, y));
  };
  size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W)
    Q8_QU8_UNROLL
    for (size_t v = 0; v < 4; ++v)
      T::store_u8(one(T::load_u8(a + i + v * W), T::load_u8(b + i + v * W)), out + i + v * W);
  for (; i < n; i += W) {
    const size_t nc = n - i < W ? n - i : W;
    T::store_u8_partial(one(T::load_u8_partial(a + i, nc), T::load_u8_partial(b + i, nc)), out + i, nc);
  }
}

// t = x / s; t = min(max(t, -z), 255 - z) (MAXPS turns a NaN into -z); q = round(t) + z.
template <class T>
void quantize(size_t n, const float* x, uint8_t* q, float scale, int32_t zero_point) {
  using F = typename T::F;
  constexpr size_t W = T::W;
  const F s = T::set1f(scale);
  const F lo = T::set1f(static_cast<float>(-zero_point));
  const F hi = T::set1f(static_cast<float>(255 - zero_point));
  const typename T::I z = T::set1(zero_point);
  auto one = [&](F v) { return T::add(T::round(T::minf(T::maxf(T::divf(v, s), lo), hi)), z); };
  size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W)
    Q8_QU8_UNROLL
    for (size_t v = 0; v < 4; ++v) T::store_u8(one(T::load_f32(x + i + v * W)), q + i + v * W);
  for (; i < n; i += W) {
    const size_t nc = n - i < W ? n - i : W;
    T::store_u8_partial(one(T::load_f32_partial(x + i, nc)), q + i, nc);
  }
}

// y = (float)(q - z) * s.
template <class T>
void dequantize(size_t n, const uint8_t* q, float* y, float scale, int32_t zero_point) {
  using I = typename T::I;
  constexpr size_t W = T::W;
  const typename T::F s = T::set1f(scale);
  const I z = T::set1(zero_point);
  size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W)
    Q8_QU8_UNROLL
    for (size_t v = 0; v < 4; ++v)
      T::store_f32(T::mulf(T::cvtf(T::sub(T::load_u8(q + i + v * W), z)), s), y + i + v * W);
  for (; i < n; i += W) {
    const size_t nc = n - i < W ? n - i : W;
    T::store_f32_partial(T::mulf(T::cvtf(T::sub(T::load_u8_partial(q + i, nc), z)), s), y + i, nc);
  }
}

#undef Q8_QU8_UNROLL

}  // namespace qu8_simd
}  // namespace
}  // namespace q8::kern
