// Scalar int8 kernels other than GEMM: depthwise conv, pools, add, quantize, dequantize, and the
// scalar table. Plain loops that spell out kernels/qu8.h's formulas one IEEE operation at a time;
// built with -ffp-contract=off (kernels/CMakeLists.txt), so no product is fused into an FMA.
// This is the oracle: every SIMD table must produce exactly these bytes.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"

namespace q8::kern {
namespace {

// x = (float)acc * m; clamp to the integer bounds relative to z_out; round half to even; + z_out.
uint8_t requantize(int32_t acc, float m, const QU8Requant& p) {
  const float lo = static_cast<float>(static_cast<int32_t>(p.out_min) - p.out_zero_point);
  const float hi = static_cast<float>(static_cast<int32_t>(p.out_max) - p.out_zero_point);
  float x = static_cast<float>(acc) * m;
  x = x > lo ? x : lo;
  x = x < hi ? x : hi;
  return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyintf(x)) + p.out_zero_point);
}

// (n, oy, ox) of output pixel p.
struct Pixel {
  size_t n, oy, ox;
};
Pixel pixel_of(size_t p, size_t OH, size_t OW) { return {p / (OH * OW), p % (OH * OW) / OW, p % OW}; }

// Depthwise. Packed [C int32 bias'][taps][C int8 w][C float M] with bias' = bias - z_a * sum_t w:
//   acc = bias[c] + sum_t (a_t - z_a) * w_t = bias'[c] + sum_t a_t * w_t,
// where the sum runs over every tap, so a tap outside the input reads z_a from the `zero` row
// (adding z_a * w_t, which cancels its share of the folded term).
void qu8_dwconv__scalar(const ConvGeometry& g, const uint8_t* in, const void* packed,
                        const uint8_t* zero, uint8_t* out, size_t p0, size_t p1,
                        const QU8Requant& p) {
  const size_t C = g.C, taps = g.taps();
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const uint8_t* bias_bytes = base;
  const int8_t* w = reinterpret_cast<const int8_t*>(base + C * sizeof(int32_t));
  const uint8_t* m_bytes = base + C * sizeof(int32_t) + taps * C;  // not necessarily aligned
  for (size_t px = p0; px < p1; ++px) {
    const Pixel q = pixel_of(px, g.OH, g.OW);
    const uint8_t* in_n = in + q.n * g.IH * g.IW * C;
    for (size_t c = 0; c < C; ++c) {
      int32_t acc;
      std::memcpy(&acc, bias_bytes + c * sizeof(int32_t), sizeof acc);
      for (size_t ky = 0; ky < g.KH; ++ky) {
        const size_t iy = q.oy * g.SH + ky * g.DH - g.PT;  // wraps to huge above the input
        for (size_t kx = 0; kx < g.KW; ++kx) {
          const size_t ix = q.ox * g.SW + kx * g.DW - g.PL;
          const uint8_t* row = iy < g.IH && ix < g.IW ? in_n + (iy * g.IW + ix) * C : zero;
          acc += static_cast<int32_t>(row[c]) * static_cast<int32_t>(w[(ky * g.KW + kx) * C + c]);
        }
      }
      float m;
      std::memcpy(&m, m_bytes + c * sizeof(float), sizeof m);
      out[px * C + c] = requantize(acc, m, p);
    }
  }
}

// Positions outside the input are ignored; a window with none inside gives 0.
void qu8_maxpool__scalar(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0,
                         size_t p1) {
  const size_t C = g.C;
  for (size_t px = p0; px < p1; ++px) {
    const Pixel q = pixel_of(px, g.OH, g.OW);
    const uint8_t* in_n = in + q.n * g.IH * g.IW * C;
    for (size_t c = 0; c < C; ++c) {
      uint8_t m = 0;
      for (size_t ky = 0; ky < g.KH; ++ky) {
        const size_t iy = q.oy * g.SH + ky * g.DH - g.PT;
        if (iy >= g.IH) continue;
        for (size_t kx = 0; kx < g.KW; ++kx) {
          const size_t ix = q.ox * g.SW + kx * g.DW - g.PL;
          if (ix >= g.IW) continue;
          const uint8_t v = in_n[(iy * g.IW + ix) * C + c];
          m = v > m ? v : m;
        }
      }
      out[px * C + c] = m;
    }
  }
}

// The count an AveragePool divides by (as in the fp32 kernels): count_include_pad=false counts
// taps inside the input; true (ONNX) counts taps inside the padded input [-PT, IH+PB) x
// [-PL, IW+PR), so positions past the end pad (ceil_mode's partial last window) do not count.
size_t avgpool_count(const PoolGeometry& g, size_t oy, size_t ox) {
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

// acc = sum over the taps inside the input of (a - z_in) (a counted pad tap holds z_in, adding 0);
// x = (float)acc * (in_over_out / (float)count). A window with nothing to count has mean 0, so
// its scale is 0 and the output is z_out (clamped).
void qu8_avgpool__scalar(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0,
                         size_t p1, const QU8PoolParams& p) {
  const size_t C = g.C;
  for (size_t px = p0; px < p1; ++px) {
    const Pixel q = pixel_of(px, g.OH, g.OW);
    const uint8_t* in_n = in + q.n * g.IH * g.IW * C;
    const size_t count = avgpool_count(g, q.oy, q.ox);
    const float scale = count ? p.in_over_out / static_cast<float>(count) : 0.0f;
    for (size_t c = 0; c < C; ++c) {
      int32_t acc = 0;
      for (size_t ky = 0; ky < g.KH; ++ky) {
        const size_t iy = q.oy * g.SH + ky * g.DH - g.PT;
        if (iy >= g.IH) continue;
        for (size_t kx = 0; kx < g.KW; ++kx) {
          const size_t ix = q.ox * g.SW + kx * g.DW - g.PL;
          if (ix >= g.IW) continue;
          acc += static_cast<int32_t>(in_n[(iy * g.IW + ix) * C + c]) - p.in_zero_point;
        }
      }
      out[px * C + c] = requantize(acc, scale, p.out);
    }
  }
}

void qu8_global_avgpool__scalar(size_t HW, size_t C, const uint8_t* in, uint8_t* out, size_t n0,
                                size_t n1, const QU8PoolParams& p) {
  const float scale = HW ? p.in_over_out / static_cast<float>(HW) : 0.0f;
  for (size_t n = n0; n < n1; ++n)
    for (size_t c = 0; c < C; ++c) {
      int32_t acc = 0;
      for (size_t i = 0; i < HW; ++i)
        acc += static_cast<int32_t>(in[(n * HW + i) * C + c]) - p.in_zero_point;
      out[n * C + c] = requantize(acc, scale, p.out);
    }
}

// x = (float)(a - z_a) * Ma; y = (float)(b - z_b) * Mb; s = x + y (three roundings); requantize s.
void qu8_add__scalar(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out,
                     const QU8AddParams& p) {
  const float lo = static_cast<float>(static_cast<int32_t>(p.out.out_min) - p.out.out_zero_point);
  const float hi = static_cast<float>(static_cast<int32_t>(p.out.out_max) - p.out.out_zero_point);
  for (size_t i = 0; i < n; ++i) {
    const float x = static_cast<float>(static_cast<int32_t>(a[i]) - p.a_zero_point) * p.a_multiplier;
    const float y = static_cast<float>(static_cast<int32_t>(b[i]) - p.b_zero_point) * p.b_multiplier;
    float s = x + y;
    s = s > lo ? s : lo;
    s = s < hi ? s : hi;
    out[i] = static_cast<uint8_t>(static_cast<int32_t>(std::nearbyintf(s)) + p.out.out_zero_point);
  }
}

// t = x / s; t = min(max(t, -z), 255 - z) with a NaN becoming -z; q = round_half_even(t) + z.
void qu8_quantize__scalar(size_t n, const float* x, uint8_t* q, float scale, int32_t zero_point) {
  const float lo = static_cast<float>(-zero_point), hi = static_cast<float>(255 - zero_point);
  for (size_t i = 0; i < n; ++i) {
    float t = x[i] / scale;
    t = t > lo ? t : lo;  // false for NaN
    t = t < hi ? t : hi;
    q[i] = static_cast<uint8_t>(static_cast<int32_t>(std::nearbyintf(t)) + zero_point);
  }
}

void qu8_dequantize__scalar(size_t n, const uint8_t* q, float* y, float scale, int32_t zero_point) {
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int32_t>(q[i]) - zero_point) * scale;
}

// Constant-initialised, like every table.
const QU8Kernels k_scalar_table = {
    "scalar",
    kQu8ScalarMR,
    kQu8ScalarNR,
    &qu8_igemm_4x4c4__scalar,
    &qu8_gemm_4x4c4__scalar,
    &qu8_dwconv__scalar,
    &qu8_maxpool__scalar,
    &qu8_avgpool__scalar,
    &qu8_global_avgpool__scalar,
    &qu8_add__scalar,
    &qu8_quantize__scalar,
    &qu8_dequantize__scalar,
};

}  // namespace

const QU8Kernels* qu8_kernels_scalar() { return &k_scalar_table; }

}  // namespace q8::kern
