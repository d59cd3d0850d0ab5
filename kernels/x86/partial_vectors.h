// Partial vectors through a small stack buffer, so nothing past a row's last byte is read or
// written (load_bytes_partial, store_bytes_partial: the avx2 table's element-wise ops and pools),
// and the row stores of the ymm GEMM tiles (the avx2 and avxvnni tables): whole vectors, or the
// first nc lanes, so no tile writes past its output channels. Inside an anonymous namespace: each
// including file compiles its own copy with its own ISA flags.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace q8::kern {
namespace {

// A vector V (__m128i, __m256i, __m256) whose first n bytes are those at p and the rest 0.
template <class V>
inline V load_bytes_partial(const void* p, size_t n) {
  alignas(sizeof(V)) uint8_t tmp[sizeof(V)] = {};
  std::memcpy(tmp, p, n);
  V v;
  std::memcpy(&v, tmp, sizeof v);
  return v;
}

// The first n bytes of v, written to p.
template <class V>
inline void store_bytes_partial(V v, void* p, size_t n) {
  alignas(sizeof(V)) uint8_t tmp[sizeof(V)];
  std::memcpy(tmp, &v, sizeof v);
  std::memcpy(p, tmp, n);
}

// 8 floats, or the first `cols` (< 8) of them.
inline void store_f32x8(float* out, __m256 x, size_t cols) {
  if (cols >= 8)
    _mm256_storeu_ps(out, x);
  else
    store_bytes_partial(x, out, cols * sizeof(float));
}

// The first nc (<= 8 * V, V = 1 or 2) bytes of `bytes` as one output row.
template <int V>
inline void store_row_bytes(uint8_t* out, __m128i bytes, size_t nc) {
  if (nc == 8 * V) {
    if (V == 2)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
    else
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out), bytes);
  } else {
    store_bytes_partial(bytes, out, nc);
  }
}

// V (1 or 2) vectors of 8 int32 lanes, each already in [0, 255] (so the saturating packs int32 ->
// int16 -> uint8 change none), as the nc <= 8 * V bytes of one output row.
template <int V>
inline void store_u8_row(uint8_t* out, const __m256i (&q)[V], size_t nc) {
  __m128i q16[V];
  for (int v = 0; v < V; ++v) q16[v] = _mm_packs_epi32(_mm256_castsi256_si128(q[v]), _mm256_extracti128_si256(q[v], 1));
  store_row_bytes<V>(out, _mm_packus_epi16(q16[0], q16[V - 1]), nc);  // lanes 0-7, then 8-15 (V = 2)
}

}  // namespace
}  // namespace q8::kern
