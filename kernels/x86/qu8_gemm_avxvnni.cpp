// int8 GEMM / indirect GEMM micro-kernels for AVX-VNNI: the VEX-encoded 256-bit vpdpbusd of Intel's
// Alder Lake and later client cores (which have no AVX-512) and of CPUs that also have AVX-512 VNNI.
// Compiled with -mavx2 -mfma -mavxvnni only, never AVX-512 flags, so the code runs on any of them.
//
// Tile of 6 rows x 16 output channels: 12 ymm accumulators of int32 (2 per row, 8 lanes each),
// 2 ymm of weights and 1 broadcast, 15 of the 16 ymm registers. Per step of 4 input channels: two
// 32-byte weight loads (16 lanes x 4 int8), one 4-byte broadcast per row, and 12 vpdpbusd (u8
// activations x s8 weights, 4 MACs per int32 lane, exact: no saturation, sums wrap modulo 2^32
// like the reference's). Weights are packed int8 in c4 blocks (kr = 4, weight_bytes = 1): lane n
// of a block holds the 4 consecutive input channels of output channel n, the layout vpdpbusd
// reads. Tiles of fewer rows (the driver balances tiles) and of at most 8 channels run
// specialised code without dead rows or columns.
#include "kernels/pin_registers.h"
#include "kernels/qu8_gemm_rows.h"
#include "kernels/qu8_internal.h"
#include "kernels/unroll.h"

#if defined(__AVX2__) && defined(__AVXVNNI__)
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/qu8_ops_simd.h"
#include "kernels/x86/partial_vectors.h"

namespace q8::kern {
namespace {

constexpr size_t kMR = kQu8AvxvnniMR, kNR = kQu8AvxvnniNR;
static_assert(kNR == 16, "two ymm of int32 per row");

// The int32/float lanes qu8_simd::Requant needs: its float sequence is the one of qu8.h.
struct Ymm {
  using I = __m256i;
  using F = __m256;
  static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  static F set1f(float v) { return _mm256_set1_ps(v); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  static F cvtf(I a) { return _mm256_cvtepi32_ps(a); }
  static F mulf(F a, F b) { return _mm256_mul_ps(a, b); }
  static F maxf(F a, F lo) { return _mm256_max_ps(a, lo); }  // a > lo ? a : lo
  static F minf(F a, F hi) { return _mm256_min_ps(a, hi); }  // a < hi ? a : hi
  static I round(F a) { return _mm256_cvtps_epi32(a); }      // MXCSR: round half to even
};

inline int32_t load_u32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline __m256i load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// R rows (R <= kMR), V ymm columns of 8 channels (V = 1: nc <= 8). Row r's tap t is a[r * ks + t].
// Out is uint8_t (requantized: the gemm and igemm) or float (dequantized: gemm_dequantize, whose
// packing holds the scales s_a * s_w[n] where the multipliers go): the same loop, only the
// epilogue differs.
template <int R, int V, class Out>
void tile(size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, Out* c, size_t c_stride,
          const QU8Requant& p) {
  const uint8_t* pw = static_cast<const uint8_t*>(w);
  __m256i acc[R][V];
  Q8_UNROLL
  for (int v = 0; v < V; ++v) {
    const __m256i b = load(pw + 32 * v);  // bias' (zero points folded in: qu8.h)
    Q8_UNROLL
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  pw += kNR * 4;
  const size_t blocks = (kc + 3) / 4;  // the last block may read up to 3 bytes past kc
  if (blocks == 1) {                   // first layers (kc = 3): one step per tap, no inner loop
#pragma GCC unroll 2
    for (size_t t = 0; t < ks; ++t) {
      __m256i wv[V];
      Q8_UNROLL
      for (int v = 0; v < V; ++v) wv[v] = load(pw + 32 * v);
      Q8_UNROLL
      for (int r = 0; r < R; ++r) {
        const __m256i x = _mm256_set1_epi32(load_u32(a[r * ks + t]));
        Q8_UNROLL
        for (int v = 0; v < V; ++v) acc[r][v] = _mm256_dpbusd_avx_epi32(acc[r][v], x, wv[v]);
      }
      pw += kNR * 4;
    }
  } else {
    for (size_t t = 0; t < ks; ++t) {
      const uint8_t* ar[R];
      Q8_UNROLL
      for (int r = 0; r < R; ++r) ar[r] = a[r * ks + t];
      for (size_t b = 0; b < blocks; ++b) {
        __m256i wv[V];
        Q8_UNROLL
        for (int v = 0; v < V; ++v) wv[v] = load(pw + 32 * v);
        Q8_UNROLL
        for (int r = 0; r < R; ++r) {
          const __m256i x = _mm256_set1_epi32(load_u32(ar[r] + 4 * b));
          Q8_UNROLL
          for (int v = 0; v < V; ++v) acc[r][v] = _mm256_dpbusd_avx_epi32(acc[r][v], x, wv[v]);
        }
        pw += kNR * 4;
      }
    }
  }
  pin_registers(acc);  // kernels/pin_registers.h: no accumulator spills in the loop
  __m256 m[V];
  Q8_UNROLL
  for (int v = 0; v < V; ++v) m[v] = _mm256_loadu_ps(reinterpret_cast<const float*>(pw + 32 * v));
  if constexpr (std::is_same_v<Out, float>) {
    // out = (float)acc * scale[n]: one conversion (round to nearest even, as the reference's
    // cast) and one rounding of the product.
    Q8_UNROLL
    for (int r = 0; r < R; ++r) {
      Q8_UNROLL
      for (int v = 0; v < V; ++v)
        store_f32x8(c + r * c_stride + 8 * v, _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][v]), m[v]), nc - 8 * v);
    }
  } else {
    // Requantize with qu8_ops_simd.h's Requant (qu8.h's float steps). Its lanes lie in
    // [out_min, out_max], so the saturating packs (int32 -> int16 -> uint8) never change them.
    const qu8_simd::Requant<Ymm> rq(p);
    Q8_UNROLL
    for (int r = 0; r < R; ++r) {
      __m256i q[V];
      Q8_UNROLL
      for (int v = 0; v < V; ++v) q[v] = rq(acc[r][v], m[v]);
      store_u8_row<V>(c + r * c_stride, q, nc);
    }
  }
}

template <int R, class Out>
constexpr TileFn<Out> pick(size_t nc) {
  return nc > 8 ? &tile<R, 2, Out> : &tile<R, 1, Out>;
}
template <class Out>
TileFn<Out> select(size_t mr, size_t nc) {
  static_assert(kMR == 6, "select() and the kernels' names cover 1..6 rows");
  switch (mr) {
    case 1: return pick<1, Out>(nc);
    case 2: return pick<2, Out>(nc);
    case 3: return pick<3, Out>(nc);
    case 4: return pick<4, Out>(nc);
    case 5: return pick<5, Out>(nc);
    default: return pick<6, Out>(nc);
  }
}

}  // namespace

void qu8_igemm_6x16c4__avxvnni(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                               uint8_t* c, size_t c_stride, const QU8Requant& p) {
  select<uint8_t>(mr, nc)(nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_6x16c4__avxvnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                              uint8_t* c, size_t c_stride, const QU8Requant& p) {
  gemm_rows<kMR>(select<uint8_t>, mr, nc, kc, a, a_stride, w, c, c_stride, p);
}

void qu8_gemm_dequantize_6x16c4__avxvnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                         const void* w, float* c, size_t c_stride) {
  gemm_rows<kMR>(select<float>, mr, nc, kc, a, a_stride, w, c, c_stride, QU8Requant{});
}

}  // namespace q8::kern
#endif
