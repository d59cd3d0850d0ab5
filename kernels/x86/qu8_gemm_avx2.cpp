// int8 GEMM / indirect GEMM micro-kernels for AVX2: tile of up to MR = 3 rows x 16 output
// channels, exact without VNNI.
//
// Why not vpmaddubsw: it saturates (u8 x s8 pair sums to int16): 255 * (|w1| + |w2|) exceeds
// 32767 as soon as two same-sign weights of a pair sum past 128, and the weights of real models do
// (per-channel quantization puts every channel's largest weight at +-127; in ResNet-18 20-50% of
// the 16-lane x 4-channel blocks hold such a pair, in the seed model all of them), so a pack-time
// split of those pairs would cost most of what it saves, and int16 accumulation of several
// vpmaddubsw (the only way to beat one multiply per 16 MACs) fails on nearly every step.
// Both operands are therefore int16 and multiplied with vpmaddwd, which is exact
// (|a * w + a' * w'| <= 2 * 255 * 128 fits int32).
//
// On Zen 3 the loop is bound by the count of vector ALU uops (vpmaddwd and vpaddd share the four
// vector pipes; a load folded into vpmaddwd is not an ALU uop), so the scheme minimises them:
//   - the table packs its weights as int16 (QU8Kernels::weight_bytes = 2): per block of 4 input
//     channels, lane n holds int16 (k0, k1, k2, k3), 4 lanes per ymm, 4 ymm for 16 lanes, read
//     straight from memory by vpmaddwd;
//   - per row and block, the 4 activation bytes are broadcast and one vpshufb zero-extends them
//     to int16 (a0, a1, a2, a3) repeated;
//   - vpmaddwd then gives per lane two int32 partial sums (k0 a0 + k1 a1, k2 a2 + k3 a3) in
//     adjacent elements, accumulated apart (4 ymm per row: hence 3 rows in 16 registers) and
//     added pairwise once per tile (vphaddd) before the requantization.
// Per row and block: 1 shuffle + 4 vpmaddwd + 4 vpaddd for 64 MACs (7.1 MACs per uop; widening
// int8 weights in registers would cost 11 per 64). int32 sums wrap like the scalar
// reference's (any true accumulator fits in int32), so the order of the additions does not
// change the result: each lane's pair starts as (bias', 0) (vpmovzxdq of the biases) instead of
// the bias' being added after the loop.
// The epilogue counts too (at the kc of 16-24 of MobileNetV2's expansions the loop is only four to
// six blocks), so it runs on the lanes in the order vphaddd leaves them, (0 1 4 5 | 2 3 6 7)
// per group of 8, with the multipliers permuted once per tile to match, and restores channel order
// with one byte shuffle of the packed row instead of a vpermq per group and row. The clamp at the
// low bound is skipped where out_min is 0: vpackuswb's saturation clamps there (a float below
// -2^31 converts to INT_MIN, which + z_out stays negative, so it too becomes 0).
// Tiles of at most 8 channels run a two-ymm-per-row variant.
//
// The avx2_w8 table's tiles are the same over int8 weights (weight_bytes = 1), each 16-byte half
// block sign-extended by vpmovsxbw as it is loaded: 4 more uops per block, shared by the rows. A
// dense layer of a row or a few (the classifier at batch 1) reads each weight once, so its time is
// the weights' bytes, which int8 halves; the avx2 table runs its dense layers there (::dense).
//
// bench/bench_qu8_gemm.cpp measures this core's exact ceiling: about 83 GMAC/s for a loop of
// independent vpmaddwd + vpaddd (8 MACs per uop).
#include "kernels/pin_registers.h"
#include "kernels/qu8_gemm_rows.h"
#include "kernels/qu8_internal.h"
#include "kernels/unroll.h"

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/x86/partial_vectors.h"

namespace q8::kern {
namespace {

constexpr size_t kMR = kQu8Avx2MR, kNR = kQu8Avx2NR;
static_assert(kNR == 16, "4 lanes of 4 int16 weights per ymm, 4 ymm per block");

// Weight vector j (lanes 4j..4j+3, int16 (k0, k1, k2, k3) each) of a block packed with WB bytes
// per weight.
template <size_t WB>
inline __m256i load_weights(const uint8_t* block, int j) {
  if constexpr (WB == 2) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 32 * j));
  } else {
    static_assert(WB == 1, "int8 or int16 weights");
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * j)));
  }
}

inline int32_t load_u32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// One output row from V groups of 8 int32 lanes in vphaddd's order (0 1 4 5 | 2 3 6 7), each lane
// at most 255 (a lane below 0, where the tile left the low clamp to the packs, saturates to 0):
// packed to bytes, then one vpshufb puts the bytes in channel order; nc <= 8 * V of them are stored.
template <int V>
inline void store_u8_row_from_pairs(uint8_t* out, const __m256i (&q)[V], size_t nc) {
  __m128i bytes;
  if constexpr (V == 2) {
    // vpackssdw works per 128-bit half: (0 1 4 5 8 9 12 13 | 2 3 6 7 10 11 14 15) as int16.
    const __m256i h = _mm256_packs_epi32(q[0], q[1]);
    bytes = _mm_packus_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    bytes = _mm_shuffle_epi8(bytes, _mm_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15));
  } else {
    const __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(q[0]), _mm256_extracti128_si256(q[0], 1));
    bytes =
        _mm_shuffle_epi8(_mm_packus_epi16(h, h), _mm_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15));
  }
  store_row_bytes<V>(out, bytes, nc);
}

// R rows (R <= kMR), V groups of 8 output channels (V = 1: nc <= 8), each group 2 ymm of partial
// sums per row. Row r's tap t is a[r * ks + t]. Out is uint8_t (requantized, the gemm) or float
// (dequantized, gemm_dequantize).
template <size_t WB, int R, int V, class Out>
void tile(size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, Out* c, size_t c_stride,
          const QU8Requant& p) {
  const uint8_t* pb = static_cast<const uint8_t*>(w);
  const uint8_t* pw = pb + kNR * sizeof(int32_t);
  // Accumulator j of a row holds lanes 4j..4j+3 as pairs of partial sums: (bias', 0) to start.
  __m256i start[2 * V];
  Q8_UNROLL
  for (int j = 0; j < 2 * V; ++j)
    start[j] = _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + 16 * j)));
  __m256i acc[R][2 * V];
  Q8_UNROLL
  for (int r = 0; r < R; ++r) {
    Q8_UNROLL
    for (int j = 0; j < 2 * V; ++j) acc[r][j] = start[j];
  }
  // Bytes (a0 a1 a2 a3) -> int16 (a0, a1, a2, a3) x 4 (-1 selects a zero byte).
  const __m256i widen = _mm256_setr_epi8(0, -1, 1, -1, 2, -1, 3, -1, 0, -1, 1, -1, 2, -1, 3, -1, 0, -1, 1, -1, 2, -1, 3,
                                         -1, 0, -1, 1, -1, 2, -1, 3, -1);
  const size_t blocks = (kc + 3) / 4;  // the last block may read up to 3 bytes past kc
  for (size_t t = 0; t < ks; ++t) {
    const uint8_t* ar[R];
    Q8_UNROLL
    for (int r = 0; r < R; ++r) ar[r] = a[r * ks + t];
    for (size_t b = 0; b < blocks; ++b) {
      // int16 weights stay memory operands of vpmaddwd; int8 ones are widened once per block.
      __m256i wv[2 * V] = {};
      if constexpr (WB == 1) {
        Q8_UNROLL
        for (int j = 0; j < 2 * V; ++j) wv[j] = load_weights<1>(pw, j);
      }
      Q8_UNROLL
      for (int r = 0; r < R; ++r) {
        const __m256i x = _mm256_shuffle_epi8(_mm256_set1_epi32(load_u32(ar[r] + 4 * b)), widen);
        Q8_UNROLL
        for (int j = 0; j < 2 * V; ++j) {
          const __m256i wj = WB == 2 ? load_weights<2>(pw, j) : wv[j];
          acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(x, wj));
        }
      }
      pw += kNR * 4 * WB;
    }
  }
  pin_registers(acc);  // kernels/pin_registers.h: no accumulator spills in the loop
  // vphaddd of a group's two accumulators gives its 8 lanes as (0 1 4 5 | 2 3 6 7); the
  // multipliers are read in that order (vpermpd 0xD8 swaps the middle 64-bit pairs, both ways).
  __m256 m[V];
  Q8_UNROLL
  for (int v = 0; v < V; ++v)
    m[v] = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_loadu_ps(reinterpret_cast<const float*>(pw + 32 * v))), 0xD8));
  if constexpr (std::is_same_v<Out, float>) {
    // Dequantize (qu8.h): (float)acc * scale, cvtdq2ps rounding to nearest even like the cast.
    Q8_UNROLL
    for (int r = 0; r < R; ++r) {
      float* out = c + r * c_stride;
      Q8_UNROLL
      for (int v = 0; v < V; ++v) {
        const __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_hadd_epi32(acc[r][2 * v], acc[r][2 * v + 1])), m[v]);
        store_f32x8(out + 8 * v, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(x), 0xD8)), nc - 8 * v);
      }
    }
  } else {
    // Requantize exactly as qu8.h (see the VNNI kernel). The result is in [out_min, out_max], or
    // below 0 where out_min is 0 and the low clamp is skipped: the saturating packs (int32 ->
    // int16 -> uint8) take it to 0 and change nothing else.
    const __m256 lo = _mm256_set1_ps(static_cast<float>(int32_t{p.out_min} - p.out_zero_point));
    const __m256 hi = _mm256_set1_ps(static_cast<float>(int32_t{p.out_max} - p.out_zero_point));
    const __m256i z = _mm256_set1_epi32(p.out_zero_point);
    const bool clamp_lo = p.out_min != 0;
    Q8_UNROLL
    for (int r = 0; r < R; ++r) {
      __m256i q[V];
      Q8_UNROLL
      for (int v = 0; v < V; ++v) {
        __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_hadd_epi32(acc[r][2 * v], acc[r][2 * v + 1])), m[v]);
        if (clamp_lo) x = _mm256_max_ps(x, lo);
        q[v] = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(x, hi)), z);
      }
      store_u8_row_from_pairs<V>(c + r * c_stride, q, nc);
    }
  }
}

template <size_t WB, int R, class Out>
constexpr TileFn<Out> pick(size_t nc) {
  return nc > 8 ? &tile<WB, R, 2, Out> : &tile<WB, R, 1, Out>;
}
template <size_t WB, class Out>
TileFn<Out> select(size_t mr, size_t nc) {
  static_assert(kMR == 3, "select() and the kernels' names cover 1..3 rows");
  switch (mr) {
    case 1: return pick<WB, 1, Out>(nc);
    case 2: return pick<WB, 2, Out>(nc);
    default: return pick<WB, 3, Out>(nc);
  }
}

}  // namespace

void qu8_igemm_3x16c4__avx2(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                            uint8_t* c, size_t c_stride, const QU8Requant& p) {
  select<2, uint8_t>(mr, nc)(nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_3x16c4__avx2(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                           uint8_t* c, size_t c_stride, const QU8Requant& p) {
  gemm_rows<kMR>(select<2, uint8_t>, mr, nc, kc, a, a_stride, w, c, c_stride, p);
}

void qu8_gemm_dequantize_3x16c4__avx2(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                                      float* c, size_t c_stride) {
  gemm_rows<kMR>(select<2, float>, mr, nc, kc, a, a_stride, w, c, c_stride, QU8Requant{});
}

void qu8_igemm_3x16c4__avx2_w8(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                               uint8_t* c, size_t c_stride, const QU8Requant& p) {
  select<1, uint8_t>(mr, nc)(nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_3x16c4__avx2_w8(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                              uint8_t* c, size_t c_stride, const QU8Requant& p) {
  gemm_rows<kMR>(select<1, uint8_t>, mr, nc, kc, a, a_stride, w, c, c_stride, p);
}

void qu8_gemm_dequantize_3x16c4__avx2_w8(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                         const void* w, float* c, size_t c_stride) {
  gemm_rows<kMR>(select<1, float>, mr, nc, kc, a, a_stride, w, c, c_stride, QU8Requant{});
}

}  // namespace q8::kern
#endif
