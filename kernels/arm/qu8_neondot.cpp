// int8 GEMM / indirect GEMM micro-kernels for AArch64 with the dot-product extension (compiled
// with -march=armv8.2-a+dotprod), and the neondot table; its other ops are the neon table's
// (kernels/arm/qu8_neon.cpp), which need nothing beyond baseline NEON.
//
// Tile: 8 rows x 8 output channels (qu8_gemm_8x8c4__neondot). The packed c4 layout (qu8.h) is
// exactly SDOT's: one 16-byte vector of a block holds 4 output channels x 4 input channels, so
//   acc[r][n] += sum_{j<4} w[n][4b+j] * a[r][4b+j]      (vdotq_laneq_s32, lane b of a[r])
// with a row's activations loaded 16 bytes (4 blocks) at a time.
//
// SDOT multiplies s8 by s8, but activations are u8. The exact identity used here:
//   sum_k a_k * w_k = sum_k (a_k - 128) * w_k + 128 * sum_k w_k
// a_k - 128 is a_k ^ 0x80 read as s8 (one eor per 16 activation bytes, shared by 4 blocks). The
// packed bias' is the one every table shares (qu8_conv_pack folds -z_a * sum w for u8
// activations), so the correction 128 * sum_k w[n][k] is made here: per block, one more SDOT of
// each weight vector with the same 0x80 vector (-128 as s8) accumulates
//   neg[n] = sum_k w[n][k] * (-128) = -128 * sum_k w[n][k]
// per output channel, shared by all 8 rows, and the tile ends with `acc -= neg`. All sums wrap
// in int32 like the reference's (the true accumulator fits in int32, so the wrapped terms add up
// to it exactly). The slack bytes past kc meet zero weights in the main dot product and are not
// part of the weight sum, so they contribute nothing.
// Cost per block: 16 SDOTs for the tile + 2 for the weight sums + 2 eor (8 rows / 4 blocks) —
// 20 vector ops per 256 MACs, no extra loads. (The alternative — flipping the weights to u8 and
// using UDOT with per-row activation sums — costs the same 2 eor + 2 UDOT per block at 8x8.)
// Registers: 16 accumulators + 2 weight sums + 8 weight vectors (4 blocks) + 1 activation vector +
// the constant.
#include "kernels/qu8.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>

#include <cstring>

#include "kernels/arm/qu8_neon_internal.h"
#include "kernels/qu8_gemm_rows.h"

namespace q8::kern {
namespace {

constexpr size_t kMR = 8, kNR = 8;

// acc[r] += dot(w, lane L of x[r]) for both halves of the 8 channels; neg += dot(w, -128).
template <int R, int L>
inline void block(int32x4_t (&acc)[kMR][2], int32x4_t (&neg)[2], const int8_t* pw, const int8x16_t (&x)[kMR],
                  int8x16_t m128) {
  const int8x16_t w0 = vld1q_s8(pw), w1 = vld1q_s8(pw + 16);
  neg[0] = vdotq_s32(neg[0], w0, m128);
  neg[1] = vdotq_s32(neg[1], w1, m128);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    acc[r][0] = vdotq_laneq_s32(acc[r][0], w0, x[r], L);
    acc[r][1] = vdotq_laneq_s32(acc[r][1], w1, x[r], L);
  }
}

// Out is uint8_t (requantized, the gemm) or float (dequantized, gemm_dequantize).
template <int R, class Out>
void tile(size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, Out* c, size_t c_stride,
          const QU8Requant& p) {
  const uint8_t* pb = static_cast<const uint8_t*>(w);
  int32x4_t acc[kMR][2];
  {
    const int32x4_t b0 = qu8_neon::load_i32x4(pb), b1 = qu8_neon::load_i32x4(pb + 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][0] = b0, acc[r][1] = b1;
  }
  int32x4_t neg[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};  // -128 * sum_k w[n][k]
  const uint8x16_t flip = vdupq_n_u8(0x80);
  const int8x16_t m128 = vreinterpretq_s8_u8(flip);  // -128 in every s8 lane
  const int8_t* pw = reinterpret_cast<const int8_t*>(pb + kNR * 4);
  const size_t kb = (kc + 3) / 4 * 4;  // bytes per row read (the slack qu8.h allows)
  for (size_t t = 0; t < ks; ++t) {
    const uint8_t* ar[kMR];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) ar[r] = a[r * ks + t];
    int8x16_t x[kMR];
    size_t k = 0;
    for (; k + 16 <= kb; k += 16) {
      // Four blocks: their 8 weight vectors stay in registers while each row's 16 activation
      // bytes are loaded once and used by lane (fewer live registers than 8 rows at once).
      int8x16_t wv[4][2];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        wv[j][0] = vld1q_s8(pw + 32 * j);
        wv[j][1] = vld1q_s8(pw + 32 * j + 16);
        neg[0] = vdotq_s32(neg[0], wv[j][0], m128);
        neg[1] = vdotq_s32(neg[1], wv[j][1], m128);
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const int8x16_t xr = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(ar[r] + k), flip));
        acc[r][0] = vdotq_laneq_s32(acc[r][0], wv[0][0], xr, 0);
        acc[r][1] = vdotq_laneq_s32(acc[r][1], wv[0][1], xr, 0);
        acc[r][0] = vdotq_laneq_s32(acc[r][0], wv[1][0], xr, 1);
        acc[r][1] = vdotq_laneq_s32(acc[r][1], wv[1][1], xr, 1);
        acc[r][0] = vdotq_laneq_s32(acc[r][0], wv[2][0], xr, 2);
        acc[r][1] = vdotq_laneq_s32(acc[r][1], wv[2][1], xr, 2);
        acc[r][0] = vdotq_laneq_s32(acc[r][0], wv[3][0], xr, 3);
        acc[r][1] = vdotq_laneq_s32(acc[r][1], wv[3][1], xr, 3);
      }
      pw += 4 * kNR * 4;
    }
    for (; k < kb; k += 4) {  // 1 to 3 remaining blocks, 4 bytes at a time
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        uint32_t v;
        std::memcpy(&v, ar[r] + k, sizeof v);
        x[r] = vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(v)), flip));
      }
      block<R, 0>(acc, neg, pw, x, m128);
      pw += kNR * 4;
    }
  }
  // + 128 * sum_k w[n][k] = - neg (see the top of the file).
  const uint8_t* pm = reinterpret_cast<const uint8_t*>(pw);
  const float32x4_t m0 = qu8_neon::load_f32x4(pm), m1 = qu8_neon::load_f32x4(pm + 16);
  const qu8_neon::Requant rq(p);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    qu8_neon::store_row8(vsubq_s32(acc[r][0], neg[0]), vsubq_s32(acc[r][1], neg[1]), m0, m1, rq, c + r * c_stride, nc);
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

void qu8_igemm_8x8c4__neondot(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                              uint8_t* c, size_t c_stride, const QU8Requant& p) {
  select<uint8_t>(mr, nc)(nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_8x8c4__neondot(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                             uint8_t* c, size_t c_stride, const QU8Requant& p) {
  gemm_rows<kMR>(select<uint8_t>, mr, nc, kc, a, a_stride, w, c, c_stride, p);
}

void qu8_gemm_dequantize_8x8c4__neondot(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                        const void* w, float* c, size_t c_stride) {
  gemm_rows<kMR>(select<float>, mr, nc, kc, a, a_stride, w, c, c_stride, QU8Requant{});
}

// Constant-initialised (no code runs to build it), so asking for the table is safe on any CPU.
const QU8Kernels k_table = {
    "neondot",
    kMR,
    kNR,
    4,  // kr: c4 blocks
    1,  // weight_bytes: int8
    Q8_KERNEL(qu8_igemm_8x8c4__neondot),
    Q8_KERNEL(qu8_gemm_8x8c4__neondot),
    Q8_KERNEL(qu8_dwconv__neon),
    Q8_KERNEL(qu8_maxpool__neon),
    Q8_KERNEL(qu8_avgpool__neon),
    Q8_KERNEL(qu8_global_avgpool__neon),
    Q8_KERNEL(qu8_add__neon),
    Q8_KERNEL(qu8_quantize__neon),
    Q8_KERNEL(qu8_dequantize__neon),
    Q8_KERNEL(qu8_mul_rows__neon),
    Q8_KERNEL(qu8_lookup__neon),
    Q8_KERNEL(qu8_gemm_dequantize_8x8c4__neondot),
};

}  // namespace

const QU8Kernels* qu8_kernels_neondot() { return &k_table; }

}  // namespace q8::kern

#else
namespace q8::kern {
const QU8Kernels* qu8_kernels_neondot() { return nullptr; }  // built without +dotprod
}  // namespace q8::kern
#endif
