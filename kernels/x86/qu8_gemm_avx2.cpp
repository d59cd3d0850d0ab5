// int8 GEMM / indirect GEMM micro-kernels for AVX2: tile of up to MR rows x 16 output channels,
// two ymm of int32 per row, lanes in natural order.
//
// Exact without VNNI. vpmaddubsw (u8 x s8 -> int16 pair sums) saturates: 255 * (|w1| + |w2|)
// exceeds 32767 as soon as two same-sign weights of a pair sum past 128, and the weights of real
// models do (per-channel quantization puts every channel's largest weight at +-127; in ResNet-18
// 20-50% of the 16-lane x 4-channel blocks hold such a pair, in the seed model all of them), so
// a pack-time split of those pairs would cost most of what it saves, and int16 accumulation of
// several vpmaddubsw (the only way to beat one multiply per 16 MACs) fails on nearly every step.
// Both operands are therefore widened to int16 and multiplied with vpmaddwd, which is exact
// (|a * w + a' * w'| <= 2 * 255 * 128 fits int32):
//   - weights stay in the common packed layout (qu8.h: per lane 4 consecutive channels, c4). Per
//     block of 4 channels, vpmaddubsw with a 0/1 selector (1 * w + 0 * w': one product, cannot
//     saturate) sign-extends the even bytes to W02 = 8 lanes x int16 (k0, k2) and the odd bytes
//     to W13 = (k1, k3), in lane order; shared by all rows of the tile;
//   - per row, the 4 activation bytes are broadcast and vpshufb'd into int16 (a0, a2) x 8 and
//     (a1, a3) x 8 (zero-extended);
//   - acc[lane] += madd(x02, W02)[lane] + madd(x13, W13)[lane]: int32, wrapping like the scalar
//     reference (any true accumulator fits in int32, so the result is exact).
// The bias' (zero points folded in, qu8.h) starts the accumulators. The tile is 16 channels
// wide so that the weight widening is amortised over up to MR rows and one broadcast feeds four
// vpmaddwd; tiles of at most 8 channels run a one-ymm variant.
//
// Zen 3 runs two vpmaddwd (or vpmaddubsw) per cycle on two shared pipes and a vpaddd per product
// vector on the same four vector pipes, so the exact ceiling is about one cycle per 32 MACs
// (bench/bench_qu8_gemm.cpp measures it: about 80 GMAC/s in a loop of independent vpmaddwd +
// vpaddd; the saturating vpmaddubsw + vpmaddwd(ones) loop only reaches about 100).
#include "kernels/qu8_internal.h"

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstring>

namespace q8::kern {
namespace {

constexpr size_t kMR = kQu8Avx2MR, kNR = kQu8Avx2NR;
static_assert(kNR == 16, "two ymm of int32 per row");

inline int32_t load_u32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// R rows (R <= kMR), V ymm of 8 output channels (V = 1: nc <= 8). Row r's tap t is a[r * ks + t].
template <int R, int V>
void tile(size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, uint8_t* c, size_t c_stride,
          const QU8Requant& p) {
  const uint8_t* pw = static_cast<const uint8_t*>(w);
  __m256i acc[R][V];
  for (int v = 0; v < V; ++v) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pw + 32 * v));
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  pw += kNR * 4;
  // Weights: vpmaddubsw with a 0/1 selector sign-extends the even or the odd byte of each byte
  // pair (1 * w + 0 * w', exact): from a lane's (k0 k1 k2 k3), W02 gets int16 (k0, k2) and W13
  // gets (k1, k3), 8 lanes per ymm in lane order.
  const __m256i even = _mm256_set1_epi16(0x0001), odd = _mm256_set1_epi16(0x0100);
  // Activations: int16 (a0, a2) and (a1, a3) repeated (-1 selects a zero byte).
  const __m256i x02 = _mm256_setr_epi8(0, -1, 2, -1, 0, -1, 2, -1, 0, -1, 2, -1, 0, -1, 2, -1, 0, -1, 2, -1, 0, -1, 2,
                                       -1, 0, -1, 2, -1, 0, -1, 2, -1);
  const __m256i x13 = _mm256_setr_epi8(1, -1, 3, -1, 1, -1, 3, -1, 1, -1, 3, -1, 1, -1, 3, -1, 1, -1, 3, -1, 1, -1, 3,
                                       -1, 1, -1, 3, -1, 1, -1, 3, -1);
  const size_t blocks = (kc + 3) / 4;  // the last block may read up to 3 bytes past kc
  for (size_t t = 0; t < ks; ++t) {
    const uint8_t* ar[R];
    for (int r = 0; r < R; ++r) ar[r] = a[r * ks + t];
    for (size_t b = 0; b < blocks; ++b) {
      __m256i w02[V], w13[V];
      for (int v = 0; v < V; ++v) {
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pw + 32 * v));
        w02[v] = _mm256_maddubs_epi16(even, wv);
        w13[v] = _mm256_maddubs_epi16(odd, wv);
      }
      for (int r = 0; r < R; ++r) {
        const __m256i x = _mm256_set1_epi32(load_u32(ar[r] + 4 * b));
        const __m256i xa = _mm256_shuffle_epi8(x, x02);
        const __m256i xb = _mm256_shuffle_epi8(x, x13);
        for (int v = 0; v < V; ++v)
          acc[r][v] = _mm256_add_epi32(acc[r][v],
                                       _mm256_add_epi32(_mm256_madd_epi16(xa, w02[v]), _mm256_madd_epi16(xb, w13[v])));
      }
      pw += kNR * 4;
    }
  }
  // Requantize exactly as qu8.h (see the VNNI kernel). The result is in [out_min, out_max], so
  // the saturating packs (int32 -> int16 -> uint8) never change it.
  const __m256 lo = _mm256_set1_ps(static_cast<float>(int32_t{p.out_min} - p.out_zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(int32_t{p.out_max} - p.out_zero_point));
  const __m256i z = _mm256_set1_epi32(p.out_zero_point);
  __m256 m[V];
  for (int v = 0; v < V; ++v) m[v] = _mm256_loadu_ps(reinterpret_cast<const float*>(pw + 32 * v));
  for (int r = 0; r < R; ++r) {
    __m128i q16[V];
    for (int v = 0; v < V; ++v) {
      __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][v]), m[v]);
      x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
      const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(x), z);
      q16[v] = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    }
    const __m128i q8 = _mm_packus_epi16(q16[0], q16[V - 1]);  // lanes 0-7, then 8-15 (V = 2)
    uint8_t* out = c + r * c_stride;
    if (nc == 8 * V) {
      if (V == 2)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), q8);
      else
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out), q8);
    } else {
      uint8_t tmp[16];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), q8);
      std::memcpy(out, tmp, nc);
    }
  }
}

using TileFn = void (*)(size_t, size_t, size_t, const uint8_t* const*, const void*, uint8_t*, size_t,
                        const QU8Requant&);
template <int R>
constexpr TileFn pick(size_t nc) {
  return nc > 8 ? &tile<R, 2> : &tile<R, 1>;
}
TileFn select(size_t mr, size_t nc) {
  static_assert(kMR == 4, "select() and the kernels' names cover 1..4 rows");
  switch (mr) {
    case 1: return pick<1>(nc);
    case 2: return pick<2>(nc);
    case 3: return pick<3>(nc);
    default: return pick<4>(nc);
  }
}

}  // namespace

void qu8_igemm_4x16c4__avx2(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                            uint8_t* c, size_t c_stride, const QU8Requant& p) {
  select(mr, nc)(nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_4x16c4__avx2(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                           uint8_t* c, size_t c_stride, const QU8Requant& p) {
  const uint8_t* rows[kMR];
  for (size_t i = 0; i < mr; ++i) rows[i] = a + i * a_stride;
  select(mr, nc)(nc, kc, 1, rows, w, c, c_stride, p);
}

}  // namespace q8::kern
#endif
