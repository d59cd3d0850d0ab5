// Private to kernels/arm/qu8_neon.cpp, qu8_neondot.cpp and qu8_gemm_neoni8mm.cpp (AArch64 only).
//
// - The non-GEMM int8 ops of the neon table (depthwise, pools, add, quantize, dequantize),
//   defined in qu8_neon.cpp with baseline AArch64 flags and reused by the neondot and neoni8mm
//   tables, which differ only in their GEMM micro-kernels.
// - qu8.h's requantization on 4 float lanes, shared by the GEMM files. It lives in an unnamed
//   namespace so each file (compiled with its own -march) gets a private copy: an inline function
//   shared between a +dotprod file and a baseline one could otherwise be picked by the linker for
//   a caller on a CPU without the extension.
#pragma once

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/qu8.h"

namespace q8::kern {

void qu8_dwconv__neon(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out,
                      size_t p0, size_t p1, const QU8Requant& p);
void qu8_maxpool__neon(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1);
void qu8_avgpool__neon(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1,
                       const QU8PoolParams& p);
void qu8_global_avgpool__neon(size_t HW, size_t C, const uint8_t* in, uint8_t* out, size_t n0, size_t n1,
                              const QU8PoolParams& p);
void qu8_add__neon(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out, const QU8AddParams& p);
void qu8_quantize__neon(size_t n, const float* x, uint8_t* q, float scale, int32_t zero_point);
void qu8_dequantize__neon(size_t n, const uint8_t* q, float* y, float scale, int32_t zero_point);
void qu8_mul_rows__neon(size_t rows, size_t n, const uint8_t* a, size_t a_rs, const uint8_t* b, size_t b_rs,
                        uint8_t* out, const QU8MulParams& p);
void qu8_lookup__neon(size_t n, const uint8_t* in, uint8_t* out, const uint8_t* table);

namespace {  // NOLINT: per-translation-unit copies, see above
namespace qu8_neon {

// qu8.h, one NEON instruction per IEEE operation:
//   x = (float)acc * M            scvtf (exact or round-to-nearest-even, as the C++ cast), fmul
//   x = min(max(x, lo), hi)       fmaxnm/fminnm: equal to the reference's ternaries for every
//                                 non-NaN input, and a quiet NaN becomes the bound (the
//                                 reference's `x > lo ? x : lo` does the same)
//   q = round_half_even(x) + z    fcvtns (ties to even, like nearbyintf), add
// No FMA: the product is never added to anything before it is rounded.
struct Requant {
  float32x4_t lo, hi;
  int32x4_t z;
  explicit Requant(const QU8Requant& p)
      : lo(vdupq_n_f32(static_cast<float>(static_cast<int32_t>(p.out_min) - p.out_zero_point))),
        hi(vdupq_n_f32(static_cast<float>(static_cast<int32_t>(p.out_max) - p.out_zero_point))),
        z(vdupq_n_s32(p.out_zero_point)) {}
  int32x4_t operator()(int32x4_t acc, float32x4_t m) const { return of_float(vmulq_f32(vcvtq_f32_s32(acc), m)); }
  int32x4_t of_float(float32x4_t x) const {
    x = vminnmq_f32(vmaxnmq_f32(x, lo), hi);
    return vaddq_s32(vcvtnq_s32_f32(x), z);
  }
};

// Eight requantized lanes (each in [out_min, out_max]) to bytes; the saturating narrows are exact.
inline uint8x8_t narrow_u8(int32x4_t a, int32x4_t b) { return vqmovun_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))); }

// One GEMM tile row's 8 channels, of which [0, nc) are stored: requantized to bytes (gemm), or
// dequantized, (float)acc * scale (gemm_dequantize: scvtf rounds to nearest even like the C++
// cast, then one fmul).
inline void store_row8(int32x4_t s0, int32x4_t s1, float32x4_t m0, float32x4_t m1, const Requant& rq, uint8_t* out,
                       size_t nc) {
  const uint8x8_t q = narrow_u8(rq(s0, m0), rq(s1, m1));
  if (nc == 8) {
    vst1_u8(out, q);
  } else {
    uint8_t tmp[8];
    vst1_u8(tmp, q);
    std::memcpy(out, tmp, nc);
  }
}
inline void store_row8(int32x4_t s0, int32x4_t s1, float32x4_t m0, float32x4_t m1, const Requant&, float* out,
                       size_t nc) {
  const float32x4_t x0 = vmulq_f32(vcvtq_f32_s32(s0), m0), x1 = vmulq_f32(vcvtq_f32_s32(s1), m1);
  if (nc == 8) {
    vst1q_f32(out, x0);
    vst1q_f32(out + 4, x1);
  } else {
    float tmp[8];
    vst1q_f32(tmp, x0);
    vst1q_f32(tmp + 4, x1);
    std::memcpy(out, tmp, nc * sizeof(float));
  }
}

// Unaligned little loads and stores (packed bias and M arrays are not necessarily aligned).
inline int32x4_t load_i32x4(const uint8_t* p) { return vreinterpretq_s32_u8(vld1q_u8(p)); }
inline float32x4_t load_f32x4(const uint8_t* p) { return vreinterpretq_f32_u8(vld1q_u8(p)); }

}  // namespace qu8_neon
}  // namespace
}  // namespace q8::kern
#endif
