// int8 kernels for baseline AArch64 NEON (ARMv8.0-A): GEMM / indirect GEMM micro-kernels, depthwise
// conv, pools, add, quantize, dequantize, and the neon table.
//
// GEMM tile: 8 rows x 8 output channels (qu8_gemm_8x8c4__neon). u8 activations and s8 weights are
// both widened to int16 (exact) and multiplied into int32 with smlal/smlal2 by lane, so every
// product and every sum is exact (no saturating step such as a u8 x s8 pairwise add):
//   - per block of 4 input channels, the packed c4 bytes (qu8.h: lane n holds w[n][4b .. 4b+3])
//     are de-interleaved by ld4 into 4 vectors w_j = (w[0][4b+j] .. w[7][4b+j]), then sign
//     extended to int16;
//   - a row's activations are loaded 8 bytes (two blocks) at a time and zero-extended to int16;
//   - acc[r][n0..3] += w_j[0..3] * a[r][k], acc[r][n4..7] += w_j[4..7] * a[r][k] (smlal(2) lane k).
// Registers: 16 int32 accumulators + 8 activation vectors + 4 weight vectors = 28 of 32.
// The accumulators start at the packed bias' (bias - z_a * sum_k w, see qu8.h), so the loop is a
// plain u8 x s8 dot product; the requantization is qu8.h's float sequence (qu8_neon_internal.h).
//
// Depthwise: 16 or 8 channels per step, u8/s8 widened to int16 and smlal into int32 (exact).
// The other ops (and depthwise's last C % 8 channels) are the portable loops of
// kernels/qu8_ops_simd.h instantiated over the NEON traits
// below: 4 int32 lanes (u8/s8 widened with uxtl/sxtl, exact mul), 16 bytes per vector for max pool.
#include "kernels/qu8.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "kernels/arm/qu8_neon_internal.h"
#include "kernels/qu8_gemm_rows.h"
#include "kernels/qu8_ops_simd.h"

namespace q8::kern {
namespace {

constexpr size_t kMR = 8, kNR = 8;

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// acc[r] += w_j * a[r][L] for the R rows (L: lane of the activation vector).
template <int R, int L>
inline void mac(int32x4_t (&acc)[kMR][2], int16x8_t wj, const int16x8_t (&x)[kMR]) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    acc[r][0] = vmlal_laneq_s16(acc[r][0], vget_low_s16(wj), x[r], L);
    acc[r][1] = vmlal_high_laneq_s16(acc[r][1], wj, x[r], L);
  }
}

// One block of 4 input channels whose activations are lanes L0 .. L0+3 of x.
template <int R, int L0>
inline void block(int32x4_t (&acc)[kMR][2], const int8_t* pw, const int16x8_t (&x)[kMR]) {
  const int8x8x4_t w = vld4_s8(pw);
  mac<R, L0 + 0>(acc, vmovl_s8(w.val[0]), x);
  mac<R, L0 + 1>(acc, vmovl_s8(w.val[1]), x);
  mac<R, L0 + 2>(acc, vmovl_s8(w.val[2]), x);
  mac<R, L0 + 3>(acc, vmovl_s8(w.val[3]), x);
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
  const int8_t* pw = reinterpret_cast<const int8_t*>(pb + kNR * 4);
  const size_t blocks = (kc + 3) / 4;  // the last block may read up to 3 bytes past kc
  for (size_t t = 0; t < ks; ++t) {
    const uint8_t* ar[kMR];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) ar[r] = a[r * ks + t];
    int16x8_t x[kMR];
    size_t k = 0;
    // Two blocks per 8-byte activation load (the bytes end at 4 * blocks: within the slack).
    for (; k + 8 <= 4 * blocks; k += 8) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) x[r] = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(ar[r] + k)));
      block<R, 0>(acc, pw, x);
      block<R, 4>(acc, pw + kNR * 4, x);
      pw += 2 * kNR * 4;
    }
    if (k < 4 * blocks) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        x[r] = vreinterpretq_s16_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(load_u32(ar[r] + k)))));
      block<R, 0>(acc, pw, x);
      pw += kNR * 4;
    }
  }
  const uint8_t* pm = reinterpret_cast<const uint8_t*>(pw);
  const float32x4_t m0 = qu8_neon::load_f32x4(pm), m1 = qu8_neon::load_f32x4(pm + 16);
  const qu8_neon::Requant rq(p);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    qu8_neon::store_row8(acc[r][0], acc[r][1], m0, m1, rq, c + r * c_stride, nc);
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

void qu8_igemm_8x8c4__neon(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                           uint8_t* c, size_t c_stride, const QU8Requant& p) {
  select<uint8_t>(mr, nc)(nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_8x8c4__neon(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w, uint8_t* c,
                          size_t c_stride, const QU8Requant& p) {
  gemm_rows<kMR>(select<uint8_t>, mr, nc, kc, a, a_stride, w, c, c_stride, p);
}

void qu8_gemm_dequantize_8x8c4__neon(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                                     float* c, size_t c_stride) {
  gemm_rows<kMR>(select<float>, mr, nc, kc, a, a_stride, w, c, c_stride, QU8Requant{});
}

// Traits for kernels/qu8_ops_simd.h. Tails shorter than a vector go through small stack
// buffers, so no load or store touches a byte past the caller's rows.
struct Neon {
  static constexpr size_t W = 4;    // int32 / float lanes
  static constexpr size_t WB = 16;  // byte lanes
  using I = int32x4_t;
  using F = float32x4_t;
  using B = uint8x16_t;

  static I set1(int32_t v) { return vdupq_n_s32(v); }
  static F set1f(float v) { return vdupq_n_f32(v); }
  static I add(I a, I b) { return vaddq_s32(a, b); }
  static I sub(I a, I b) { return vsubq_s32(a, b); }
  static I mul(I a, I b) { return vmulq_s32(a, b); }  // |u8 * s8| < 2^15: exact
  static F cvtf(I a) { return vcvtq_f32_s32(a); }
  static F mulf(F a, F b) { return vmulq_f32(a, b); }
  static F addf(F a, F b) { return vaddq_f32(a, b); }
  static F subf(F a, F b) { return vsubq_f32(a, b); }
  static F divf(F a, F b) { return vdivq_f32(a, b); }  // IEEE division
  // fmaxnm/fminnm: the reference's `a > lo ? a : lo` / `a < hi ? a : hi` for every non-NaN input;
  // a quiet NaN (the only kind a division or product yields) becomes the bound, as there.
  static F maxf(F a, F lo) { return vmaxnmq_f32(a, lo); }
  static F minf(F a, F hi) { return vminnmq_f32(a, hi); }
  static I round(F a) { return vcvtnq_s32_f32(a); }  // round half to even
  static F opaque(F a) {  // keeps the compiler from fusing this product into a later add (fmla)
    __asm__("" : "+w"(a));
    return a;
  }

  static I load_u8(const uint8_t* p) {
    const uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(load_u32(p)));
    return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(b))));
  }
  static I load_s8(const int8_t* p) {
    const int8x8_t b = vreinterpret_s8_u32(vdup_n_u32(load_u32(reinterpret_cast<const uint8_t*>(p))));
    return vmovl_s16(vget_low_s16(vmovl_s8(b)));
  }
  static I load_u8_partial(const uint8_t* p, size_t n) {
    uint8_t tmp[4] = {};
    std::memcpy(tmp, p, n);
    return load_u8(tmp);
  }
  static I load_s8_partial(const int8_t* p, size_t n) {
    int8_t tmp[4] = {};
    std::memcpy(tmp, p, n);
    return load_s8(tmp);
  }
  static I load_i32(const void* p) { return qu8_neon::load_i32x4(static_cast<const uint8_t*>(p)); }
  static I load_i32_partial(const void* p, size_t n) {
    alignas(16) uint8_t tmp[16] = {};
    std::memcpy(tmp, p, n * 4);
    return load_i32(tmp);
  }
  static void store_i32(I v, int32_t* p) { vst1q_s32(p, v); }
  static F load_f32(const void* p) { return qu8_neon::load_f32x4(static_cast<const uint8_t*>(p)); }
  static F load_f32_partial(const void* p, size_t n) {
    alignas(16) uint8_t tmp[16] = {};
    std::memcpy(tmp, p, n * 4);
    return load_f32(tmp);
  }
  // Lanes hold values in [0, 255]: the saturating narrows are exact.
  static uint8x8_t pack8(I v) { return qu8_neon::narrow_u8(v, v); }
  static void store_u8(I v, uint8_t* p) {
    const uint32_t x = vget_lane_u32(vreinterpret_u32_u8(pack8(v)), 0);
    std::memcpy(p, &x, 4);
  }
  static void store_u8_partial(I v, uint8_t* p, size_t n) {
    uint8_t tmp[8];
    vst1_u8(tmp, pack8(v));
    std::memcpy(p, tmp, n);
  }
  static void store_f32(F v, float* p) { vst1q_f32(p, v); }
  static void store_f32_partial(F v, float* p, size_t n) {
    float tmp[4];
    vst1q_f32(tmp, v);
    std::memcpy(p, tmp, n * 4);
  }

  static B zero_b() { return vdupq_n_u8(0); }
  static B set1_b(uint8_t v) { return vdupq_n_u8(v); }
  static B max_b(B a, B b) { return vmaxq_u8(a, b); }
  static B load_b(const uint8_t* p) { return vld1q_u8(p); }
  static B load_b_partial(const uint8_t* p, size_t n) {
    uint8_t tmp[16] = {};
    std::memcpy(tmp, p, n);
    return vld1q_u8(tmp);
  }
  static void store_b(B v, uint8_t* p) { vst1q_u8(p, v); }
  static void store_b_partial(B v, uint8_t* p, size_t n) {
    uint8_t tmp[16];
    vst1q_u8(tmp, v);
    std::memcpy(p, tmp, n);
  }
  // f[j] = 2^23 + byte j*4 .. j*4+3, as float bits 0x4B0000bb (the widened byte or-ed under 2^23).
  static void widen_biased(B v, F f[4]) {
    const uint32x4_t top = vdupq_n_u32(0x4B000000u);
    const uint16x8_t lo = vmovl_u8(vget_low_u8(v)), hi = vmovl_u8(vget_high_u8(v));
    f[0] = vreinterpretq_f32_u32(vorrq_u32(vmovl_u16(vget_low_u16(lo)), top));
    f[1] = vreinterpretq_f32_u32(vorrq_u32(vmovl_u16(vget_high_u16(lo)), top));
    f[2] = vreinterpretq_f32_u32(vorrq_u32(vmovl_u16(vget_low_u16(hi)), top));
    f[3] = vreinterpretq_f32_u32(vorrq_u32(vmovl_u16(vget_high_u16(hi)), top));
  }
  // Bytes of sat_u8(sat_s16(r) + z), z in [0, 255] and the int16 add saturating.
  static B narrow_u8(const I r[4], int32_t z) {
    const int16x8_t zw = vdupq_n_s16(static_cast<int16_t>(z));
    const int16x8_t w01 = vqaddq_s16(vcombine_s16(vqmovn_s32(r[0]), vqmovn_s32(r[1])), zw);
    const int16x8_t w23 = vqaddq_s16(vcombine_s16(vqmovn_s32(r[2]), vqmovn_s32(r[3])), zw);
    return vcombine_u8(vqmovun_s16(w01), vqmovun_s16(w23));
  }
};

}  // namespace

namespace {

// Depthwise channels [c, c + 8*NV) of one pixel (NV = 1 or 2): u8 inputs and s8 weights widened
// to int16, smlal/smlal2 into int32 (exact), then qu8.h's requantization.
template <int NV>
inline void dw_channels(const uint8_t* const* rows, size_t taps, const uint8_t* bias, const int8_t* w, const uint8_t* m,
                        size_t C, size_t c, uint8_t* o, const qu8_neon::Requant& rq) {
  int32x4_t acc[2 * NV];
#pragma GCC unroll 4
  for (int v = 0; v < 2 * NV; ++v) acc[v] = qu8_neon::load_i32x4(bias + (c + 4 * v) * 4);
  for (size_t t = 0; t < taps; ++t) {
    const uint8_t* ip = rows[t] + c;
    const int8_t* wp = w + t * C + c;
    int16x8_t x[NV], wv[NV];
    if (NV == 2) {
      const uint8x16_t xb = vld1q_u8(ip);
      const int8x16_t wb = vld1q_s8(wp);
      x[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(xb)));
      x[NV - 1] = vreinterpretq_s16_u16(vmovl_high_u8(xb));
      wv[0] = vmovl_s8(vget_low_s8(wb));
      wv[NV - 1] = vmovl_high_s8(wb);
    } else {
      x[0] = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(ip)));
      wv[0] = vmovl_s8(vld1_s8(wp));
    }
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      acc[2 * v] = vmlal_s16(acc[2 * v], vget_low_s16(x[v]), vget_low_s16(wv[v]));
      acc[2 * v + 1] = vmlal_high_s16(acc[2 * v + 1], x[v], wv[v]);
    }
  }
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const uint8x8_t q = qu8_neon::narrow_u8(rq(acc[2 * v], qu8_neon::load_f32x4(m + (c + 8 * v) * 4)),
                                            rq(acc[2 * v + 1], qu8_neon::load_f32x4(m + (c + 8 * v + 4) * 4)));
    vst1_u8(o + c + 8 * v, q);
  }
}

}  // namespace

// Pixel by pixel, 16 then 8 channels at a time (the 16 MACs of a tap cost two loads, four widens
// and four smlal); the last C % 8 channels and kernels of more than kMaxTaps taps use the portable
// loops (qu8_ops_simd.h over the Neon traits), whose arithmetic is the same exact int32 sum.
void qu8_dwconv__neon(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out,
                      size_t p0, size_t p1, const QU8Requant& p) {
  const size_t C = g.C, taps = g.taps();
  if (taps > qu8_simd::kMaxTaps || C < 8) return qu8_simd::dwconv<Neon>(g, in, packed, zero, out, p0, p1, p);
  const uint8_t* bias = static_cast<const uint8_t*>(packed);
  const int8_t* w = reinterpret_cast<const int8_t*>(bias + C * 4);
  const uint8_t* m = bias + C * 4 + taps * C;
  const qu8_neon::Requant rq(p);
  size_t offset[qu8_simd::kMaxTaps];
  tap_offsets(g, offset);
  const uint8_t* rows[qu8_simd::kMaxTaps];
  const qu8_simd::Requant<Neon> rq_tail(p);
  qu8_simd::PixelCursor px(p0, g.OH, g.OW);
  for (size_t pix = p0; pix < p1; ++pix, px.next()) {
    uint8_t* o = out + pix * C;
    qu8_simd::dw_rows(g, in, zero, px, offset, rows);
    size_t c = 0;
    for (; c + 16 <= C; c += 16) dw_channels<2>(rows, taps, bias, w, m, C, c, o, rq);
    for (; c + 8 <= C; c += 8) dw_channels<1>(rows, taps, bias, w, m, C, c, o, rq);
    for (; c < C; c += 4) {  // 1 to 7 channels
      const size_t nc = C - c < 4 ? C - c : 4;
      int32x4_t acc = Neon::load_i32_partial(bias + c * 4, nc);
      qu8_simd::dw_accumulate_partial<Neon>(acc, rows, taps, w, C, c, nc);
      Neon::store_u8_partial(rq_tail(acc, Neon::load_f32_partial(m + c * 4, nc)), o + c, nc);
    }
  }
}
void qu8_maxpool__neon(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1) {
  qu8_simd::maxpool<Neon>(g, in, out, p0, p1);
}
void qu8_avgpool__neon(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1,
                       const QU8PoolParams& p) {
  qu8_simd::avgpool<Neon>(g, in, out, p0, p1, p);
}
void qu8_global_avgpool__neon(size_t HW, size_t C, const uint8_t* in, uint8_t* out, size_t n0, size_t n1,
                              const QU8PoolParams& p) {
  qu8_simd::global_avgpool<Neon>(HW, C, in, out, n0, n1, p);
}
void qu8_add__neon(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out, const QU8AddParams& p) {
  qu8_simd::add<Neon>(n, a, b, out, p);
}
void qu8_mul_rows__neon(size_t rows, size_t n, const uint8_t* a, size_t a_rs, const uint8_t* b, size_t b_rs,
                        uint8_t* out, const QU8MulParams& p) {
  qu8_simd::mul_rows<Neon>(rows, n, a, a_rs, b, b_rs, out, p);
}
// The 256-byte table as four 64-byte quarters: tbl looks 16 bytes up in the first, and tbx in each
// next one at the index less 64, 128, 192 (an index past 63 leaves the byte as it is, and the
// subtraction wraps the smaller codes past 63), 16 bytes in four lookups and three subtractions.
void qu8_lookup__neon(size_t n, const uint8_t* in, uint8_t* out, const uint8_t* table) {
  const uint8x16x4_t t0 = vld1q_u8_x4(table), t1 = vld1q_u8_x4(table + 64), t2 = vld1q_u8_x4(table + 128),
                     t3 = vld1q_u8_x4(table + 192);
  const uint8x16_t k64 = vdupq_n_u8(64), k128 = vdupq_n_u8(128), k192 = vdupq_n_u8(192);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const uint8x16_t x = vld1q_u8(in + i);
    uint8x16_t r = vqtbl4q_u8(t0, x);
    r = vqtbx4q_u8(r, t1, vsubq_u8(x, k64));
    r = vqtbx4q_u8(r, t2, vsubq_u8(x, k128));
    r = vqtbx4q_u8(r, t3, vsubq_u8(x, k192));
    vst1q_u8(out + i, r);
  }
  for (; i < n; ++i) out[i] = table[in[i]];
}

void qu8_quantize__neon(size_t n, const float* x, uint8_t* q, float scale, int32_t zero_point) {
  qu8_simd::quantize<Neon>(n, x, q, scale, zero_point);
}
void qu8_dequantize__neon(size_t n, const uint8_t* q, float* y, float scale, int32_t zero_point) {
  qu8_simd::dequantize<Neon>(n, q, y, scale, zero_point);
}

namespace {
// Constant-initialised (no code runs to build it), so asking for the table is safe on any CPU.
const QU8Kernels k_table = {
    "neon",
    kMR,
    kNR,
    4,  // kr: c4 blocks
    1,  // weight_bytes: int8
    Q8_KERNEL(qu8_igemm_8x8c4__neon),
    Q8_KERNEL(qu8_gemm_8x8c4__neon),
    Q8_KERNEL(qu8_dwconv__neon),
    Q8_KERNEL(qu8_maxpool__neon),
    Q8_KERNEL(qu8_avgpool__neon),
    Q8_KERNEL(qu8_global_avgpool__neon),
    Q8_KERNEL(qu8_add__neon),
    Q8_KERNEL(qu8_quantize__neon),
    Q8_KERNEL(qu8_dequantize__neon),
    Q8_KERNEL(qu8_mul_rows__neon),
    Q8_KERNEL(qu8_lookup__neon),
    Q8_KERNEL(qu8_gemm_dequantize_8x8c4__neon),
};
}  // namespace

const QU8Kernels* qu8_kernels_neon() { return &k_table; }

}  // namespace q8::kern

#else
namespace q8::kern {
const QU8Kernels* qu8_kernels_neon() { return nullptr; }  // not an AArch64 build
}  // namespace q8::kern
#endif
