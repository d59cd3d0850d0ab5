// Scalar int8 GEMM and indirect GEMM micro-kernels: the oracle every other path must match byte
// for byte. Plain loops, compiled with -ffp-contract=off (kernels/CMakeLists.txt), so the
// requantization is exactly qu8.h's sequence of IEEE operations.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/qu8_internal.h"

namespace q8::kern {
namespace {

constexpr size_t kNR = kQu8ScalarNR;

// qu8.h's requantization of one accumulator.
uint8_t requantize(int32_t acc, float m, const QU8Requant& p) {
  float x = static_cast<float>(acc) * m;
  x = std::min(std::max(x, static_cast<float>(int32_t{p.out_min} - p.out_zero_point)),
               static_cast<float>(int32_t{p.out_max} - p.out_zero_point));
  return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyintf(x)) + p.out_zero_point);
}

// Rows [0, mr) of the tile; row i's tap t reads a[i * ks + t] (kc bytes, no slack needed here).
// The sum is taken in int64 and wrapped to int32 at the end, which is what the SIMD kernels'
// wrapping int32 lanes compute (sums modulo 2^32 do not depend on the order).
void tile(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, uint8_t* c,
          size_t c_stride, const QU8Requant& p) {
  const size_t blocks = (kc + 3) / 4;
  const uint8_t* pw = static_cast<const uint8_t*>(w);
  const int8_t* wk = reinterpret_cast<const int8_t*>(pw + kNR * sizeof(int32_t));
  const uint8_t* pm = pw + kNR * sizeof(int32_t) + ks * blocks * kNR * 4;
  for (size_t i = 0; i < mr; ++i)
    for (size_t n = 0; n < nc; ++n) {
      int32_t bias;
      float m;
      std::memcpy(&bias, pw + n * sizeof(int32_t), sizeof bias);
      std::memcpy(&m, pm + n * sizeof(float), sizeof m);
      int64_t acc = bias;
      for (size_t t = 0; t < ks; ++t) {
        const uint8_t* row = a[i * ks + t];
        for (size_t k = 0; k < kc; ++k)
          acc += int64_t{row[k]} * int64_t{wk[((t * blocks + k / 4) * kNR + n) * 4 + k % 4]};
      }
      const int32_t acc32 = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(acc)));
      c[i * c_stride + n] = requantize(acc32, m, p);
    }
}

}  // namespace

void qu8_igemm_4x4c4__scalar(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                             uint8_t* c, size_t c_stride, const QU8Requant& p) {
  tile(mr, nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_4x4c4__scalar(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                            uint8_t* c, size_t c_stride, const QU8Requant& p) {
  const uint8_t* rows[kQu8ScalarMR];
  for (size_t i = 0; i < mr; ++i) rows[i] = a + i * a_stride;
  tile(mr, nc, kc, 1, rows, w, c, c_stride, p);
}

void qu8_dense_dequantize(size_t M, size_t Kd, const uint8_t* a, size_t a_stride, const int8_t* w,
                          const int32_t* bias_adj, const float* scale, float* out, size_t out_stride, size_t n0,
                          size_t n1) {
  for (size_t m = 0; m < M; ++m)
    for (size_t n = n0; n < n1; ++n) {
      const uint8_t* am = a + m * a_stride;
      const int8_t* wn = w + n * Kd;
      // Modulo 2^32, like every int8 path's sums (bias_adj may have wrapped).
      uint32_t acc = static_cast<uint32_t>(bias_adj[n]);
      for (size_t k = 0; k < Kd; ++k) acc += static_cast<uint32_t>(int32_t{am[k]} * int32_t{wn[k]});
      out[m * out_stride + n] = static_cast<float>(static_cast<int32_t>(acc)) * scale[n];
    }
}

}  // namespace q8::kern
