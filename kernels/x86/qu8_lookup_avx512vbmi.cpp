// The int8 byte lookup on AVX-512 VBMI (Ice Lake, Zen 4 and later; not Skylake-X or Cascade Lake):
// vpermi2b selects each byte from two registers by its index's low 7 bits, so two of them look 64
// bytes up in both halves of the 256-byte table and the index's top bit picks between the two.
// Three instructions per 64 bytes, where AVX-512 BW's vpshufb tree takes 16 shuffles and 15 blends.
// The engine puts it in the AVX-512 family's tables where the CPU has VBMI (runtime/dispatch.cpp).
#include "kernels/qu8.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VBMI__)
#include <immintrin.h>

namespace q8::kern {

void qu8_lookup__avx512vbmi(size_t n, const uint8_t* in, uint8_t* out, const uint8_t* table) {
  const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
  const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
  auto lookup = [&](__m512i x) {
    const __m512i lo = _mm512_permutex2var_epi8(t0, x, t1);  // table[x & 127]
    const __m512i hi = _mm512_permutex2var_epi8(t2, x, t3);  // table[128 + (x & 127)]
    return _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi);
  };
  size_t i = 0;
  for (; i + 64 <= n; i += 64) _mm512_storeu_si512(out + i, lookup(_mm512_loadu_si512(in + i)));
  if (i < n) {  // masked: the bytes past n are neither read nor written
    const __mmask64 m = (uint64_t{1} << (n - i)) - 1;
    _mm512_mask_storeu_epi8(out + i, m, lookup(_mm512_maskz_loadu_epi8(m, in + i)));
  }
}

}  // namespace q8::kern
#endif
