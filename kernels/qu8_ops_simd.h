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
#include "kernels/unroll.h"
#include "kernels/window.h"

namespace q8::kern {
namespace {  // NOLINT: per-translation-unit instantiations
namespace qu8_simd {

// Pointers to the taps of one window, at most kMaxTaps at a time (more taps are walked in
// consecutive lists). Windows are clipped to the input once per output pixel (kernels/window.h),
// the same rule as the reference, and loops run over the taps inside the input.
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

// Rows of every tap of a window, in row-major tap order: the input pixel under a tap inside the
// input (tw, kernels/window.h), `zero` under one outside. Only for kernels of at most kMaxTaps
// taps (the short depthwise paths), whose cost per pixel the kernel size bounds.
template <class Geometry>
inline void all_tap_rows(const Geometry& g, const uint8_t* in_n, const uint8_t* zero, const TapWindow& tw,
                         const uint8_t** rows) {
  size_t t = 0;
  for (size_t ky = 0; ky < g.KH; ++ky)
    for (size_t kx = 0; kx < g.KW; ++kx, ++t)
      rows[t] = tap_window_has(tw, ky, kx)
                    ? in_n + ((tw.iy0 + (ky - tw.ky0) * g.DH) * g.IW + tw.ix0 + (kx - tw.kx0) * g.DW) * g.C
                    : zero;
}

// Rows (and tap indices ky * KW + kx, if `taps` is not null) of the next taps inside the input of
// window tw, at most kMaxTaps of them, from `at` on (kernels/window.h's row-major walk). Returns
// how many.
template <class Geometry>
inline size_t next_tap_rows(const Geometry& g, const uint8_t* in_n, const TapWindow& tw, TapWalk& at,
                            const uint8_t** rows, size_t* taps = nullptr) {
  return tap_walk_next(g, tw, at, kMaxTaps, [&](size_t j, size_t ky, size_t kx, size_t iy, size_t ix) {
    rows[j] = in_n + (iy * g.IW + ix) * g.C;
    if (taps) taps[j] = ky * g.KW + kx;
  });
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
};

// --- Depthwise ------------------------------------------------------------------------------
// Packed [C int32 bias'][taps][C int8 w][C float M] (the M array is not necessarily aligned).
// acc = bias'[c] + sum over all taps of a_t * w_t, bias' having -z_a * sum_t w_t folded in, so a
// tap outside the input reads z_a from `zero`.
// 3x3 and 5x5 (MobileNet's) run in tiles of pixels with each channel block's weights widened to
// int32 once per tile (dwconv_tiled); other kernels run pixel by pixel (dwconv_generic).

// acc[v] += sum over rows[0..n) of a * w for channels [c, c + NV*W); w points at tap 0 of the list.
template <class T, size_t NV, size_t KT>
inline void dw_accumulate(typename T::I* acc, const uint8_t* const* rows, size_t n, const int8_t* w, size_t C,
                          size_t c) {
  constexpr size_t W = T::W;
  const size_t taps = KT ? KT : n;
  Q8_UNROLL
  for (size_t t = 0; t < taps; ++t) {
    const uint8_t* ip = rows[t] + c;
    const int8_t* wp = w + t * C + c;
    Q8_UNROLL
    for (size_t v = 0; v < NV; ++v) acc[v] = T::add(acc[v], T::mul(T::load_u8(ip + v * W), T::load_s8(wp + v * W)));
  }
}

// The last nc <= W channels starting at c.
template <class T>
inline void dw_accumulate_partial(typename T::I& acc, const uint8_t* const* rows, size_t n, const int8_t* w, size_t C,
                                  size_t c, size_t nc) {
  for (size_t t = 0; t < n; ++t)
    acc = T::add(acc, T::mul(T::load_u8_partial(rows[t] + c, nc), T::load_s8_partial(w + t * C + c, nc)));
}

// One output pixel whose tap rows (all taps) are in `rows`.
template <class T, size_t KT>
inline void dw_pixel(const uint8_t* const* rows, size_t taps, const uint8_t* bias, const int8_t* w, const uint8_t* m,
                     size_t C, uint8_t* o, const Requant<T>& rq) {
  using I = typename T::I;
  constexpr size_t W = T::W;
  size_t c = 0;
  for (; c + 4 * W <= C; c += 4 * W) {
    I acc[4];
    Q8_UNROLL
    for (size_t v = 0; v < 4; ++v) acc[v] = T::load_i32(bias + (c + v * W) * 4);
    dw_accumulate<T, 4, KT>(acc, rows, taps, w, C, c);
    Q8_UNROLL
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

// A pixel of a kernel with more than kMaxTaps taps visits only its taps inside the input, from the
// unfolded bias (qu8.h): acc = bias[c] + sum over those taps of (a - z_a) * w, z_a from `zero`; the
// same int32 as bias' + a sum over every tap. Per block of channels the taps are walked in lists
// of kMaxTaps, the int32 sums staying in registers. A pixel costs its taps inside the input, not
// the kernel area (a 1 x 2^20 kernel over wide pads has ~2^20 output pixels with a handful of
// taps inside each).
template <class T, bool kPartial>
inline void dw_long_block(const ConvGeometry& g, const uint8_t* in_n, const uint8_t* zero, const TapWindow& tw,
                          const uint8_t* bias0, const int8_t* w, const uint8_t* m, uint8_t* o, const Requant<T>& rq,
                          size_t c, size_t nc) {
  using I = typename T::I;
  const size_t C = g.C;
  const uint8_t* rows[kMaxTaps];
  size_t taps[kMaxTaps];
  I acc = kPartial ? T::load_i32_partial(bias0 + c * 4, nc) : T::load_i32(bias0 + c * 4);
  const I z = kPartial ? T::load_u8_partial(zero + c, nc) : T::load_u8(zero + c);
  TapWalk at = tap_walk_begin(tw);
  while (!tap_walk_done(tw, at)) {
    const size_t n = next_tap_rows(g, in_n, tw, at, rows, taps);
    for (size_t j = 0; j < n; ++j) {
      const I a = kPartial ? T::load_u8_partial(rows[j] + c, nc) : T::load_u8(rows[j] + c);
      const I wv = kPartial ? T::load_s8_partial(w + taps[j] * C + c, nc) : T::load_s8(w + taps[j] * C + c);
      acc = T::add(acc, T::mul(T::sub(a, z), wv));
    }
  }
  const typename T::F mv = kPartial ? T::load_f32_partial(m + c * 4, nc) : T::load_f32(m + c * 4);
  if (kPartial)
    T::store_u8_partial(rq(acc, mv), o + c, nc);
  else
    T::store_u8(rq(acc, mv), o + c);
}

template <class T>
inline void dw_pixel_long(const ConvGeometry& g, const uint8_t* in_n, const uint8_t* zero, const TapWindow& tw,
                          const uint8_t* bias0, const int8_t* w, const uint8_t* m, uint8_t* o, const Requant<T>& rq) {
  constexpr size_t W = T::W;
  const size_t C = g.C;
  size_t c = 0;
  for (; c + W <= C; c += W) dw_long_block<T, false>(g, in_n, zero, tw, bias0, w, m, o, rq, c, W);
  if (c < C) dw_long_block<T, true>(g, in_n, zero, tw, bias0, w, m, o, rq, c, C - c);
}

// Rows of the taps of output pixel `px` into rows[0, g.taps()) (all taps; `zero` for those
// outside the input; offset from tap_offsets (kernels/window.h)).
inline void dw_rows(const ConvGeometry& g, const uint8_t* in, const uint8_t* zero, const PixelCursor& px,
                    const size_t* offset, const uint8_t** rows) {
  const size_t taps = g.taps();
  const uint8_t* in_n = in + px.n * g.IH * g.IW * g.C;
  const TapWindow tw = tap_window(g, px.oy, px.ox);
  if (tap_window_count(tw) == taps) {  // the whole window is inside: tap 0 is (ky0, kx0) = (0, 0)
    const uint8_t* base = in_n + (tw.iy0 * g.IW + tw.ix0) * g.C;
    for (size_t t = 0; t < taps; ++t) rows[t] = base + offset[t];
  } else {
    all_tap_rows(g, in_n, zero, tw, rows);
  }
}

// Channels [c, c + NV*W) of the `np` pixels of a tile (rows[i*KT .. i*KT+KT) for pixel i), with
// weights already widened to int32 in wbuf[KT][NV*W]: per 8 or 16 MACs one widening load of the
// input, one vpmulld with the weights from memory and one add.
template <class T, size_t NV, size_t KT>
inline void dw_tile_block(const uint8_t* const* rows, size_t np, const int32_t* wbuf, const uint8_t* bias,
                          const uint8_t* m, size_t c, size_t C, uint8_t* o, const Requant<T>& rq) {
  using I = typename T::I;
  constexpr size_t W = T::W;
  for (size_t i = 0; i < np; ++i) {
    const uint8_t* const* r = rows + i * KT;
    I acc[NV];
    Q8_UNROLL
    for (size_t v = 0; v < NV; ++v) acc[v] = T::load_i32(bias + (c + v * W) * 4);
    Q8_UNROLL
    for (size_t t = 0; t < KT; ++t) {
      const uint8_t* ip = r[t] + c;
      Q8_UNROLL
      for (size_t v = 0; v < NV; ++v)
        acc[v] = T::add(acc[v], T::mul(T::load_u8(ip + v * W), T::load_i32(wbuf + (t * NV + v) * W)));
    }
    uint8_t* oi = o + i * C + c;
    Q8_UNROLL
    for (size_t v = 0; v < NV; ++v) T::store_u8(rq(acc[v], T::load_f32(m + (c + v * W) * 4)), oi + v * W);
  }
}

// Widens the weights of channels [c, c + NV*W) for the KT taps into wbuf[KT][NV*W].
template <class T, size_t NV, size_t KT>
inline void dw_widen(const int8_t* w, size_t C, size_t c, int32_t* wbuf) {
  constexpr size_t W = T::W;
  Q8_UNROLL
  for (size_t t = 0; t < KT; ++t) Q8_UNROLL
  for (size_t v = 0; v < NV; ++v) T::store_i32(T::load_s8(w + t * C + c + v * W), wbuf + (t * NV + v) * W);
}

// Output pixels in tiles of kTile; per tile, channel blocks of 4, 2, 1 vectors (weights widened
// once per tile and block), then the last partial vector pixel by pixel.
constexpr size_t kTile = 32;

template <class T, size_t KT>
void dwconv_tiled(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out,
                  size_t p0, size_t p1, const QU8Requant& p) {
  constexpr size_t W = T::W;
  const size_t C = g.C;
  const uint8_t* bias = static_cast<const uint8_t*>(packed);
  const int8_t* w = reinterpret_cast<const int8_t*>(bias + C * 4);
  const uint8_t* m = bias + C * 4 + KT * C;
  const Requant<T> rq(p);
  size_t offset[KT];
  tap_offsets(g, offset);
  const uint8_t* rows[kTile * KT];
  alignas(64) int32_t wbuf[KT * 4 * W];
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t p = p0; p < p1; p += kTile) {
    const size_t np = p1 - p < kTile ? p1 - p : kTile;
    for (size_t i = 0; i < np; ++i, px.next()) dw_rows(g, in, zero, px, offset, rows + i * KT);
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

// Any other kernel, pixel by pixel; kernels of more than kMaxTaps taps visit only the taps inside
// the input (dw_pixel_long).
template <class T>
void dwconv_generic(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out,
                    size_t p0, size_t p1, const QU8Requant& p) {
  const size_t C = g.C, taps = g.taps();
  const uint8_t* bias = static_cast<const uint8_t*>(packed);
  const int8_t* w = reinterpret_cast<const int8_t*>(bias + C * 4);
  const uint8_t* m = bias + C * 4 + taps * C;
  const uint8_t* bias0 = m + C * 4;  // the unfolded bias
  const Requant<T> rq(p);
  const uint8_t* rows[kMaxTaps];
  size_t offset[kMaxTaps];
  if (taps <= kMaxTaps) tap_offsets(g, offset);
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t pix = p0; pix < p1; ++pix, px.next()) {
    uint8_t* o = out + pix * C;
    if (taps > kMaxTaps) {
      dw_pixel_long<T>(g, in + px.n * g.IH * g.IW * C, zero, tap_window(g, px.oy, px.ox), bias0, w, m, o, rq);
      continue;
    }
    dw_rows(g, in, zero, px, offset, rows);
    dw_pixel<T, 0>(rows, taps, bias, w, m, C, o, rq);
  }
}

template <class T>
void dwconv(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out, size_t p0,
            size_t p1, const QU8Requant& p) {
  switch (g.taps()) {
    case 9: return dwconv_tiled<T, 9>(g, in, packed, zero, out, p0, p1, p);
    case 25: return dwconv_tiled<T, 25>(g, in, packed, zero, out, p0, p1, p);
    default: return dwconv_generic<T>(g, in, packed, zero, out, p0, p1, p);
  }
}

// Channels [c, C) of a row of C in vectors of V lanes, f(c, n) running channels [c, c + n): whole
// vectors, then the rest, where the row is at least a vector long, as the vector that ends the
// row (it overlaps the one before; each op using this computes every channel on its own, so the
// shared channels get the same bytes twice), else (a row shorter than a vector) as a partial
// one, n < V, whose loads and stores go through a buffer.
template <size_t V, class F>
inline void chunks(size_t c, size_t C, F&& f) {
  for (; c + V <= C; c += V) f(c, V);
  if (c < C) f(C >= V ? C - V : c, C >= V ? V : C - c);
}
// n bytes as int32 lanes and back, n being T::W or, for a partial vector, fewer.
template <class T>
inline typename T::I load_u8_n(const uint8_t* p, size_t n) {
  return n == T::W ? T::load_u8(p) : T::load_u8_partial(p, n);
}
template <class T>
inline void store_u8_n(typename T::I v, uint8_t* p, size_t n) {
  n == T::W ? T::store_u8(v, p) : T::store_u8_partial(v, p, n);
}

// --- Max pool (bytes, vectorised over channels) -----------------------------------------------
// Positions outside the input are ignored (and never visited: kernels/window.h); a window with
// none inside gives 0. More than kMaxTaps taps inside fold list after list into the output row
// (max is exact and idempotent).
// A pixel's channels go in byte vectors (chunks, above); idempotence again makes the overlapping
// last one give its shared channels the same bytes twice.
template <class T>
void maxpool(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1) {
  using B = typename T::B;
  constexpr size_t WB = T::WB;
  const size_t C = g.C;
  auto load = [](const uint8_t* p, size_t n) { return n == WB ? T::load_b(p) : T::load_b_partial(p, n); };
  auto store = [](B v, uint8_t* p, size_t n) { n == WB ? T::store_b(v, p) : T::store_b_partial(v, p, n); };
  // The common 2x2 stride-2 window with every tap inside the input: four rows, no bookkeeping.
  if (g.KH == 2 && g.KW == 2 && g.SH == 2 && g.SW == 2 && g.DH == 1 && g.DW == 1 && g.PT == 0 && g.PL == 0 &&
      2 * g.OH <= g.IH && 2 * g.OW <= g.IW) {
    const size_t row = g.IW * C;
    PixelCursor px(p0, g.OH, g.OW);
    for (size_t pix = p0; pix < p1; ++pix, px.next()) {
      const uint8_t* r0 = in + ((px.n * g.IH + 2 * px.oy) * g.IW + 2 * px.ox) * C;
      const uint8_t* r2 = r0 + row;
      uint8_t* o = out + pix * C;
      chunks<WB>(0, C, [&](size_t c, size_t n) {
        store(T::max_b(T::max_b(load(r0 + c, n), load(r0 + C + c, n)), T::max_b(load(r2 + c, n), load(r2 + C + c, n))),
              o + c, n);
      });
    }
    return;
  }
  const uint8_t* rows[kMaxTaps];
  // A window wholly inside the input (every output pixel but a border one pixel wide, for the
  // usual pads, window_inside) needs no tap list: its taps are fixed offsets from its first pixel.
  const size_t row = g.IW * C, tap_dy = g.DH * row, tap_dx = g.DW * C;
  const bool three_by_three = g.KH == 3 && g.KW == 3;
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t pix = p0; pix < p1; ++pix, px.next()) {
    const uint8_t* in_n = in + px.n * g.IH * g.IW * C;
    uint8_t* o = out + pix * C;
    size_t iy = 0, ix = 0;
    if (window_inside(g, px.oy, px.ox, iy, ix)) {
      const uint8_t* base = in_n + iy * row + ix * C;
      chunks<WB>(0, C, [&](size_t c, size_t n) {
        const uint8_t* r = base + c;
        if (n == WB && three_by_three) {  // the usual window, unrolled
          const uint8_t *r1 = r + tap_dy, *r2 = r1 + tap_dy;
          const B m0 = T::max_b(T::max_b(T::load_b(r), T::load_b(r + tap_dx)), T::load_b(r + 2 * tap_dx));
          const B m1 = T::max_b(T::max_b(T::load_b(r1), T::load_b(r1 + tap_dx)), T::load_b(r1 + 2 * tap_dx));
          const B m2 = T::max_b(T::max_b(T::load_b(r2), T::load_b(r2 + tap_dx)), T::load_b(r2 + 2 * tap_dx));
          T::store_b(T::max_b(T::max_b(m0, m1), m2), o + c);
          return;
        }
        B m = load(r, n);
        for (size_t ky = 0; ky < g.KH; ++ky, r += tap_dy)
          for (size_t kx = 0; kx < g.KW; ++kx) m = T::max_b(m, load(r + kx * tap_dx, n));
        store(m, o + c, n);
      });
      continue;
    }
    const TapWindow tw = tap_window(g, px.oy, px.ox);
    TapWalk at = tap_walk_begin(tw);
    for (bool first = true; first || !tap_walk_done(tw, at); first = false) {  // once if empty
      const size_t n_rows = next_tap_rows(g, in_n, tw, at, rows);
      chunks<WB>(0, C, [&](size_t c, size_t n) {
        B m = first ? T::zero_b() : load(o + c, n);
        for (size_t j = 0; j < n_rows; ++j) m = T::max_b(m, load(rows[j] + c, n));
        store(m, o + c, n);
      });
    }
  }
}

// --- Average pools ------------------------------------------------------------------------------
// acc = sum over the taps inside the input of (a - z_in) = (sum of a) - inside * z_in, exact in
// int32; x = (float)acc * (in_over_out / (float)count), count = avgpool_divisor (kernels/window.h,
// the reference's rule; 0 for an empty window gives scale 0, hence z_out). Only the taps inside
// the input are visited.
template <class T>
void avgpool(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1, const QU8PoolParams& p) {
  using I = typename T::I;
  constexpr size_t W = T::W;
  const size_t C = g.C;
  const Requant<T> rq(p.out);
  const uint8_t* rows[kMaxTaps];
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t pix = p0; pix < p1; ++pix, px.next()) {
    const uint8_t* in_n = in + px.n * g.IH * g.IW * C;
    uint8_t* o = out + pix * C;
    const TapWindow tw = tap_window(g, px.oy, px.ox);
    const size_t count = avgpool_divisor(g, px.oy, px.ox, tw);
    const typename T::F scale = T::set1f(count ? p.in_over_out / static_cast<float>(count) : 0.0f);
    if (tap_window_count(tw) <= kMaxTaps) {
      TapWalk at = tap_walk_begin(tw);
      const size_t n = next_tap_rows(g, in_n, tw, at, rows);
      const I zsum = T::set1(static_cast<int32_t>(n) * p.in_zero_point);
      size_t c = 0;
      for (; c + 4 * W <= C; c += 4 * W) {
        I acc[4];
        Q8_UNROLL
        for (size_t v = 0; v < 4; ++v) acc[v] = T::sub(T::set1(0), zsum);
        for (size_t j = 0; j < n; ++j) Q8_UNROLL
        for (size_t v = 0; v < 4; ++v) acc[v] = T::add(acc[v], T::load_u8(rows[j] + c + v * W));
        Q8_UNROLL
        for (size_t v = 0; v < 4; ++v) T::store_u8(rq(acc[v], scale), o + c + v * W);
      }
      chunks<W>(c, C, [&](size_t c, size_t nc) {
        I acc = T::sub(T::set1(0), zsum);
        for (size_t j = 0; j < n; ++j) acc = T::add(acc, load_u8_n<T>(rows[j] + c, nc));
        store_u8_n<T>(rq(acc, scale), o + c, nc);
      });
    } else {
      chunks<W>(0, C, [&](size_t c, size_t nc) {
        I acc = T::set1(0);
        for (TapWalk at = tap_walk_begin(tw); !tap_walk_done(tw, at);) {
          const size_t n = next_tap_rows(g, in_n, tw, at, rows);
          acc = T::sub(acc, T::set1(static_cast<int32_t>(n) * p.in_zero_point));
          for (size_t j = 0; j < n; ++j) acc = T::add(acc, load_u8_n<T>(rows[j] + c, nc));
        }
        store_u8_n<T>(rq(acc, scale), o + c, nc);
      });
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
        Q8_UNROLL
        for (size_t v = 0; v < 4; ++v) acc[v] = T::add(acc[v], T::load_u8(r + v * W));
      }
      Q8_UNROLL
      for (size_t v = 0; v < 4; ++v) T::store_u8(rq(acc[v], scale), o + c + v * W);
    }
    chunks<W>(c, C, [&](size_t c, size_t nc) {
      I acc = init;
      for (size_t i = 0; i < HW; ++i) acc = T::add(acc, load_u8_n<T>(in_n + i * C + c, nc));
      store_u8_n<T>(rq(acc, scale), o + c, nc);
    });
  }
}

// --- Element-wise ---------------------------------------------------------------------------
// Two operands' whole byte vectors in, one requantized byte vector out, in operations that give
// qu8.h's bytes with fewer instructions than widening each int32 vector on its own:
//  - (float)(a - z_a) is (2^23 + a) - (2^23 + z_a): T::widen_biased places each byte in the
//    mantissa of 2^23, both terms are exact floats (z_a < 2^23), and so is their difference;
//  - clamp to [out_min - z_out, out_max - z_out], round, + z_out is done as round(min(x, out_max -
//    z_out)), then T::narrow_u8 (saturate to int16, + z_out saturating, saturate to [0, 255]),
//    then a byte max with out_min. Rounding is monotone and the bounds are integers, so clamping
//    after it is the same as before it. The float min keeps the rounding below 2^31, above which
//    cvtps2dq returns INT32_MIN; an x below -2^31 does become INT32_MIN, which still ends at
//    out_min, as it should.
template <class T>
struct BytePairs {
  using F = typename T::F;
  using B = typename T::B;
  F ka, kb, hi;
  B lo;
  int32_t z;
  BytePairs(int32_t a_zero_point, int32_t b_zero_point, const QU8Requant& out)
      : ka(T::set1f(8388608.f + static_cast<float>(a_zero_point))),
        kb(T::set1f(8388608.f + static_cast<float>(b_zero_point))),
        hi(T::set1f(static_cast<float>(static_cast<int32_t>(out.out_max) - out.out_zero_point))),
        lo(T::set1_b(out.out_min)),
        z(out.out_zero_point) {}
  // (float)(a - z_a) and (float)(b - z_b) of the bytes of va and vb, four vectors each.
  void centred(B va, B vb, F fa[4], F fb[4]) const {
    T::widen_biased(va, fa);
    T::widen_biased(vb, fb);
    for (size_t v = 0; v < 4; ++v) fa[v] = T::subf(fa[v], ka), fb[v] = T::subf(fb[v], kb);
  }
  // The bytes of x (four vectors, in widen_biased's order): clamped, rounded, + z_out.
  B requantized(const F x[4]) const {
    typename T::I r[4];
    for (size_t v = 0; v < 4; ++v) r[v] = T::round(T::minf(x[v], hi));
    return T::max_b(T::narrow_u8(r, z), lo);
  }
};

// x = (float)(a - z_a) * Ma; y = (float)(b - z_b) * Mb; s = x + y; clamp; round; + z_out (qu8.h).
template <class T>
void add(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out, const QU8AddParams& p) {
  using F = typename T::F;
  using B = typename T::B;
  constexpr size_t WB = T::WB;
  const BytePairs<T> bp(p.a_zero_point, p.b_zero_point, p.out);
  const F ma = T::set1f(p.a_multiplier), mb = T::set1f(p.b_multiplier);
  auto block = [&](B va, B vb) {
    F fa[4], fb[4], s[4];
    bp.centred(va, vb, fa, fb);
    for (size_t v = 0; v < 4; ++v) s[v] = T::addf(T::opaque(T::mulf(fa[v], ma)), T::opaque(T::mulf(fb[v], mb)));
    return bp.requantized(s);
  };
  size_t i = 0;
  for (; i + WB <= n; i += WB) T::store_b(block(T::load_b(a + i), T::load_b(b + i)), out + i);
  if (i < n)
    T::store_b_partial(block(T::load_b_partial(a + i, n - i), T::load_b_partial(b + i, n - i)), out + i, n - i);
}

// acc = (a - z_a) * (b - z_b) (exact int32); x = (float)acc * M; clamp; round; + z_out. Rows of n,
// each operand advancing its own row stride (0: a row broadcast). Whole byte vectors go through
// BytePairs: the product of the two exact differences is exact in float (|acc| < 2^16), so it
// equals (float)acc. The rest of a row (fewer than T::WB bytes, say 40 channels of a
// squeeze-excitation scale) goes int32 vector by int32 vector, as Requant does it.
template <class T>
void mul_rows(size_t rows, size_t n, const uint8_t* a, size_t a_rs, const uint8_t* b, size_t b_rs, uint8_t* out,
              const QU8MulParams& p) {
  using I = typename T::I;
  using F = typename T::F;
  using B = typename T::B;
  constexpr size_t W = T::W, WB = T::WB;
  const Requant<T> rq(p.out);
  const BytePairs<T> bp(p.a_zero_point, p.b_zero_point, p.out);
  const I za = T::set1(p.a_zero_point), zb = T::set1(p.b_zero_point);
  const F m = T::set1f(p.multiplier);
  auto block = [&](B va, B vb) {
    F fa[4], fb[4], x[4];
    bp.centred(va, vb, fa, fb);
    for (size_t v = 0; v < 4; ++v) x[v] = T::mulf(T::mulf(fa[v], fb[v]), m);
    return bp.requantized(x);
  };
  auto one = [&](I va, I vb) { return rq(T::mul(T::sub(va, za), T::sub(vb, zb)), m); };
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* ar = a + r * a_rs;
    const uint8_t* br = b + r * b_rs;
    uint8_t* o = out + r * n;
    size_t i = 0;
    for (; i + WB <= n; i += WB) T::store_b(block(T::load_b(ar + i), T::load_b(br + i)), o + i);
    for (; i + W <= n; i += W) T::store_u8(one(T::load_u8(ar + i), T::load_u8(br + i)), o + i);
    if (i < n)
      T::store_u8_partial(one(T::load_u8_partial(ar + i, n - i), T::load_u8_partial(br + i, n - i)), o + i, n - i);
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
  for (; i + 4 * W <= n; i += 4 * W) Q8_UNROLL
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
  for (; i + 4 * W <= n; i += 4 * W) Q8_UNROLL
  for (size_t v = 0; v < 4; ++v) T::store_f32(T::mulf(T::cvtf(T::sub(T::load_u8(q + i + v * W), z)), s), y + i + v * W);
  for (; i < n; i += W) {
    const size_t nc = n - i < W ? n - i : W;
    T::store_f32_partial(T::mulf(T::cvtf(T::sub(T::load_u8_partial(q + i, nc), z)), s), y + i, nc);
  }
}

}  // namespace qu8_simd
}  // namespace
}  // namespace q8::kern
