// Scalar fp32 kernels: plain C++ loops, the oracle the SIMD tables are tested against.
//
// Canonical arithmetic. Every table (scalar, avx2, avx512, neon) performs, for every output
// element, exactly these IEEE-754 single-precision operations in exactly this order, so all
// tables give the same bits at every range split (tiles, pixel blocks and thread ranges only
// choose which outputs are computed together, never how one is computed):
//   conv (igemm via f32_conv_run), gemm (f32_gemm_run):
//       acc = bias;  for tap t in order: for input channel k in order: acc = fma(a, w, acc);
//       out = clamp(acc), or clamp(acc + residual) with a fused residual Add (the Add's own
//       operation, in its operand order).  One fused multiply-add per term (std::fma here,
//       vfmadd/fmla in SIMD), no partial accumulators, no reassociation. Padding taps read the
//       zero row: fma(0, w, acc).
//       A reduction split into blocks (igemm_block) stores acc unclamped after a block and
//       reloads it for the next: the same float, so the same sequence of operations.
//   dwconv: acc = bias; for every tap inside the input, row-major: acc = fma(x, w, acc);
//       out = clamp(acc). Taps outside the input are skipped (not fma'd with 0), and never visited:
//       every kernel walks only the window's taps inside the input (kernels/window.h), so a pixel
//       costs the number of those taps, however large the kernel, pads or strides.
//   maxpool: m = -inf; for every tap inside the input, row-major: m = (x > m || x != x) ? x : m.
//       Ties keep the earlier tap (so -0/+0 order is the input's); a NaN wins and stays (the
//       last NaN of the window). A window with no tap inside gives -inf.
//   avgpool: s = 0.0f; for every tap inside the input, row-major: s = s + x;
//       out = count ? s / float(count) : 0.0f (a correctly rounded division, not a multiply by
//       a reciprocal), count as in avgpool_divisor
//       (kernels/window.h, one rule for every path).
//   global_avgpool: s = 0.0f; for hw in order: s = s + x; out = s / float(HW).
//   binary / binary_rows: out = clamp(a op b), op one of + - * / (a correctly rounded division).
//   clamp(x, lo, hi): y = x < lo ? lo : x; y = y > hi ? hi : y. NaN passes through unchanged;
//       x = -0 against a bound of +0 (or the reverse) keeps x.
// Built with -ffp-contract=off (kernels/CMakeLists.txt), so no a*b+c here is fused unless written
// as std::fma.
#include <cmath>
#include <cstddef>
#include <limits>

#include "kernels/f32.h"
#include "kernels/window.h"

namespace q8::kern {
namespace {

constexpr size_t kMR = 4, kNR = 4;

// std::fma is one correctly rounded operation everywhere; an x86 build without -mfma calls libm's
// fmaf for it (slower, same bits). The scalar table is the oracle and the fallback, not the fast
// path, so it is not cloned per ISA: function multiversioning resolves through ifuncs at load
// time, before ThreadSanitizer's runtime is up, and crashed the TSan build.
#define Q8_FMA_CLONES

// The canonical clamp (see above); the SIMD tables spell it min/max with this operand order.
float clamp_to(float x, float lo, float hi) {
  x = x < lo ? lo : x;
  return x > hi ? hi : x;
}

// Output pixels [0, mr) x channels [0, nc) of one block of the reduction: taps [0, ks) of each
// pixel (pixel i's pointers at a + i * a_stride), channels [a_offset, a_offset + kc) of each tap,
// weights [ks][kc][nr]. The sums start from `bias`, or from the partial sums in c when it is null;
// c gets clamp(acc + residual) (a residual laid out like c) or clamp(acc) when `last`, else the
// sums as they are. The nr channels of a pixel run side by side (independent sums, each in the
// canonical order); padding lanes past nc are computed from zero weights and dropped.
Q8_FMA_CLONES void f32_igemm_block_4x4__scalar(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a,
                                               size_t a_stride, size_t a_offset, const float* bias, const float* w,
                                               float* c, size_t c_stride, const float* residual, float out_min,
                                               float out_max, bool last) {
  for (size_t i = 0; i < mr; ++i) {
    float acc[kNR] = {};
    for (size_t j = 0; j < kNR; ++j) acc[j] = bias ? bias[j] : j < nc ? c[i * c_stride + j] : 0.0f;
    for (size_t t = 0; t < ks; ++t) {
      const float* x = a[i * a_stride + t] + a_offset;
      for (size_t k = 0; k < kc; ++k) {
        const float* wk = w + (t * kc + k) * kNR;
        for (size_t j = 0; j < kNR; ++j) acc[j] = std::fma(x[k], wk[j], acc[j]);
      }
    }
    for (size_t j = 0; j < nc; ++j) {
      if (!last) {
        c[i * c_stride + j] = acc[j];
        continue;
      }
      const float sum = residual ? acc[j] + residual[i * c_stride + j] : acc[j];
      c[i * c_stride + j] = clamp_to(sum, out_min, out_max);
    }
  }
}

// The whole reduction in one block: the panel is [nr bias][ks][kc][nr weights].
Q8_FMA_CLONES void f32_igemm_4x4__scalar(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a,
                                         const float* w, float* c, size_t c_stride, const float* residual,
                                         float out_min, float out_max) {
  f32_igemm_block_4x4__scalar(mr, nc, kc, ks, a, ks, 0, w, w + kNR, c, c_stride, residual, out_min, out_max, true);
}

Q8_FMA_CLONES void f32_gemm_4x4__scalar(size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride,
                                        const float* w, float* c, size_t c_stride, float out_min, float out_max) {
  const float* bias = w;
  const float* weights = w + kNR;
  for (size_t i = 0; i < mr; ++i) {
    float acc[kNR];
    for (size_t j = 0; j < kNR; ++j) acc[j] = bias[j];
    for (size_t k = 0; k < kc; ++k)
      for (size_t j = 0; j < kNR; ++j) acc[j] = std::fma(a[i * a_stride + k], weights[k * kNR + j], acc[j]);
    for (size_t j = 0; j < nc; ++j) c[i * c_stride + j] = clamp_to(acc[j], out_min, out_max);
  }
}

// Calls f(ky, kx, iy, ix) for every tap of window w (the taps of one output pixel inside the
// input, kernels/window.h), row-major. Taps outside the input are never visited, so the cost is
// the number of taps inside, whatever the kernel size.
template <class Geometry, class F>
void for_each_tap(const Geometry& g, const TapWindow& w, F&& f) {
  for (size_t ky = w.ky0, iy = w.iy0; ky < w.ky1; ++ky, iy += g.DH)
    for (size_t kx = w.kx0, ix = w.ix0; kx < w.kx1; ++kx, ix += g.DW) f(ky, kx, iy, ix);
}

// Packed [C bias][taps][C weights]; taps outside the input add nothing, so `zero` is not needed.
Q8_FMA_CLONES void f32_dwconv__scalar(const ConvGeometry& g, const float* in, const float* packed,
                                      const float* /*zero*/, float* out, size_t p0, size_t p1, float out_min,
                                      float out_max) {
  const size_t C = g.C;
  for (size_t p = p0; p < p1; ++p) {
    const size_t n = p / (g.OH * g.OW), oy = p % (g.OH * g.OW) / g.OW, ox = p % g.OW;
    const float* in_n = in + n * g.IH * g.IW * C;
    const TapWindow w = tap_window(g, oy, ox);
    for (size_t c = 0; c < C; ++c) {
      float acc = packed[c];
      for_each_tap(g, w, [&](size_t ky, size_t kx, size_t iy, size_t ix) {
        acc = std::fma(in_n[(iy * g.IW + ix) * C + c], packed[C + (ky * g.KW + kx) * C + c], acc);
      });
      out[p * C + c] = clamp_to(acc, out_min, out_max);
    }
  }
}

// Positions outside the input are ignored, not read as zeros; an empty window gives -inf; a NaN
// in the window gives NaN.
void f32_maxpool__scalar(const PoolGeometry& g, const float* in, float* out, size_t p0, size_t p1) {
  const size_t C = g.C;
  for (size_t p = p0; p < p1; ++p) {
    const size_t n = p / (g.OH * g.OW), oy = p % (g.OH * g.OW) / g.OW, ox = p % g.OW;
    const float* in_n = in + n * g.IH * g.IW * C;
    const TapWindow w = tap_window(g, oy, ox);
    for (size_t c = 0; c < C; ++c) {
      float m = -std::numeric_limits<float>::infinity();
      for_each_tap(g, w, [&](size_t, size_t, size_t iy, size_t ix) {
        const float x = in_n[(iy * g.IW + ix) * C + c];
        m = x > m || x != x ? x : m;
      });
      out[p * C + c] = m;
    }
  }
}

// Divides by avgpool_divisor (kernels/window.h); a window with no tap to count gives 0.
void f32_avgpool__scalar(const PoolGeometry& g, const float* in, float* out, size_t p0, size_t p1) {
  const size_t C = g.C;
  for (size_t p = p0; p < p1; ++p) {
    const size_t n = p / (g.OH * g.OW), oy = p % (g.OH * g.OW) / g.OW, ox = p % g.OW;
    const float* in_n = in + n * g.IH * g.IW * C;
    const TapWindow w = tap_window(g, oy, ox);
    const size_t divisor = avgpool_divisor(g, oy, ox, w);
    for (size_t c = 0; c < C; ++c) {
      float sum = 0.0f;
      for_each_tap(g, w, [&](size_t, size_t, size_t iy, size_t ix) { sum += in_n[(iy * g.IW + ix) * C + c]; });
      out[p * C + c] = divisor ? sum / static_cast<float>(divisor) : 0.0f;
    }
  }
}

void f32_global_avgpool__scalar(size_t HW, size_t C, const float* in, float* out, size_t n0, size_t n1) {
  for (size_t n = n0; n < n1; ++n)
    for (size_t c = 0; c < C; ++c) {
      float sum = 0.0f;
      for (size_t i = 0; i < HW; ++i) sum += in[(n * HW + i) * C + c];
      out[n * C + c] = sum / static_cast<float>(HW);
    }
}

template <BinaryOp Op>
float apply_binary(float a, float b) {
  static_assert(Op != BinaryOp::Pow, "Pow has no table entry");
  if constexpr (Op == BinaryOp::Add)
    return a + b;
  else if constexpr (Op == BinaryOp::Sub)
    return a - b;
  else if constexpr (Op == BinaryOp::Mul)
    return a * b;
  else
    return a / b;
}

template <BinaryOp Op>
void binary(size_t n, const float* a, const float* b, float* out, float lo, float hi) {
  for (size_t i = 0; i < n; ++i) out[i] = clamp_to(apply_binary<Op>(a[i], b[i]), lo, hi);
}

template <BinaryOp Op>
void binary_rows(size_t rows, size_t n, const float* a, size_t a_rs, const float* b, size_t b_rs, float* out, float lo,
                 float hi) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i)
      out[r * n + i] = clamp_to(apply_binary<Op>(a[r * a_rs + i], b[r * b_rs + i]), lo, hi);
}

constexpr auto f32_add__scalar = &binary<BinaryOp::Add>;
constexpr auto f32_sub__scalar = &binary<BinaryOp::Sub>;
constexpr auto f32_mul__scalar = &binary<BinaryOp::Mul>;
constexpr auto f32_div__scalar = &binary<BinaryOp::Div>;
constexpr auto f32_add_rows__scalar = &binary_rows<BinaryOp::Add>;
constexpr auto f32_sub_rows__scalar = &binary_rows<BinaryOp::Sub>;
constexpr auto f32_mul_rows__scalar = &binary_rows<BinaryOp::Mul>;
constexpr auto f32_div_rows__scalar = &binary_rows<BinaryOp::Div>;

void f32_clamp__scalar(size_t n, const float* x, float* out, float lo, float hi) {
  for (size_t i = 0; i < n; ++i) out[i] = clamp_to(x[i], lo, hi);
}

const F32Kernels k_scalar_table = {
    "scalar",
    {kMR, kNR, Q8_KERNEL(f32_igemm_4x4__scalar), Q8_KERNEL(f32_igemm_block_4x4__scalar)},
    {},  // conv_narrow: the reference has one tile
    Q8_KERNEL(f32_gemm_4x4__scalar),
    Q8_KERNEL(f32_dwconv__scalar),
    Q8_KERNEL(f32_maxpool__scalar),
    Q8_KERNEL(f32_avgpool__scalar),
    Q8_KERNEL(f32_global_avgpool__scalar),
    {Q8_KERNEL(f32_add__scalar), Q8_KERNEL(f32_sub__scalar), Q8_KERNEL(f32_mul__scalar), Q8_KERNEL(f32_div__scalar)},
    {Q8_KERNEL(f32_add_rows__scalar), Q8_KERNEL(f32_sub_rows__scalar), Q8_KERNEL(f32_mul_rows__scalar),
     Q8_KERNEL(f32_div_rows__scalar)},
    Q8_KERNEL(f32_clamp__scalar),
    Q8_KERNEL(f32_unary__scalar),
};

}  // namespace

const F32Kernels* f32_kernels_scalar() { return &k_scalar_table; }

}  // namespace q8::kern
