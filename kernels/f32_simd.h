// fp32 kernels written once over xsimd 8.1 batches, instantiated per ISA by
// kernels/x86/f32_avx2.cpp, kernels/x86/f32_avx512.cpp and kernels/arm/f32_neon.cpp, each compiled
// with its own flags.
//
// Everything here lives in an unnamed namespace, so each ISA file gets its own private copy: an
// inline function shared between files compiled with -mavx512f and without could otherwise be
// picked by the linker for a caller that runs on an AVX2-only CPU. For the same reason this
// header calls no std:: templates (std::min, std::max, ...), whose copies are shared.
#pragma once

#include <cstddef>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "kernels/f32.h"
#include "kernels/f32_math.h"
#include "kernels/unroll.h"
#include "kernels/window.h"

namespace q8::kern {
namespace {  // NOLINT: per-translation-unit instantiations, see above
namespace f32_simd {

template <class Arch>
using vec = xsimd::batch<float, Arch>;

// The canonical arithmetic of every kernel is written down in kernels/reference/f32_scalar.cpp;
// each output lane here performs exactly the same IEEE operations in the same order (one fused
// multiply-add per conv/gemm term, no partial accumulators, no horizontal reductions), so every
// table gives the scalar table's bits. Comparisons are spelled as selects with a fixed operand
// order, because min/max instructions differ on NaN and on -0/+0 between ISAs.

// a * b + c with one rounding. Spelled with the fused instruction itself: xsimd 8.1 has no fma
// for AVX-512 and falls back to a * b + c, which is fused only when the compiler happens to
// contract it (GCC at -O3 inlined did; sanitizer builds and Clang did not, and lost bit
// equality with the scalar table).
template <class Arch>
inline vec<Arch> fused_multiply_add(vec<Arch> a, vec<Arch> b, vec<Arch> c) {
#if defined(__AVX512F__)
  if constexpr (vec<Arch>::size == 16) return _mm512_fmadd_ps(a, b, c);
#endif
#if defined(__FMA__)
  if constexpr (vec<Arch>::size == 8) return _mm256_fmadd_ps(a, b, c);
#endif
#if defined(__aarch64__)
  if constexpr (vec<Arch>::size == 4) return vfmaq_f32(c, a, b);
#endif
  return xsimd::fma(a, b, c);
}

// a > b ? a : b (b when either is NaN or on a tie), lane by lane.
template <class Arch>
inline vec<Arch> pick_gt(vec<Arch> a, vec<Arch> b) {
#if defined(__x86_64__) || defined(__i386__)
  return xsimd::max(a, b);  // maxps(a, b) is defined as exactly a > b ? a : b
#else
  return xsimd::select(a > b, a, b);  // NEON fmax would propagate NaN and order -0 < +0
#endif
}

// a < b ? a : b (b when either is NaN or on a tie), lane by lane.
template <class Arch>
inline vec<Arch> pick_lt(vec<Arch> a, vec<Arch> b) {
#if defined(__x86_64__) || defined(__i386__)
  return xsimd::min(a, b);  // minps(a, b) is defined as exactly a < b ? a : b
#else
  return xsimd::select(a < b, a, b);
#endif
}

// a / b, correctly rounded. xsimd 8.1 divides float batches on NEON with a reciprocal estimate
// and Newton steps (off by an ulp), so AArch64 calls fdiv directly.
template <class Arch>
inline vec<Arch> divide(vec<Arch> a, vec<Arch> b) {
#if defined(__aarch64__)
  return vec<Arch>(vdivq_f32(a, b));
#else
  return a / b;             // divps
#endif
}

// Canonical clamp: y = x < lo ? lo : x; y = y > hi ? hi : y. NaN passes through; -0 vs +0 bounds
// keep x.
template <class Arch>
inline vec<Arch> clamp_vec(vec<Arch> x, vec<Arch> lo, vec<Arch> hi) {
  return pick_lt<Arch>(hi, pick_gt<Arch>(lo, x));
}

template <class Arch>
inline float clamp_scalar(float x, float lo, float hi) {
  x = x < lo ? lo : x;
  return x > hi ? hi : x;
}

// The first n floats at src (n < lane count) in lanes [0, n), the rest zero; nothing past them is
// read. A masked load where the ISA has one: going through a stack buffer, the vector load of
// bytes just written by narrower stores waits for them (no store forwarding), which cost the
// fused residual 8-10 % on MobileNet's 24-channel projections.
template <class Arch>
inline vec<Arch> load_partial(const float* src, size_t n) {
#if defined(__AVX512F__)
  if constexpr (vec<Arch>::size == 16) return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), src);
#endif
#if defined(__AVX2__)
  if constexpr (vec<Arch>::size == 8) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskload_ps(src, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane));
  }
#endif
  alignas(64) float tmp[vec<Arch>::size] = {};
  std::memcpy(tmp, src, n * sizeof(float));
  return vec<Arch>::load_aligned(tmp);
}

// Stores the first n lanes of v (n < lane count) through a stack buffer: xsimd 8.1 has no masked
// store, and this only runs for the last partial vector of a row.
template <class Arch>
inline void store_partial(vec<Arch> v, float* dst, size_t n) {
  alignas(64) float tmp[vec<Arch>::size];
  v.store_unaligned(tmp);
  std::memcpy(dst, tmp, n * sizeof(float));
}

// --- Indirect GEMM: an MR x (NV vectors) register tile ----------------------------------------
// One block of the reduction: for every tap t < ks and channel k < kc, one row of nr weights is
// loaded (NV vectors) and each of the MR pixels' inputs a[i * a_stride + t][a_offset + k] is
// broadcast and FMA'd into its row of accumulators. The accumulators start from `bias` (nr floats)
// or, when it is null, from the partial sums an earlier block of the same reduction left in c. When
// `last` they become clamp(acc + residual) with a residual (the tile's rows of a tensor laid out
// like c: a residual Add fused into the convolution), else clamp(acc); otherwise they are stored
// as they are for the next block. Added here, the residual costs no pass of its own over each
// block of the output (BENCHMARKS.md: 0.93-0.97x the time of ResNet-50's and MobileNetV2's
// residual 1x1 layers with large outputs). A float stored and reloaded is the same float, so
// splitting the reduction into blocks performs the same operations in the same order as one pass. Exactly MR rows:
// igemm_block_rows picks the instance for a tile's rows. The panel holds NR = NV vectors per row of weights; only the
// NC vectors that hold one of the nc channels are computed: the last panel of a layer whose channels are not a multiple
// of NR (MNASNet's and EfficientNet's 40, 80 and 112) would otherwise spend up to half its FMAs on lanes that are
// dropped. Each lane's operations are the same either way. RES: the instance that adds `residual` (called with last and
// a residual only), so a tile without one runs the epilogue it always had.
template <class Arch, size_t MR, size_t NV, bool RES, size_t NC = NV>
void igemm_block_tile(size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_stride, size_t a_offset,
                      const float* bias, const float* w, float* c, size_t c_stride, const float* residual,
                      float out_min, float out_max, bool last) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  constexpr size_t NR = W * NV;
  if constexpr (NC > 1) {
    if (nc <= (NC - 1) * W)
      return igemm_block_tile<Arch, MR, NV, RES, NC - 1>(nc, kc, ks, a, a_stride, a_offset, bias, w, c, c_stride,
                                                         residual, out_min, out_max, last);
  }

  // The clamp bounds wait in memory until the stores: passed in xmm0 and xmm1, they would hold two
  // of the 32 vector registers through the reduction, and GCC then spills a weight vector of the
  // 6x64 tile (24 accumulators, 4 weights, 1 broadcast) to the stack inside the loop.
  volatile float bounds[2] = {out_min, out_max};
  V acc[MR][NC];
  if (bias) {
    Q8_UNROLL
    for (size_t v = 0; v < NC; ++v) {
      const V b = V::load_unaligned(bias + v * W);
      Q8_UNROLL
      for (size_t i = 0; i < MR; ++i) acc[i][v] = b;
    }
  } else {
    Q8_UNROLL
    for (size_t i = 0; i < MR; ++i) {
      const float* ci = c + i * c_stride;
      Q8_UNROLL
      for (size_t v = 0; v < NC; ++v) {
        if (nc == NR || (v + 1) * W <= nc) {
          acc[i][v] = V::load_unaligned(ci + v * W);
        } else {  // lanes past nc were never stored: start them from zero, they are dropped
          alignas(64) float tmp[W] = {};
          if (v * W < nc) std::memcpy(tmp, ci + v * W, (nc - v * W) * sizeof(float));
          acc[i][v] = V::load_aligned(tmp);
        }
      }
    }
  }

  for (size_t t = 0; t < ks; ++t) {
    const float* ap[MR];
    Q8_UNROLL
    for (size_t i = 0; i < MR; ++i) ap[i] = a[i * a_stride + t] + a_offset;
    for (size_t k = 0; k < kc; ++k) {
      V wv[NC];
      Q8_UNROLL
      for (size_t v = 0; v < NC; ++v) wv[v] = V::load_unaligned(w + v * W);
      Q8_UNROLL
      for (size_t i = 0; i < MR; ++i) {
        const V ai(ap[i][k]);
        Q8_UNROLL
        for (size_t v = 0; v < NC; ++v) acc[i][v] = fused_multiply_add(ai, wv[v], acc[i][v]);
      }
      w += NR;
    }
  }

  const V lo(bounds[0]), hi(bounds[1]);
  Q8_UNROLL
  for (size_t i = 0; i < MR; ++i) {
    float* ci = c + i * c_stride;
    Q8_UNROLL
    for (size_t v = 0; v < NC; ++v) {
      const bool whole = nc == NR || (v + 1) * W <= nc;
      V r = acc[i][v];
      if constexpr (RES) {
        const float* ri = residual + i * c_stride + v * W;
        if (whole)
          r = r + V::load_unaligned(ri);
        else if (v * W < nc)  // lanes past nc are dropped
          r = r + load_partial<Arch>(ri, nc - v * W);
      }
      if (last) r = clamp_vec<Arch>(r, lo, hi);
      if (whole) {
        r.store_unaligned(ci + v * W);
      } else {
        if (v * W < nc) store_partial<Arch>(r, ci + v * W, nc - v * W);
        break;
      }
    }
  }
}

// The tile instantiated for exactly mr rows (1 <= mr <= MR): a short tile (the drivers balance
// a range's tiles, e.g. 49 pixels as 4 x 6 + 5 x 5 rows) does not compute MR rows. A row's
// operations do not depend on how many rows share its tile.
template <class Arch, size_t MR, size_t NV, size_t R = MR>
void igemm_block_rows(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_stride,
                      size_t a_offset, const float* bias, const float* w, float* c, size_t c_stride,
                      const float* residual, float out_min, float out_max, bool last) {
  if constexpr (R > 1) {
    if (mr < R)
      return igemm_block_rows<Arch, MR, NV, R - 1>(mr, nc, kc, ks, a, a_stride, a_offset, bias, w, c, c_stride,
                                                   residual, out_min, out_max, last);
  }
  if (last && residual)
    igemm_block_tile<Arch, R, NV, true>(nc, kc, ks, a, a_stride, a_offset, bias, w, c, c_stride, residual, out_min,
                                        out_max, true);
  else
    igemm_block_tile<Arch, R, NV, false>(nc, kc, ks, a, a_stride, a_offset, bias, w, c, c_stride, nullptr, out_min,
                                         out_max, last);
}

// The whole reduction in one block: the panel's biases, then its taps * kc rows of weights.
template <class Arch, size_t MR, size_t NV>
void igemm_tile(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w, float* c,
                size_t c_stride, const float* residual, float out_min, float out_max) {
  constexpr size_t NR = vec<Arch>::size * NV;
  igemm_block_rows<Arch, MR, NV>(mr, nc, kc, ks, a, ks, 0, w, w + NR, c, c_stride, residual, out_min, out_max, true);
}

// Plain GEMM: the igemm tile with one "tap" whose row pointers are A's rows.
template <class Arch, size_t MR, size_t NV>
void gemm_tile(size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w, float* c,
               size_t c_stride, float out_min, float out_max) {
  const float* rows[MR];
  for (size_t i = 0; i < mr; ++i) rows[i] = a + i * a_stride;
  igemm_tile<Arch, MR, NV>(mr, nc, kc, 1, rows, w, c, c_stride, nullptr, out_min, out_max);
}

// --- Windows: the taps of one output pixel that fall inside the input ------------------------
// Depthwise conv and the pools walk the same windows, vectorised over channels (NHWC). For each
// output pixel the window's taps inside the input are found once (tap_window, kernels/window.h:
// O(1), the same rule as the scalar reference), then listed, and every block of channels runs over
// the list: the bounds arithmetic is paid per pixel, not per pixel and channel block. Taps outside
// the input are never visited: for depthwise they would add 0 * w (so `zero` is not read), and
// MaxPool ignores them; a pixel costs the taps inside the input, however large the kernel. More
// than kMaxTaps taps inside are walked in consecutive lists of at most kMaxTaps, the partial result
// passing through the output row; taps are visited in row-major order either way, as in the scalar
// reference.
constexpr size_t kMaxTaps = 64;

template <class Arch>
struct Window {
  const float* in[kMaxTaps];  // first channel of the input pixel under each tap
  size_t tap[kMaxTaps];       // ky * KW + kx
  size_t count = 0;
};

// Lists the next (at most kMaxTaps) taps of window w from `at` on.
template <class Arch, class Geometry>
inline void next_window_list(const Geometry& g, const float* in_n, const TapWindow& w, TapWalk& at, Window<Arch>& win) {
  win.count = tap_walk_next(g, w, at, kMaxTaps, [&](size_t j, size_t ky, size_t kx, size_t iy, size_t ix) {
    win.in[j] = in_n + (iy * g.IW + ix) * g.C;
    win.tap[j] = ky * g.KW + kx;
  });
}

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

// Channels [c, c + NV * lanes) of one depthwise output pixel over one window list. `init` holds
// the biases (first list) or the partial sums of the previous lists; only the last list clamps.
template <class Arch, size_t NV>
inline void dwconv_block(const Window<Arch>& win, const float* wts, size_t C, size_t c, const float* init, float* out,
                         bool last, vec<Arch> lo, vec<Arch> hi) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  V acc[NV];
  Q8_UNROLL
  for (size_t v = 0; v < NV; ++v) acc[v] = V::load_unaligned(init + c + v * W);
  for (size_t j = 0; j < win.count; ++j) {
    const float* ip = win.in[j] + c;
    const float* wp = wts + win.tap[j] * C + c;
    Q8_UNROLL
    for (size_t v = 0; v < NV; ++v)
      acc[v] = fused_multiply_add(V::load_unaligned(ip + v * W), V::load_unaligned(wp + v * W), acc[v]);
  }
  Q8_UNROLL
  for (size_t v = 0; v < NV; ++v) (last ? clamp_vec<Arch>(acc[v], lo, hi) : acc[v]).store_unaligned(out + c + v * W);
}

// All C channels of one depthwise output pixel over one window list. Channels past the last whole
// vector run as one more vector ending at C, over channels already done, when the list starts from
// the biases: recomputed from the same `init`, they come out the same. A later list starts from
// the partial sums in `out`, which that would add twice, so its tail runs lane by lane.
template <class Arch>
inline void dwconv_channels(const Window<Arch>& win, const float* wts, size_t C, const float* init, float* o, bool last,
                            float out_min, float out_max) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  const V lo(out_min), hi(out_max);
  size_t c = 0;
  for (; c + 4 * W <= C; c += 4 * W) dwconv_block<Arch, 4>(win, wts, C, c, init, o, last, lo, hi);
  for (; c + 2 * W <= C; c += 2 * W) dwconv_block<Arch, 2>(win, wts, C, c, init, o, last, lo, hi);
  for (; c + W <= C; c += W) dwconv_block<Arch, 1>(win, wts, C, c, init, o, last, lo, hi);
  if (c == C) return;
  if (C >= W && init != o) {
    dwconv_block<Arch, 1>(win, wts, C, C - W, init, o, last, lo, hi);
    return;
  }
  for (; c < C; ++c) {
    float acc = init[c];
    for (size_t j = 0; j < win.count; ++j)  // __builtin_fmaf: no shared std:: copy, see top
      acc = __builtin_fmaf(win.in[j][c], wts[win.tap[j] * C + c], acc);
    o[c] = last ? clamp_scalar<Arch>(acc, out_min, out_max) : acc;
  }
}

// Channels [c, c + NV * lanes) of P output pixels of one row whose windows hold the same taps
// inside the input: list entry j is tap tap[j], which pixel i reads at base[i] + offset[j]. Each
// tap's weights are loaded once for the P pixels (the one-pixel path loads a weight per input),
// and every output still gets acc = bias, then one fma per tap inside in row-major order, then
// the clamp.
template <class Arch, size_t P, size_t NV>
inline void dwconv_row_block(const float* const* base, const size_t* offset, const size_t* tap, size_t taps,
                             const float* wts, size_t C, size_t c, const float* bias, float* out, vec<Arch> lo,
                             vec<Arch> hi) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  V acc[P][NV];
  Q8_UNROLL
  for (size_t v = 0; v < NV; ++v) {
    const V b = V::load_unaligned(bias + c + v * W);
    Q8_UNROLL
    for (size_t i = 0; i < P; ++i) acc[i][v] = b;
  }
  for (size_t j = 0; j < taps; ++j) {
    V wv[NV];
    Q8_UNROLL
    for (size_t v = 0; v < NV; ++v) wv[v] = V::load_unaligned(wts + tap[j] * C + c + v * W);
    Q8_UNROLL
    for (size_t i = 0; i < P; ++i) {
      const float* ip = base[i] + offset[j] + c;
      Q8_UNROLL
      for (size_t v = 0; v < NV; ++v) acc[i][v] = fused_multiply_add(V::load_unaligned(ip + v * W), wv[v], acc[i][v]);
    }
  }
  Q8_UNROLL
  for (size_t i = 0; i < P; ++i) {
    Q8_UNROLL
    for (size_t v = 0; v < NV; ++v) clamp_vec<Arch>(acc[i][v], lo, hi).store_unaligned(out + i * C + c + v * W);
  }
}

// All channels of P consecutive output pixels of one row sharing their taps (C >= lanes; the
// channels past the last whole vector run as one vector ending at C, recomputed from the biases to
// the same bits). out: the first pixel's output; the others follow C floats apart.
template <class Arch, size_t P>
inline void dwconv_row(const float* const* base, const size_t* offset, const size_t* tap, size_t taps, const float* wts,
                       size_t C, const float* bias, float* out, float out_min, float out_max) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  const V lo(out_min), hi(out_max);
  size_t c = 0;
  for (; c + 2 * W <= C; c += 2 * W)
    dwconv_row_block<Arch, P, 2>(base, offset, tap, taps, wts, C, c, bias, out, lo, hi);
  for (; c + W <= C; c += W) dwconv_row_block<Arch, P, 1>(base, offset, tap, taps, wts, C, c, bias, out, lo, hi);
  if (c < C) dwconv_row_block<Arch, P, 1>(base, offset, tap, taps, wts, C, C - W, bias, out, lo, hi);
}

// Stride S (1 or 2) along a row and no column dilation: pixel i's tap (ky, kx) reads column
// S * i + kx of the tap row, so the S * (P - 1) + KW input vectors of a tap row are loaded once for
// all P x KW multiply-adds of that row (the list form loads P x KW: at stride 2 and 5 taps a row,
// 20 against 11). Each output still gets acc = bias, then one fma per tap inside in row-major
// order, then the clamp. base: pixel 0's input under tap (ky0, 0); row r of the taps starts at
// list entry r * KW (DwRowTaps below).
template <class Arch, size_t P, size_t NV, size_t KW, size_t S>
inline void dwconv_row_block_columns(const float* base, const size_t* offset, const size_t* tap, size_t taps,
                                     const float* wts, size_t C, size_t c, const float* bias, float* out, vec<Arch> lo,
                                     vec<Arch> hi) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  constexpr size_t kCols = S * (P - 1) + KW;
  V acc[P][NV];
  Q8_UNROLL
  for (size_t v = 0; v < NV; ++v) {
    const V b = V::load_unaligned(bias + c + v * W);
    Q8_UNROLL
    for (size_t i = 0; i < P; ++i) acc[i][v] = b;
  }
  for (size_t r = 0; r < taps; r += KW) {
    const float* row = base + offset[r] + c;
    const float* wrow = wts + tap[r] * C + c;
    V x[kCols][NV];
    Q8_UNROLL
    for (size_t j = 0; j < kCols; ++j) {
      Q8_UNROLL
      for (size_t v = 0; v < NV; ++v) x[j][v] = V::load_unaligned(row + j * C + v * W);
    }
    Q8_UNROLL
    for (size_t kx = 0; kx < KW; ++kx) {
      V wv[NV];
      Q8_UNROLL
      for (size_t v = 0; v < NV; ++v) wv[v] = V::load_unaligned(wrow + kx * C + v * W);
      Q8_UNROLL
      for (size_t i = 0; i < P; ++i) {
        Q8_UNROLL
        for (size_t v = 0; v < NV; ++v) acc[i][v] = fused_multiply_add(x[S * i + kx][v], wv[v], acc[i][v]);
      }
    }
  }
  Q8_UNROLL
  for (size_t i = 0; i < P; ++i) {
    Q8_UNROLL
    for (size_t v = 0; v < NV; ++v) clamp_vec<Arch>(acc[i][v], lo, hi).store_unaligned(out + i * C + c + v * W);
  }
}

// dwconv_row for stride S and no column dilation (dwconv_row_block_columns), KW taps a row. Two
// vectors of channels per step where the columns, accumulators and weights of both fit 30
// registers (on AVX-512's 32 all but stride 2 with 5 taps; AVX2's 16 take one vector).
template <class Arch, size_t P, size_t KW, size_t S>
inline void dwconv_row_columns(const float* base, const size_t* offset, const size_t* tap, size_t taps,
                               const float* wts, size_t C, const float* bias, float* out, float out_min,
                               float out_max) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  constexpr size_t NV = sizeof(V) >= 64 && 2 * (S * (P - 1) + KW + P + 1) <= 30 ? 2 : 1;
  const V lo(out_min), hi(out_max);
  size_t c = 0;
  for (; c + NV * W <= C; c += NV * W)
    dwconv_row_block_columns<Arch, P, NV, KW, S>(base, offset, tap, taps, wts, C, c, bias, out, lo, hi);
  for (; c + W <= C; c += W)
    dwconv_row_block_columns<Arch, P, 1, KW, S>(base, offset, tap, taps, wts, C, c, bias, out, lo, hi);
  if (c < C) dwconv_row_block_columns<Arch, P, 1, KW, S>(base, offset, tap, taps, wts, C, C - W, bias, out, lo, hi);
}

// The taps of the output rows whose windows cover tap rows [ky0, ky1) and every tap column: tap
// index and offset from the input pixel under tap (ky0, 0), in row-major order. Rebuilt only when
// the span changes (every output row of the interior shares one).
struct DwRowTaps {
  size_t ky0 = 0, ky1 = 0, count = 0;
  size_t tap[kMaxTaps], offset[kMaxTaps];
  template <class Geometry>
  void cover(const Geometry& g, size_t y0, size_t y1) {
    if (count && y0 == ky0 && y1 == ky1) return;
    ky0 = y0, ky1 = y1, count = 0;
    for (size_t ky = y0; ky < y1; ++ky)
      for (size_t kx = 0; kx < g.KW; ++kx, ++count) {
        tap[count] = ky * g.KW + kx;
        offset[count] = ((ky - y0) * g.DH * g.IW + kx * g.DW) * g.C;
      }
  }
};

// Packed [C bias][taps][C weights].
template <class Arch>
void dwconv(const ConvGeometry& g, const float* in, const float* packed, const float* /*zero*/, float* out, size_t p0,
            size_t p1, float out_min, float out_max) {
  const size_t C = g.C;
  const float* bias = packed;
  const float* wts = packed + C;
  // A window wholly inside the input lists its taps as fixed offsets from its first pixel, in the
  // walk's row-major order (as the pools do), so the same operations run without walking it.
  Window<Arch> inside, win;
  const size_t taps = g.KH * g.KW;
  size_t offset[kMaxTaps];
  if (taps <= kMaxTaps) {
    tap_offsets(g, offset);
    for (size_t j = 0; j < taps; ++j) inside.tap[j] = j;
    inside.count = taps;
  }
  // Runs of kRow (or 2) pixels of one output row whose windows hold every tap column share their
  // taps: the tap rows inside the input are the output row's. They take dwconv_row, the top and
  // bottom rows of the map too (at 7x7 with a 5x5 kernel that is 27 of 49 pixels, where only 9
  // have their whole window inside). The columns holding every tap column are one interval, so the
  // run's first and last pixel decide.
  constexpr size_t kRow = 4;
  const bool rows = C >= vec<Arch>::size && taps <= kMaxTaps;
  auto every_column = [&](size_t ox) {
    const TapSpan x = taps_inside(ox, g.SW, g.DW, g.PL, g.IW, g.KW);
    return x.begin == 0 && x.end == g.KW;
  };
  DwRowTaps row_taps;
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t p = p0; p < p1; ++p, px.next()) {
    const float* in_n = in + px.n * g.IH * g.IW * C;
    float* o = out + p * C;
    if (rows && p + 2 <= p1 && px.ox + 2 <= g.OW && every_column(px.ox)) {
      const size_t run = p + kRow <= p1 && px.ox + kRow <= g.OW && every_column(px.ox + kRow - 1) ? kRow
                         : every_column(px.ox + 1)                                                ? 2
                                                                                                  : 0;
      const TapSpan y = taps_inside(px.oy, g.SH, g.DH, g.PT, g.IH, g.KH);
      if (run && y.begin < y.end) {
        row_taps.cover(g, y.begin, y.end);
        const size_t iy = px.oy * g.SH + y.begin * g.DH - g.PT, ix = px.ox * g.SW - g.PL;
        const float* base[kRow];
        for (size_t i = 0; i < run; ++i) base[i] = in_n + (iy * g.IW + ix + i * g.SW) * C;
        const size_t* off = row_taps.offset;
        const size_t* tp = row_taps.tap;
        const bool columns = run == kRow && g.DW == 1;  // dwconv_row_columns for strides 1 and 2, 3 or 5 taps
        if (columns && g.SW == 1 && g.KW == 3)
          dwconv_row_columns<Arch, kRow, 3, 1>(base[0], off, tp, row_taps.count, wts, C, bias, o, out_min, out_max);
        else if (columns && g.SW == 1 && g.KW == 5)
          dwconv_row_columns<Arch, kRow, 5, 1>(base[0], off, tp, row_taps.count, wts, C, bias, o, out_min, out_max);
        else if (columns && g.SW == 2 && g.KW == 3)
          dwconv_row_columns<Arch, kRow, 3, 2>(base[0], off, tp, row_taps.count, wts, C, bias, o, out_min, out_max);
        else if (columns && g.SW == 2 && g.KW == 5)
          dwconv_row_columns<Arch, kRow, 5, 2>(base[0], off, tp, row_taps.count, wts, C, bias, o, out_min, out_max);
        else if (run == kRow)
          dwconv_row<Arch, kRow>(base, row_taps.offset, row_taps.tap, row_taps.count, wts, C, bias, o, out_min,
                                 out_max);
        else
          dwconv_row<Arch, 2>(base, row_taps.offset, row_taps.tap, row_taps.count, wts, C, bias, o, out_min, out_max);
        for (size_t i = 1; i < run; ++i) px.next();
        p += run - 1;
        continue;
      }
    }
    size_t iy = 0, ix = 0;
    const bool interior = taps <= kMaxTaps && window_inside(g, px.oy, px.ox, iy, ix);
    if (interior) {
      const float* base = in_n + (iy * g.IW + ix) * C;
      for (size_t j = 0; j < taps; ++j) inside.in[j] = base + offset[j];
      dwconv_channels<Arch>(inside, wts, C, bias, o, true, out_min, out_max);
      continue;
    }
    const TapWindow tw = tap_window(g, px.oy, px.ox);
    TapWalk at = tap_walk_begin(tw);
    for (bool first = true; first || !tap_walk_done(tw, at); first = false) {  // once if empty
      next_window_list<Arch>(g, in_n, tw, at, win);
      dwconv_channels<Arch>(win, wts, C, first ? bias : o, o, tap_walk_done(tw, at), out_min, out_max);
    }
  }
}

// --- Pools -----------------------------------------------------------------------------------
// MaxPool: a window with no tap inside the input gives -inf. AvgPool: sums, then divides by
// avgpool_divisor (kernels/window.h) after the last list.
template <class Arch, size_t NV, bool kMax>
inline void pool_block(const Window<Arch>& win, size_t c, const float* init, float* out, bool last, vec<Arch> divisor) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  V acc[NV];
  Q8_UNROLL
  for (size_t v = 0; v < NV; ++v)
    acc[v] = init ? V::load_unaligned(init + c + v * W) : V(kMax ? -__builtin_inff() : 0.0f);
  for (size_t j = 0; j < win.count; ++j) {
    const float* ip = win.in[j] + c;
    Q8_UNROLL
    for (size_t v = 0; v < NV; ++v) {
      const V x = V::load_unaligned(ip + v * W);
      // Max: m = (x > m || x is NaN) ? x : m. Ties keep the earlier tap; a NaN wins and stays.
      acc[v] = kMax ? xsimd::select(xsimd::isnan(x), x, pick_gt<Arch>(x, acc[v])) : acc[v] + x;
    }
  }
  Q8_UNROLL
  for (size_t v = 0; v < NV; ++v)
    (kMax || !last ? acc[v] : divide<Arch>(acc[v], divisor)).store_unaligned(out + c + v * W);
}

// Every channel of one list of taps: blocks of vectors, then the rest.
template <class Arch, bool kMax>
inline void pool_channels(const Window<Arch>& win, size_t C, const float* init, float* o, bool last, float fdiv) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  const V vdiv(fdiv);
  size_t c = 0;
  for (; c + 4 * W <= C; c += 4 * W) pool_block<Arch, 4, kMax>(win, c, init, o, last, vdiv);
  for (; c + 2 * W <= C; c += 2 * W) pool_block<Arch, 2, kMax>(win, c, init, o, last, vdiv);
  for (; c + W <= C; c += W) pool_block<Arch, 1, kMax>(win, c, init, o, last, vdiv);
  // The rest as one vector ending at C when the window starts here (init null): the channels it
  // repeats get the same operations again, so the same bits. Lane by lane, the data-dependent
  // compare of MaxPool mispredicts about every other tap (ShuffleNet's 24 channels ran 10x slower
  // than 32). With init, repeating channels would add a list twice to the average, so not then.
  if (c < C && C >= W && !init) {
    pool_block<Arch, 1, kMax>(win, C - W, nullptr, o, last, vdiv);
    return;
  }
  for (; c < C; ++c) {
    float acc = init ? init[c] : kMax ? -__builtin_inff() : 0.0f;
    for (size_t j = 0; j < win.count; ++j) {
      const float x = win.in[j][c];
      acc = kMax ? (x > acc || x != x ? x : acc) : acc + x;
    }
    o[c] = kMax || !last ? acc : acc / fdiv;
  }
}

template <class Arch, bool kMax>
void pool(const PoolGeometry& g, const float* in, float* out, size_t p0, size_t p1) {
  const size_t C = g.C;
  Window<Arch> win;
  // A window wholly inside the input lists its taps as fixed offsets from its first pixel, in the
  // walk's row-major order, so the same operations run without walking the window.
  const size_t taps = g.KH * g.KW;
  size_t offset[kMaxTaps];
  if (taps <= kMaxTaps) tap_offsets(g, offset);
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t p = p0; p < p1; ++p, px.next()) {
    const float* in_n = in + px.n * g.IH * g.IW * C;
    float* o = out + p * C;
    size_t iy = 0, ix = 0;
    if (taps <= kMaxTaps && window_inside(g, px.oy, px.ox, iy, ix)) {
      const float* base = in_n + (iy * g.IW + ix) * C;
      for (size_t j = 0; j < taps; ++j) win.in[j] = base + offset[j];
      win.count = taps;
      const float fdiv = static_cast<float>(taps);
      pool_channels<Arch, kMax>(win, C, nullptr, o, true, fdiv);
      continue;
    }
    const TapWindow tw = tap_window(g, px.oy, px.ox);
    const size_t divisor = kMax ? 1 : avgpool_divisor(g, px.oy, px.ox, tw);
    if (divisor == 0) {  // AvgPool window with nothing to count: the mean of nothing is 0
      for (size_t c = 0; c < C; ++c) o[c] = 0.0f;
      continue;
    }
    const float fdiv = static_cast<float>(divisor);
    TapWalk at = tap_walk_begin(tw);
    for (bool first = true; first || !tap_walk_done(tw, at); first = false) {  // once if empty
      next_window_list<Arch>(g, in_n, tw, at, win);
      pool_channels<Arch, kMax>(win, C, first ? nullptr : o, o, tap_walk_done(tw, at), fdiv);
    }
  }
}

template <class Arch>
void maxpool(const PoolGeometry& g, const float* in, float* out, size_t p0, size_t p1) {
  pool<Arch, true>(g, in, out, p0, p1);
}

template <class Arch>
void avgpool(const PoolGeometry& g, const float* in, float* out, size_t p0, size_t p1) {
  pool<Arch, false>(g, in, out, p0, p1);
}

// Sums run over hw in order for every channel, as in the scalar reference.
template <class Arch>
void global_avgpool(size_t HW, size_t C, const float* in, float* out, size_t n0, size_t n1) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  const float fhw = static_cast<float>(HW);
  const V vhw(fhw);
  for (size_t n = n0; n < n1; ++n) {
    const float* in_n = in + n * HW * C;
    float* o = out + n * C;
    size_t c = 0;
    for (; c + 4 * W <= C; c += 4 * W) {
      V acc[4] = {V(0.0f), V(0.0f), V(0.0f), V(0.0f)};
      for (size_t i = 0; i < HW; ++i) {
        Q8_UNROLL
        for (size_t v = 0; v < 4; ++v) acc[v] += V::load_unaligned(in_n + i * C + c + v * W);
      }
      Q8_UNROLL
      for (size_t v = 0; v < 4; ++v) divide<Arch>(acc[v], vhw).store_unaligned(o + c + v * W);
    }
    for (; c + W <= C; c += W) {
      V acc(0.0f);
      for (size_t i = 0; i < HW; ++i) acc += V::load_unaligned(in_n + i * C + c);
      divide<Arch>(acc, vhw).store_unaligned(o + c);
    }
    for (; c < C; ++c) {
      float acc = 0.0f;
      for (size_t i = 0; i < HW; ++i) acc += in_n[i * C + c];
      o[c] = acc / fhw;
    }
  }
}

// --- Elementwise ---------------------------------------------------------------------------
template <class Arch, BinaryOp Op>
inline vec<Arch> apply_binary(vec<Arch> a, vec<Arch> b) {
  static_assert(Op != BinaryOp::Pow, "Pow has no table entry");
  if constexpr (Op == BinaryOp::Add)
    return a + b;
  else if constexpr (Op == BinaryOp::Sub)
    return a - b;
  else if constexpr (Op == BinaryOp::Mul)
    return a * b;
  else
    return divide<Arch>(a, b);
}

template <BinaryOp Op>
inline float apply_binary_scalar(float a, float b) {
  if constexpr (Op == BinaryOp::Add)
    return a + b;
  else if constexpr (Op == BinaryOp::Sub)
    return a - b;
  else if constexpr (Op == BinaryOp::Mul)
    return a * b;
  else
    return a / b;
}

template <class Arch, BinaryOp Op>
void binary(size_t n, const float* a, const float* b, float* out, float lo, float hi) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  const V vlo(lo), vhi(hi);
  size_t i = 0;
  for (; i + W <= n; i += W)
    clamp_vec<Arch>(apply_binary<Arch, Op>(V::load_unaligned(a + i), V::load_unaligned(b + i)), vlo, vhi)
        .store_unaligned(out + i);
  for (; i < n; ++i) out[i] = clamp_scalar<Arch>(apply_binary_scalar<Op>(a[i], b[i]), lo, hi);
}

template <class Arch, BinaryOp Op>
void binary_rows(size_t rows, size_t n, const float* a, size_t a_rs, const float* b, size_t b_rs, float* out, float lo,
                 float hi) {
  for (size_t r = 0; r < rows; ++r) binary<Arch, Op>(n, a + r * a_rs, b + r * b_rs, out + r * n, lo, hi);
}

template <class Arch>
void clamp(size_t n, const float* x, float* out, float lo, float hi) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  const V vlo(lo), vhi(hi);
  size_t i = 0;
  for (; i + W <= n; i += W) clamp_vec<Arch>(V::load_unaligned(x + i), vlo, vhi).store_unaligned(out + i);
  for (; i < n; ++i) out[i] = clamp_scalar<Arch>(x[i], lo, hi);
}

// --- Activations -----------------------------------------------------------------------------
// The algorithms of kernels/f32_math.h on batches: the same operations as the scalar reference
// (f32_unary__scalar), lane by lane.
template <class Arch>
struct SimdOps {
  using F = vec<Arch>;
  using I = xsimd::batch<int32_t, Arch>;
  static F fma(F a, F b, F c) { return fused_multiply_add<Arch>(a, b, c); }
  static F select(xsimd::batch_bool<float, Arch> m, F a, F b) { return xsimd::select(m, a, b); }
  static I bits(F x) { return xsimd::bitwise_cast<I>(x); }
  static F from_bits(I i) { return xsimd::bitwise_cast<F>(i); }
  static I shift_to_exponent(I k) { return k << 23; }
  static F div(F a, F b) { return divide<Arch>(a, b); }
  static F sqrt(F x) {
#if defined(__aarch64__)
    return F(vsqrtq_f32(x));  // xsimd 8.1's NEON sqrt is a reciprocal estimate with Newton steps
#else
    return xsimd::sqrt(x);  // sqrtps
#endif
  }
};

// N batches evaluated in lock-step, operation by operation. The exponential family's dependency
// chain (clamps, range reduction, a Horner polynomial, the scaling by 2^n, a division) is some 50
// cycles long, while one batch needs a third of that in issue slots: one batch at a time leaves
// the vector pipes waiting on latency. With N independent chains interleaved instruction by
// instruction they overlap (on Zen 3, Silu 0.83 -> 0.61 ns an element with N = 4; 2, 3 and 8 were
// slower). Every batch still goes through the same operations, so the bits are those of SimdOps,
// lane by lane.
template <class T, size_t N>
struct Group {
  T v[N];
  Group() = default;
  Group(const T& t) {  // NOLINT: a broadcast, as a batch converts from a float
    Q8_UNROLL for (size_t i = 0; i < N; ++i) v[i] = t;
  }
  template <class S, class = std::enable_if_t<std::is_arithmetic_v<S>>>
  explicit Group(S s) : Group(T(s)) {}
};

template <class Fn, class T, size_t N>
inline auto each(Fn f, const Group<T, N>& a) {
  Group<decltype(f(a.v[0])), N> r;
  Q8_UNROLL for (size_t i = 0; i < N; ++i) r.v[i] = f(a.v[i]);
  return r;
}
template <class Fn, class T, class U, size_t N>
inline auto each(Fn f, const Group<T, N>& a, const Group<U, N>& b) {
  Group<decltype(f(a.v[0], b.v[0])), N> r;
  Q8_UNROLL for (size_t i = 0; i < N; ++i) r.v[i] = f(a.v[i], b.v[i]);
  return r;
}
template <class Fn, class T, class U, class W, size_t N>
inline auto each(Fn f, const Group<T, N>& a, const Group<U, N>& b, const Group<W, N>& c) {
  Group<decltype(f(a.v[0], b.v[0], c.v[0])), N> r;
  Q8_UNROLL for (size_t i = 0; i < N; ++i) r.v[i] = f(a.v[i], b.v[i], c.v[i]);
  return r;
}

#define Q8_GROUP_BINARY(op)                                             \
  template <class T, size_t N>                                          \
  inline auto operator op(const Group<T, N>& a, const Group<T, N>& b) { \
    return each([](const T& x, const T& y) { return x op y; }, a, b);   \
  }
Q8_GROUP_BINARY(+)
Q8_GROUP_BINARY(-)
Q8_GROUP_BINARY(*)
Q8_GROUP_BINARY(&)
Q8_GROUP_BINARY(|)
Q8_GROUP_BINARY(<)
Q8_GROUP_BINARY(>)
#undef Q8_GROUP_BINARY
template <class T, size_t N>
inline Group<T, N> operator-(const Group<T, N>& a) {
  return each([](const T& x) { return -x; }, a);
}
template <class T, size_t N>
inline Group<T, N> operator>>(const Group<T, N>& a, int s) {
  return each([s](const T& x) { return x >> s; }, a);
}

template <class Arch, size_t N>
struct GroupOps {
  using O = SimdOps<Arch>;
  using F = Group<typename O::F, N>;
  using I = Group<typename O::I, N>;
  using M = xsimd::batch_bool<float, Arch>;
  static F fma(const F& a, const F& b, const F& c) {
    return each([](const typename O::F& x, const typename O::F& y, const typename O::F& z) { return O::fma(x, y, z); },
                a, b, c);
  }
  static F select(const Group<M, N>& m, const F& a, const F& b) {
    return each([](const M& k, const typename O::F& x, const typename O::F& y) { return O::select(k, x, y); }, m, a, b);
  }
  static I bits(const F& x) {
    return each([](const typename O::F& y) { return O::bits(y); }, x);
  }
  static F from_bits(const I& i) {
    return each([](const typename O::I& k) { return O::from_bits(k); }, i);
  }
  static I shift_to_exponent(const I& k) {
    return each([](const typename O::I& j) { return O::shift_to_exponent(j); }, k);
  }
  static F div(const F& a, const F& b) {
    return each([](const typename O::F& y, const typename O::F& z) { return O::div(y, z); }, a, b);
  }
  static F sqrt(const F& x) {
    return each([](const typename O::F& y) { return O::sqrt(y); }, x);
  }
};

// out[i] = f(x[i]): f is called with GroupOps<Arch, N> for N = kGroup (groups of kGroup whole
// batches), then N = 1 (the whole batches left); the last partial batch is loaded zero-padded
// (load_partial) and goes through the same code, so a tail element takes the same path as any
// other. Flattened: every call inside is inlined, or a Group would be passed through memory.
constexpr size_t kGroup = 4;

template <class Arch, class Fn>
Q8_FLATTEN inline void map_unary(size_t n, const float* x, float* out, Fn f) {
  using V = vec<Arch>;
  constexpr size_t W = V::size;
  using G = GroupOps<Arch, kGroup>;
  using One = GroupOps<Arch, 1>;
  size_t i = 0;
  for (; i + kGroup * W <= n; i += kGroup * W) {
    typename G::F g;
    Q8_UNROLL for (size_t j = 0; j < kGroup; ++j) g.v[j] = V::load_unaligned(x + i + j * W);
    g = f(G{}, g);
    Q8_UNROLL for (size_t j = 0; j < kGroup; ++j) g.v[j].store_unaligned(out + i + j * W);
  }
  for (; i + W <= n; i += W) f(One{}, typename One::F(V::load_unaligned(x + i))).v[0].store_unaligned(out + i);
  if (i < n) store_partial<Arch>(f(One{}, typename One::F(load_partial<Arch>(x + i, n - i))).v[0], out + i, n - i);
}

// Each lambda gets the ops of a group (GroupOps, only its type matters) and the group.
template <class Arch>
void unary(size_t n, const float* x, float* out, const UnaryParams& p) {
  const float alpha = p.alpha, beta = p.beta;
  switch (p.kind) {
    case UnaryKind::Sigmoid:
      map_unary<Arch>(n, x, out, [](auto o, const auto& v) { return f32_math::sigmoid<decltype(o)>(v); });
      return;
    case UnaryKind::Tanh:
      map_unary<Arch>(n, x, out, [](auto o, const auto& v) { return f32_math::tanh<decltype(o)>(v); });
      return;
    case UnaryKind::HardSigmoid:
      map_unary<Arch>(n, x, out, [=](auto o, const auto& v) {
        using F = typename decltype(o)::F;
        return f32_math::hard_sigmoid<decltype(o)>(v, F(alpha), F(beta));
      });
      return;
    case UnaryKind::HardSwish:
      map_unary<Arch>(n, x, out, [](auto o, const auto& v) { return f32_math::hard_swish<decltype(o)>(v); });
      return;
    case UnaryKind::LeakyRelu:
      map_unary<Arch>(n, x, out, [=](auto o, const auto& v) {
        return f32_math::leaky_relu<decltype(o)>(v, typename decltype(o)::F(alpha));
      });
      return;
    case UnaryKind::Elu:
      map_unary<Arch>(n, x, out, [=](auto o, const auto& v) {
        return f32_math::elu<decltype(o)>(v, typename decltype(o)::F(alpha));
      });
      return;
    case UnaryKind::Erf:
      map_unary<Arch>(n, x, out, [](auto o, const auto& v) { return f32_math::erf<decltype(o)>(v); });
      return;
    case UnaryKind::Sqrt:
      map_unary<Arch>(n, x, out, [](auto o, const auto& v) { return decltype(o)::sqrt(v); });
      return;
    case UnaryKind::Exp:
      map_unary<Arch>(n, x, out, [](auto o, const auto& v) { return f32_math::exp<decltype(o)>(v); });
      return;
    case UnaryKind::Silu:
      map_unary<Arch>(n, x, out, [](auto o, const auto& v) { return f32_math::silu<decltype(o)>(v); });
      return;
    case UnaryKind::Gelu:
      map_unary<Arch>(n, x, out, [](auto o, const auto& v) { return f32_math::gelu<decltype(o)>(v); });
      return;
  }
}

}  // namespace f32_simd
}  // namespace
}  // namespace q8::kern
