// int8 GEMM / indirect GEMM micro-kernels for AArch64 with the Armv8.6 int8 matrix-multiply
// extension (compiled with -march=armv8.2-a+dotprod+i8mm), and the neoni8mm table; its other ops
// are the neon table's (kernels/arm/qu8_neon.cpp), which need nothing beyond baseline NEON.
//
// USMMLA (vusmmlaq_s32) multiplies a 2x8 u8 matrix (two activation rows, 8 input channels each)
// by the transpose of a 2x8 s8 matrix (two output channels, the same 8 input channels) into a
// 2x2 int32 block:  acc = [(r0,n0) (r0,n1) (r1,n0) (r1,n1)] += a . w^T.
// It takes u8 activations and s8 weights as they are, so unlike SDOT no 0x80 flip and no
// weight-sum correction is needed: the accumulators start at zero, the packed bias' (qu8.h's
// zero-point algebra, the same for every table) is added at the end, and the loop is the plain
// sum_k a_k * w[n][k]. All sums wrap in int32 like the reference's (the true accumulator fits in
// int32, so the wrapped terms add up to it exactly).
//
// Weights are packed with kr = 8 (qu8.h): per block of 8 input channels, lane n's 8 weights are
// contiguous, so each 16-byte vector of a block is one USMMLA right operand (channels 2j, 2j+1).
// The last block of a row reads up to 7 bytes past kc; they meet zero weights.
//
// Tile: 8 rows x 8 output channels (qu8_gemm_8x8c8__neoni8mm): 4 row pairs x 4 channel pairs =
// 16 accumulators. Per 16 input channels each row is loaded once (16 bytes) and a row pair is
// split by zip1/zip2 on 64-bit lanes into the two 2x8 operands of channels k..k+7 and k+8..k+15;
// the 8 weight vectors of those two blocks stay in registers for the 4 row pairs.
// Registers: 16 accumulators + 8 weight vectors + 4 activation temporaries = 28 of 32; per 16
// input channels 32 USMMLA (2048 MACs) for 16 loads and 8 zips. A wider tile (8x12 or 8x16)
// would need 24 or 32 accumulators and leave too few registers for the operands; 8x8 also keeps
// neondot's panel width, so the engine tiles both paths alike.
// An odd row count repeats its last row in the last pair; those results are not stored.
#include "kernels/qu8.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_MATMUL_INT8)
#include <arm_neon.h>

#include <cstring>

#include "kernels/arm/qu8_neon_internal.h"
#include "kernels/qu8_gemm_rows.h"

namespace q8::kern {
namespace {

constexpr size_t kMR = 8, kNR = 8, kKR = 8;

inline int32x4_t zip_lo64(int32x4_t a, int32x4_t b) {
  return vreinterpretq_s32_s64(vzip1q_s64(vreinterpretq_s64_s32(a), vreinterpretq_s64_s32(b)));
}
inline int32x4_t zip_hi64(int32x4_t a, int32x4_t b) {
  return vreinterpretq_s32_s64(vzip2q_s64(vreinterpretq_s64_s32(a), vreinterpretq_s64_s32(b)));
}

// Out is uint8_t (requantized, the gemm) or float (dequantized, gemm_dequantize).
template <int R, class Out>
void tile(size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, Out* c, size_t c_stride,
          const QU8Requant& p) {
  constexpr int P = (R + 1) / 2;  // row pairs
  const uint8_t* pb = static_cast<const uint8_t*>(w);
  // acc[i][j]: rows 2i, 2i+1 x channels 2j, 2j+1, as (2i,2j) (2i,2j+1) (2i+1,2j) (2i+1,2j+1).
  int32x4_t acc[P][4];
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[i][j] = vdupq_n_s32(0);
  const int8_t* pw = reinterpret_cast<const int8_t*>(pb + kNR * sizeof(int32_t));
  const size_t kb = (kc + kKR - 1) / kKR * kKR;  // bytes per row read (the slack qu8.h allows)
  for (size_t t = 0; t < ks; ++t) {
    const uint8_t* ar[2 * P];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) ar[r] = a[r * ks + t];
    if (R % 2) ar[2 * P - 1] = ar[R - 1];  // results of the repeated row are dropped
    size_t k = 0;
    for (; k + 2 * kKR <= kb; k += 2 * kKR) {  // two blocks of 8 input channels
      int8x16_t w0[4], w1[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        w0[j] = vld1q_s8(pw + 16 * j);
        w1[j] = vld1q_s8(pw + kNR * kKR + 16 * j);
      }
#pragma GCC unroll 4
      for (int i = 0; i < P; ++i) {
        const uint64x2_t x0 = vreinterpretq_u64_u8(vld1q_u8(ar[2 * i] + k));
        const uint64x2_t x1 = vreinterpretq_u64_u8(vld1q_u8(ar[2 * i + 1] + k));
        const uint8x16_t lo = vreinterpretq_u8_u64(vzip1q_u64(x0, x1));  // channels k .. k+7
        const uint8x16_t hi = vreinterpretq_u8_u64(vzip2q_u64(x0, x1));  // channels k+8 .. k+15
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) acc[i][j] = vusmmlaq_s32(acc[i][j], lo, w0[j]);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) acc[i][j] = vusmmlaq_s32(acc[i][j], hi, w1[j]);
      }
      pw += 2 * kNR * kKR;
    }
    if (k < kb) {  // one last block of 8
      int8x16_t w0[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) w0[j] = vld1q_s8(pw + 16 * j);
#pragma GCC unroll 4
      for (int i = 0; i < P; ++i) {
        const uint8x16_t x = vcombine_u8(vld1_u8(ar[2 * i] + k), vld1_u8(ar[2 * i + 1] + k));
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) acc[i][j] = vusmmlaq_s32(acc[i][j], x, w0[j]);
      }
      pw += kNR * kKR;
    }
  }
  const int32x4_t b0 = qu8_neon::load_i32x4(pb), b1 = qu8_neon::load_i32x4(pb + 16);
  const uint8_t* pm = reinterpret_cast<const uint8_t*>(pw);
  const float32x4_t m0 = qu8_neon::load_f32x4(pm), m1 = qu8_neon::load_f32x4(pm + 16);
  const qu8_neon::Requant rq(p);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const int i = r / 2;
    // Row r's channels 0..3 and 4..7: the 64-bit halves of row (r % 2) of each 2x2 block.
    const int32x4_t s0 = r % 2 ? zip_hi64(acc[i][0], acc[i][1]) : zip_lo64(acc[i][0], acc[i][1]);
    const int32x4_t s1 = r % 2 ? zip_hi64(acc[i][2], acc[i][3]) : zip_lo64(acc[i][2], acc[i][3]);
    qu8_neon::store_row8(vaddq_s32(b0, s0), vaddq_s32(b1, s1), m0, m1, rq, c + r * c_stride, nc);
  }
}

template <class Out>
TileFn<Out> select(size_t mr, size_t /*nc: each tile takes any nc <= kNR*/) {
  switch (mr) {
    case 1: return &tile<1, Out>;
    case 2: return &tile<2, Out>;
    case 3: return &tile<3, Out>;
    case 4: return &tile<4, Out>;
    case 5: return &tile<5, Out>;
    case 6: return &tile<6, Out>;
    case 7: return &tile<7, Out>;
    default: return &tile<8, Out>;
  }
}

void qu8_igemm_8x8c8__neoni8mm(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                               uint8_t* c, size_t c_stride, const QU8Requant& p) {
  select<uint8_t>(mr, nc)(nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_8x8c8__neoni8mm(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                              uint8_t* c, size_t c_stride, const QU8Requant& p) {
  gemm_rows<kMR>(select<uint8_t>, mr, nc, kc, a, a_stride, w, c, c_stride, p);
}

void qu8_gemm_dequantize_8x8c8__neoni8mm(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                         const void* w, float* c, size_t c_stride) {
  gemm_rows<kMR>(select<float>, mr, nc, kc, a, a_stride, w, c, c_stride, QU8Requant{});
}

// Constant-initialised (no code runs to build it), so asking for the table is safe on any CPU.
const QU8Kernels k_table = {
    "neoni8mm",
    kMR,
    kNR,
    kKR,
    1,  // weight_bytes: int8
    Q8_KERNEL(qu8_igemm_8x8c8__neoni8mm),
    Q8_KERNEL(qu8_gemm_8x8c8__neoni8mm),
    Q8_KERNEL(qu8_dwconv__neon),
    Q8_KERNEL(qu8_maxpool__neon),
    Q8_KERNEL(qu8_avgpool__neon),
    Q8_KERNEL(qu8_global_avgpool__neon),
    Q8_KERNEL(qu8_add__neon),
    Q8_KERNEL(qu8_quantize__neon),
    Q8_KERNEL(qu8_dequantize__neon),
    Q8_KERNEL(qu8_mul_rows__neon),
    Q8_KERNEL(qu8_lookup__neon),
    Q8_KERNEL(qu8_gemm_dequantize_8x8c8__neoni8mm),
};
static_assert(kKR <= kQu8MaxKr, "qu8.h's slack promise covers this table's over-read");

}  // namespace

const QU8Kernels* qu8_kernels_neoni8mm() { return &k_table; }

}  // namespace q8::kern

#else
namespace q8::kern {
const QU8Kernels* qu8_kernels_neoni8mm() { return nullptr; }  // built without +i8mm
}  // namespace q8::kern
#endif
