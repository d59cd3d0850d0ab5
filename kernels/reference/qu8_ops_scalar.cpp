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
#include "kernels/window.h"

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

// The int32 an int32 SIMD lane holds after summing to x: x modulo 2^32.
int32_t wrap32(int64_t x) { return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(x))); }

// (n, oy, ox) of output pixel p.
struct Pixel {
  size_t n, oy, ox;
};
Pixel pixel_of(size_t p, size_t OH, size_t OW) { return {p / (OH * OW), p % (OH * OW) / OW, p % OW}; }

// Depthwise. Packed [C int32 bias'][taps][C int8 w][C float M][C int32 bias] (qu8.h):
//   acc = bias[c] + sum over the taps inside the input of (a_t - z_a) * w_t,
// z_a being the `zero` row's byte. A tap outside the input would add (z_a - z_a) * w_t = 0, so it
// is not visited: a pixel costs its taps inside the input (kernels/window.h), whatever the kernel
// size. The SIMD kernels may instead start from bias' = bias - z_a * sum_t w_t and add a_t * w_t over
// every tap, those outside reading z_a from `zero`: the same integer. Every path's int32 sums wrap
// modulo 2^32 (SIMD lanes do; here the sum is taken in int64 and wrapped), so all agree bit for bit
// even where a sum would not fit.
void qu8_dwconv__scalar(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out,
                        size_t p0, size_t p1, const QU8Requant& p) {
  const size_t C = g.C, taps = g.taps();
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const int8_t* w = reinterpret_cast<const int8_t*>(base + C * sizeof(int32_t));
  const uint8_t* m_bytes = base + C * sizeof(int32_t) + taps * C;  // not necessarily aligned
  const uint8_t* bias_bytes = m_bytes + C * sizeof(float);         // the unfolded bias
  for (size_t px = p0; px < p1; ++px) {
    const Pixel q = pixel_of(px, g.OH, g.OW);
    const uint8_t* in_n = in + q.n * g.IH * g.IW * C;
    const TapWindow tw = tap_window(g, q.oy, q.ox);
    for (size_t c = 0; c < C; ++c) {
      int32_t bias;
      std::memcpy(&bias, bias_bytes + c * sizeof(int32_t), sizeof bias);
      const int32_t z = zero[c];
      int64_t acc = bias;
      for (size_t ky = tw.ky0, iy = tw.iy0; ky < tw.ky1; ++ky, iy += g.DH)
        for (size_t kx = tw.kx0, ix = tw.ix0; kx < tw.kx1; ++kx, ix += g.DW)
          acc += (static_cast<int32_t>(in_n[(iy * g.IW + ix) * C + c]) - z) *
                 static_cast<int32_t>(w[(ky * g.KW + kx) * C + c]);
      float m;
      std::memcpy(&m, m_bytes + c * sizeof(float), sizeof m);
      out[px * C + c] = requantize(wrap32(acc), m, p);
    }
  }
}

// Positions outside the input are ignored (and not visited); a window with none inside gives 0.
void qu8_maxpool__scalar(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1) {
  const size_t C = g.C;
  for (size_t px = p0; px < p1; ++px) {
    const Pixel q = pixel_of(px, g.OH, g.OW);
    const uint8_t* in_n = in + q.n * g.IH * g.IW * C;
    const TapWindow tw = tap_window(g, q.oy, q.ox);
    for (size_t c = 0; c < C; ++c) {
      uint8_t m = 0;
      for (size_t iy = tw.iy0, ky = tw.ky0; ky < tw.ky1; ++ky, iy += g.DH)
        for (size_t ix = tw.ix0, kx = tw.kx0; kx < tw.kx1; ++kx, ix += g.DW) {
          const uint8_t v = in_n[(iy * g.IW + ix) * C + c];
          m = v > m ? v : m;
        }
      out[px * C + c] = m;
    }
  }
}

// acc = sum over the taps inside the input of (a - z_in) (a counted pad tap holds z_in, adding 0);
// x = (float)acc * (in_over_out / (float)count), count = avgpool_divisor (kernels/window.h, the
// fp32 kernels' rule). A window with nothing to count has mean 0, so its scale is 0 and the output
// is z_out (clamped).
void qu8_avgpool__scalar(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1,
                         const QU8PoolParams& p) {
  const size_t C = g.C;
  for (size_t px = p0; px < p1; ++px) {
    const Pixel q = pixel_of(px, g.OH, g.OW);
    const uint8_t* in_n = in + q.n * g.IH * g.IW * C;
    const TapWindow tw = tap_window(g, q.oy, q.ox);
    const size_t count = avgpool_divisor(g, q.oy, q.ox, tw);
    const float scale = count ? p.in_over_out / static_cast<float>(count) : 0.0f;
    for (size_t c = 0; c < C; ++c) {
      int32_t acc = 0;
      for (size_t iy = tw.iy0, ky = tw.ky0; ky < tw.ky1; ++ky, iy += g.DH)
        for (size_t ix = tw.ix0, kx = tw.kx0; kx < tw.kx1; ++kx, ix += g.DW)
          acc += static_cast<int32_t>(in_n[(iy * g.IW + ix) * C + c]) - p.in_zero_point;
      out[px * C + c] = requantize(acc, scale, p.out);
    }
  }
}

void qu8_global_avgpool__scalar(size_t HW, size_t C, const uint8_t* in, uint8_t* out, size_t n0, size_t n1,
                                const QU8PoolParams& p) {
  const float scale = HW ? p.in_over_out / static_cast<float>(HW) : 0.0f;
  for (size_t n = n0; n < n1; ++n)
    for (size_t c = 0; c < C; ++c) {
      int32_t acc = 0;
      for (size_t i = 0; i < HW; ++i) acc += static_cast<int32_t>(in[(n * HW + i) * C + c]) - p.in_zero_point;
      out[n * C + c] = requantize(acc, scale, p.out);
    }
}

// x = (float)(a - z_a) * Ma; y = (float)(b - z_b) * Mb; s = x + y (three roundings); requantize s.
void qu8_add__scalar(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out, const QU8AddParams& p) {
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
// acc = (a - z_a) * (b - z_b), exact; requantized with M = s_a * s_b / s_out.
void qu8_mul_rows__scalar(size_t rows, size_t n, const uint8_t* a, size_t a_rs, const uint8_t* b, size_t b_rs,
                          uint8_t* out, const QU8MulParams& p) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i) {
      const int32_t acc = (static_cast<int32_t>(a[r * a_rs + i]) - p.a_zero_point) *
                          (static_cast<int32_t>(b[r * b_rs + i]) - p.b_zero_point);
      out[r * n + i] = requantize(acc, p.multiplier, p.out);
    }
}

const QU8Kernels k_scalar_table = {
    "scalar",
    kQu8ScalarMR,
    kQu8ScalarNR,
    4,  // kr: c4 blocks
    1,  // weight_bytes: int8
    Q8_KERNEL(qu8_igemm_4x4c4__scalar),
    Q8_KERNEL(qu8_gemm_4x4c4__scalar),
    Q8_KERNEL(qu8_dwconv__scalar),
    Q8_KERNEL(qu8_maxpool__scalar),
    Q8_KERNEL(qu8_avgpool__scalar),
    Q8_KERNEL(qu8_global_avgpool__scalar),
    Q8_KERNEL(qu8_add__scalar),
    Q8_KERNEL(qu8_quantize__scalar),
    Q8_KERNEL(qu8_dequantize__scalar),
    Q8_KERNEL(qu8_mul_rows__scalar),
    Q8_KERNEL(qu8_lookup__portable),
    Q8_KERNEL(qu8_gemm_dequantize_4x4c4__scalar),
};

}  // namespace

const QU8Kernels* qu8_kernels_scalar() { return &k_scalar_table; }

void qu8_lookup__portable(size_t n, const uint8_t* in, uint8_t* out, const uint8_t* table) {
  for (size_t i = 0; i < n; ++i) out[i] = table[in[i]];
}

}  // namespace q8::kern
