// The taps of a pooling or depthwise window that fall inside the input, and AveragePool's divisor:
// one rule, used by every path (the fp32 and uint8 scalar references and the SIMD kernels of every
// ISA), so they cannot drift apart.
//
// Tap (ky, kx) of output (oy, ox) reads input position (oy*SH + ky*DH - PT, ox*SW + kx*DW - PL).
// Positions grow with the tap index, so the taps inside the input form a rectangle of tap indices
// [ky0, ky1) x [kx0, kx1), found here with O(1) arithmetic. Kernels walk that rectangle and never
// the whole kernel: the cost of an output pixel is the number of its taps inside the input, which
// the input size bounds, however large the kernel, pads or strides (the importer admits 2^20 for
// each; a loop over a 2^20 x 2^20 window would never end).
//
// Everything here is `static inline`: the per-ISA files are compiled with different flags, and an
// inline function with external linkage would let the linker keep, say, the AVX-512 copy for a
// caller that runs on an AVX2 CPU. No member functions for the same reason.
//
// Preconditions (the importer checks them): strides and dilations >= 1, and every extent small
// enough that o*S + K*D + P + I does not overflow size_t.
#pragma once

#include <cstddef>

#include "kernels/f32.h"  // ConvGeometry, PoolGeometry

namespace q8::kern {

// Taps [begin, end) of one axis: tap k of output o reads o*S + k*D - P, inside when in [0, I).
struct TapSpan {
  size_t begin, end;
};

static inline TapSpan taps_inside(size_t o, size_t S, size_t D, size_t P, size_t I, size_t K) {
  const size_t first = o * S;  // tap 0's position in padded coordinates (the input starts at P)
  // First k with first + k*D >= P, and first k with first + k*D >= P + I (no division when D = 1,
  // the common case: this runs once per output pixel of every pool and depthwise kernel).
  size_t begin = first >= P ? 0 : D == 1 ? P - first : (P - first + D - 1) / D;
  size_t end = first >= P + I ? 0 : D == 1 ? P + I - first : (P + I - first + D - 1) / D;
  if (end > K) end = K;
  if (begin > end) begin = end;
  return {begin, end};
}

// The taps of one output pixel inside the input: [ky0, ky1) x [kx0, kx1); tap (ky0, kx0) reads
// input row iy0, column ix0, and each next tap row (column) is DH rows (DW columns) further.
// A window with no tap inside has ky0 == ky1 and kx0 == kx1, so every loop over it is empty.
struct TapWindow {
  size_t ky0, ky1, kx0, kx1;
  size_t iy0, ix0;
};

template <class Geometry>  // ConvGeometry or PoolGeometry
static inline TapWindow tap_window(const Geometry& g, size_t oy, size_t ox) {
  const TapSpan y = taps_inside(oy, g.SH, g.DH, g.PT, g.IH, g.KH);
  const TapSpan x = taps_inside(ox, g.SW, g.DW, g.PL, g.IW, g.KW);
  if (y.begin == y.end || x.begin == x.end) return {y.begin, y.begin, x.begin, x.begin, 0, 0};
  return {y.begin, y.end, x.begin, x.end, oy * g.SH + y.begin * g.DH - g.PT, ox * g.SW + x.begin * g.DW - g.PL};
}

// offset[ky * KW + kx]: tap (ky, kx)'s distance from tap (0, 0) in elements of an NHWC input of C
// per pixel, for windows wholly inside the input (KH * KW entries).
template <class Geometry>
static inline void tap_offsets(const Geometry& g, size_t* offset) {
  for (size_t ky = 0; ky < g.KH; ++ky)
    for (size_t kx = 0; kx < g.KW; ++kx) offset[ky * g.KW + kx] = (ky * g.DH * g.IW + kx * g.DW) * g.C;
}

// Whether the window of output (oy, ox) lies wholly inside the input (every output pixel but a
// border, for the usual pads); then (iy, ix) is the input pixel under tap (0, 0). Unsigned
// wrap-around makes a window that starts above or left of the input fail.
template <class Geometry>
static inline bool window_inside(const Geometry& g, size_t oy, size_t ox, size_t& iy, size_t& ix) {
  iy = oy * g.SH - g.PT;
  ix = ox * g.SW - g.PL;
  return iy < g.IH && iy + (g.KH - 1) * g.DH < g.IH && ix < g.IW && ix + (g.KW - 1) * g.DW < g.IW;
}

// How many taps of the window are inside the input.
static inline size_t tap_window_count(const TapWindow& w) { return (w.ky1 - w.ky0) * (w.kx1 - w.kx0); }

// Whether tap (ky, kx) is inside the input.
static inline bool tap_window_has(const TapWindow& w, size_t ky, size_t kx) {
  return ky >= w.ky0 && ky < w.ky1 && kx >= w.kx0 && kx < w.kx1;
}

// Row-major walk over a window's taps, a list at a time (SIMD kernels gather at most a fixed
// number of tap pointers per list). Start with tap_walk_begin; tap_walk_next calls
// f(j, ky, kx, iy, ix) for the next taps, j = 0, 1, ..., at most `max` of them, and returns how
// many it visited; the walk is over when tap_walk_done. Lists concatenate to the row-major order
// of the whole window, as the scalar references visit it.
struct TapWalk {
  size_t ky, kx, iy, ix;
};

static inline TapWalk tap_walk_begin(const TapWindow& w) { return {w.ky0, w.kx0, w.iy0, w.ix0}; }
static inline bool tap_walk_done(const TapWindow& w, const TapWalk& at) { return at.ky >= w.ky1; }

template <class Geometry, class F>
static inline size_t tap_walk_next(const Geometry& g, const TapWindow& w, TapWalk& at, size_t max, F&& f) {
  size_t j = 0;
  for (; j < max && at.ky < w.ky1; ++j) {
    f(j, at.ky, at.kx, at.iy, at.ix);
    if (++at.kx == w.kx1) {
      at.kx = w.kx0, at.ix = w.ix0;
      ++at.ky, at.iy += g.DH;
    } else {
      at.ix += g.DW;
    }
  }
  return j;
}

// The count an AveragePool divides by for output (oy, ox), whose window is w.
// count_include_pad=false: the taps inside the input. true (ONNX): the taps inside the padded input
// [-PT, IH+PB) x [-PL, IW+PR), so pads count but positions past the end pad, which exist only
// because ceil_mode added a partial last window, do not. 0 for a window with nothing to count.
static inline size_t avgpool_divisor(const PoolGeometry& g, size_t oy, size_t ox, const TapWindow& w) {
  if (!g.count_include_pad) return tap_window_count(w);
  // In padded coordinates tap 0 is never before the start, so the span begins at 0.
  const size_t nh = taps_inside(oy, g.SH, g.DH, 0, g.PT + g.IH + g.PB, g.KH).end;
  const size_t nw = taps_inside(ox, g.SW, g.DW, 0, g.PL + g.IW + g.PR, g.KW).end;
  return nh * nw;
}

}  // namespace q8::kern
