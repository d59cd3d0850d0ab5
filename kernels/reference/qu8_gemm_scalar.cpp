// Scalar int8 GEMM and indirect GEMM micro-kernels: the oracle every other path must match byte
// for byte. Plain loops, compiled with -ffp-contract=off (kernels/CMakeLists.txt), so the
// requantization is exactly qu8.h's sequence of IEEE operations.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/qu8_internal.h"

namespace q8::kern {
namespace {

// qu8.h's requantization of one accumulator.
uint8_t requantize(int32_t acc, float m, const QU8Requant& p) {
  float x = static_cast<float>(acc) * m;
  x = std::min(std::max(x, static_cast<float>(int32_t{p.out_min} - p.out_zero_point)),
               static_cast<float>(int32_t{p.out_max} - p.out_zero_point));
  return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyintf(x)) + p.out_zero_point);
}

// The float-output dense's epilogue (qu8.h): one conversion, one product.
float dequantize(int32_t acc, float scale, const QU8Requant&) { return static_cast<float>(acc) * scale; }

// Rows [0, mr) of a tile of kNR channels in c4 blocks of int8 (the packing of every table with
// kr = 4 and weight_bytes = 1); row i's tap t reads a[i * ks + t] (kc bytes, no slack needed
// here). The sum is taken in int64 and wrapped to int32 at the end, which is what the SIMD
// kernels' wrapping int32 lanes compute (sums modulo 2^32 do not depend on the order). Out is
// uint8_t (requantized) or float (dequantized).
template <size_t kNR, class Out>
void tile(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, Out* c, size_t c_stride,
          const QU8Requant& p) {
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
      if constexpr (std::is_same_v<Out, float>)
        c[i * c_stride + n] = dequantize(acc32, m, p);
      else
        c[i * c_stride + n] = requantize(acc32, m, p);
    }
}

}  // namespace

void qu8_igemm_4x4c4__scalar(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                             uint8_t* c, size_t c_stride, const QU8Requant& p) {
  tile<kQu8ScalarNR>(mr, nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_4x4c4__scalar(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                            uint8_t* c, size_t c_stride, const QU8Requant& p) {
  const uint8_t* rows[kQu8ScalarMR];
  for (size_t i = 0; i < mr; ++i) rows[i] = a + i * a_stride;
  tile<kQu8ScalarNR>(mr, nc, kc, 1, rows, w, c, c_stride, p);
}

// Row by row: one tile of any height (the 16-row one serves the AMX tile model's table).
void qu8_gemm_dequantize_4x4c4__scalar(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                       const void* w, float* c, size_t c_stride) {
  for (size_t i = 0; i < mr; ++i) {
    const uint8_t* row = a + i * a_stride;
    tile<kQu8ScalarNR>(1, nc, kc, 1, &row, w, c + i * c_stride, c_stride, QU8Requant{});
  }
}

void qu8_gemm_dequantize_16x32c4__scalar(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                         const void* w, float* c, size_t c_stride) {
  for (size_t i = 0; i < mr; ++i) {
    const uint8_t* row = a + i * a_stride;
    tile<32>(1, nc, kc, 1, &row, w, c + i * c_stride, c_stride, QU8Requant{});
  }
}

}  // namespace q8::kern
