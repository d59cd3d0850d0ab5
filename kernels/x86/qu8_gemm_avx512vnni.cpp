// int8 GEMM / indirect GEMM micro-kernels for AVX-512 VNNI, in two tile shapes of int32 zmm
// accumulators:
//   8 rows x 32 output channels (16 accumulators): per step of 4 input channels two 64-byte weight
//     loads (32 lanes x 4 int8), one 4-byte broadcast per row and 16 vpdpbusd (u8 activations x s8
//     weights, 4 MACs per int32 lane, no saturation). Zen 4 retires one zmm vpdpbusd per cycle,
//     Zen 5 two; 16 independent accumulators cover the latency on both.
//   6 rows x 64 output channels (24 accumulators): four weight loads, six broadcasts, 24 vpdpbusd
//     a step. On an Intel Xeon (Ice Lake: two vpdpbusd a cycle, two loads) the 8x32 tile reached
//     45-60 % of the measured peak on ResNet's shapes and this one 1.0-1.3x more (BENCHMARKS.md).
// Dispatch picks the table (runtime/dispatch.cpp). With one or two rows more sets of accumulators
// cover the latency (see tile()). Tiles of fewer rows (the driver balances tiles, e.g. 7 x 7 rows
// for M = 49) and of fewer channels run specialised code without dead rows/columns.
#include "kernels/pin_registers.h"
#include "kernels/qu8_gemm_rows.h"
#include "kernels/qu8_internal.h"
#include "kernels/unroll.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
// GCC 12's avx512fintrin.h initialises _mm512_undefined_ps() from itself, and the uninitialized
// warnings then flag every intrinsic inlined here that uses it (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstring>
#include <type_traits>

namespace q8::kern {
namespace {

inline int32_t load_u32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// A tile reads its panel of weights once, front to back. Where a model's weights outgrow the
// share of L3 a core keeps (resnet50's layer4, AlexNet's dense layers), they come from memory and
// the hardware prefetcher does not run far enough ahead of two vpdpbusd a cycle: each step of the
// 6x64 tile asks for the line kPrefetchBytes (16 steps) ahead of the one it loads. Measured on an
// Intel Xeon, BENCHMARKS.md: resnet50 int8's layer4 4-5 % faster; 1 and 8 KiB were no better. The
// 8x32 tile, which dispatch keeps for AMD's cores, prefetches nothing until it is measured there
// (with its weights in L1 the prefetches cost it about 2 %).
constexpr size_t kPrefetchBytes = 4096;
// The V weight vectors of one step of 4 input channels (p: the step's row of the panel).
template <size_t NR, int V>
inline void load_weights(const uint8_t* p, __m512i (&wv)[V]) {
  Q8_UNROLL
  for (int v = 0; v < V; ++v) {
    if constexpr (NR == kQu8Avx512vnni6x64NR)
      _mm_prefetch(reinterpret_cast<const char*>(p + 64 * v + kPrefetchBytes), _MM_HINT_T0);
    wv[v] = _mm512_loadu_si512(p + 64 * v);
  }
}

// R rows, V zmm columns (V = ceil(nc / 16)) of a panel of NR channels. Row r's tap t is a[r * ks + t]. Out is
// uint8_t (requantized, the gemm) or float (dequantized, gemm_dequantize): the same loop, only
// the epilogue differs.
// With one or two rows, the R x V accumulators are too few chains to cover vpdpbusd's latency
// (a batch-1 dense layer would run at a fraction of the core's rate), so S sets of accumulators
// take the blocks in turn and are added when the loop ends: int32 sums wrap, so their order does
// not change the result.
template <size_t NR, int R, int V, class Out>
void tile(size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, Out* c, size_t c_stride,
          const QU8Requant& p) {
  constexpr int S = R == 1 ? 4 : R == 2 ? 2 : 1;
  const uint8_t* pw = static_cast<const uint8_t*>(w);
  __m512i acc[S][R][V];
  Q8_UNROLL
  for (int v = 0; v < V; ++v) {
    const __m512i b = _mm512_loadu_si512(pw + 64 * v);  // bias' (zero points folded in)
    Q8_UNROLL
    for (int r = 0; r < R; ++r) {
      acc[0][r][v] = b;
      Q8_UNROLL
      for (int s = 1; s < S; ++s) acc[s][r][v] = _mm512_setzero_si512();
    }
  }
  pw += NR * 4;
  const size_t blocks = (kc + 3) / 4;  // the last block may read up to 3 bytes past kc
  if (blocks == 1) {                   // first layers (kc = 3): one step per tap, no inner loop
#pragma GCC unroll 2
    for (size_t t = 0; t < ks; ++t) {
      __m512i wv[V];
      Q8_UNROLL
      for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_si512(pw + 64 * v);
      Q8_UNROLL
      for (int r = 0; r < R; ++r) {
        const __m512i x = _mm512_set1_epi32(load_u32(a[r * ks + t]));
        Q8_UNROLL
        for (int v = 0; v < V; ++v) acc[0][r][v] = _mm512_dpbusd_epi32(acc[0][r][v], x, wv[v]);
      }
      pw += NR * 4;
    }
  } else {
    for (size_t t = 0; t < ks; ++t) {
      const uint8_t* ar[R];
      Q8_UNROLL
      for (int r = 0; r < R; ++r) ar[r] = a[r * ks + t];
      size_t b = 0;
      if constexpr (S > 1) {
        for (; b + S <= blocks; b += S) {
          Q8_UNROLL
          for (int s = 0; s < S; ++s) {
            __m512i wv[V];
            load_weights<NR>(pw + NR * 4 * s, wv);
            Q8_UNROLL
            for (int r = 0; r < R; ++r) {
              const __m512i x = _mm512_set1_epi32(load_u32(ar[r] + 4 * (b + s)));
              Q8_UNROLL
              for (int v = 0; v < V; ++v) acc[s][r][v] = _mm512_dpbusd_epi32(acc[s][r][v], x, wv[v]);
            }
          }
          pw += NR * 4 * S;
        }
      }
      for (; b < blocks; ++b) {
        __m512i wv[V];
        load_weights<NR>(pw, wv);
        Q8_UNROLL
        for (int r = 0; r < R; ++r) {
          const __m512i x = _mm512_set1_epi32(load_u32(ar[r] + 4 * b));
          Q8_UNROLL
          for (int v = 0; v < V; ++v) acc[0][r][v] = _mm512_dpbusd_epi32(acc[0][r][v], x, wv[v]);
        }
        pw += NR * 4;
      }
    }
  }
  pin_registers(acc);  // kernels/pin_registers.h: no accumulator spills in the loop
  Q8_UNROLL
  for (int s = 1; s < S; ++s) {
    Q8_UNROLL
    for (int r = 0; r < R; ++r) {
      Q8_UNROLL
      for (int v = 0; v < V; ++v) acc[0][r][v] = _mm512_add_epi32(acc[0][r][v], acc[s][r][v]);
    }
  }
  if constexpr (std::is_same_v<Out, float>) {
    // Dequantize (qu8.h): (float)acc * scale, cvtdq2ps rounding to nearest even like the cast.
    Q8_UNROLL
    for (int v = 0; v < V; ++v) {
      const __m512 m = _mm512_loadu_ps(reinterpret_cast<const float*>(pw + 64 * v));
      const size_t cols = nc - 16 * v;
      const __mmask16 mask = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
      Q8_UNROLL
      for (int r = 0; r < R; ++r)
        _mm512_mask_storeu_ps(c + r * c_stride + 16 * v, mask, _mm512_mul_ps(_mm512_cvtepi32_ps(acc[0][r][v]), m));
    }
  } else {
    // Requantize (qu8.h): x = (float)acc * M; clamp to [out_min - z, out_max - z]; round to
    // nearest even (cvtps2dq under the default MXCSR); + z. The result lies in [out_min, out_max],
    // so the unsigned-saturating narrowing store never changes it.
    const __m512 lo = _mm512_set1_ps(static_cast<float>(int32_t{p.out_min} - p.out_zero_point));
    const __m512 hi = _mm512_set1_ps(static_cast<float>(int32_t{p.out_max} - p.out_zero_point));
    const __m512i z = _mm512_set1_epi32(p.out_zero_point);
    Q8_UNROLL
    for (int v = 0; v < V; ++v) {
      const __m512 m = _mm512_loadu_ps(reinterpret_cast<const float*>(pw + 64 * v));
      const size_t cols = nc - 16 * v;
      const __mmask16 mask = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
      Q8_UNROLL
      for (int r = 0; r < R; ++r) {
        __m512 x = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[0][r][v]), m);
        x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
        const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(x), z);
        _mm512_mask_cvtusepi32_storeu_epi8(c + r * c_stride + 16 * v, mask, q);
      }
    }
  }
}

// The tile of a panel of NR channels for nc of them: the fewest zmm columns that hold nc.
template <size_t NR, int R, class Out>
constexpr TileFn<Out> pick(size_t nc) {
  if constexpr (NR == 64) {
    if (nc > 48) return &tile<NR, R, 4, Out>;
    if (nc > 32) return &tile<NR, R, 3, Out>;
  }
  return nc > 16 ? &tile<NR, R, 2, Out> : &tile<NR, R, 1, Out>;
}
// 8 rows at most for NR = 32, 6 for NR = 64.
template <size_t NR, class Out>
TileFn<Out> select(size_t mr, size_t nc) {
  switch (mr) {
    case 1: return pick<NR, 1, Out>(nc);
    case 2: return pick<NR, 2, Out>(nc);
    case 3: return pick<NR, 3, Out>(nc);
    case 4: return pick<NR, 4, Out>(nc);
    case 5: return pick<NR, 5, Out>(nc);
  }
  if constexpr (NR == 64) {
    return pick<NR, 6, Out>(nc);
  } else {
    switch (mr) {
      case 6: return pick<NR, 6, Out>(nc);
      case 7: return pick<NR, 7, Out>(nc);
      default: return pick<NR, 8, Out>(nc);
    }
  }
}
template <class Out>
TileFn<Out> select_8x32(size_t mr, size_t nc) {
  return select<kQu8Avx512vnniNR, Out>(mr, nc);
}
template <class Out>
TileFn<Out> select_6x64(size_t mr, size_t nc) {
  return select<kQu8Avx512vnni6x64NR, Out>(mr, nc);
}

}  // namespace

void qu8_igemm_8x32c4__avx512vnni(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                                  uint8_t* c, size_t c_stride, const QU8Requant& p) {
  select_8x32<uint8_t>(mr, nc)(nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_8x32c4__avx512vnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                                 uint8_t* c, size_t c_stride, const QU8Requant& p) {
  gemm_rows<kQu8Avx512vnniMR>(select_8x32<uint8_t>, mr, nc, kc, a, a_stride, w, c, c_stride, p);
}

// The amx table (mr = 16) uses it too: gemm_rows takes any row count, 8 rows at a time.
void qu8_gemm_dequantize_8x32c4__avx512vnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                            const void* w, float* c, size_t c_stride) {
  gemm_rows<kQu8Avx512vnniMR>(select_8x32<float>, mr, nc, kc, a, a_stride, w, c, c_stride, QU8Requant{});
}

void qu8_igemm_6x64c4__avx512vnni(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                                  uint8_t* c, size_t c_stride, const QU8Requant& p) {
  select_6x64<uint8_t>(mr, nc)(nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_6x64c4__avx512vnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                                 uint8_t* c, size_t c_stride, const QU8Requant& p) {
  gemm_rows<kQu8Avx512vnni6x64MR>(select_6x64<uint8_t>, mr, nc, kc, a, a_stride, w, c, c_stride, p);
}

void qu8_gemm_dequantize_6x64c4__avx512vnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                            const void* w, float* c, size_t c_stride) {
  gemm_rows<kQu8Avx512vnni6x64MR>(select_6x64<float>, mr, nc, kc, a, a_stride, w, c, c_stride, QU8Requant{});
}

}  // namespace q8::kern
#endif
