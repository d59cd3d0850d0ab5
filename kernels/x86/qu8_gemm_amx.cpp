// int8 GEMM / indirect GEMM micro-kernels on AMX tiles (TDPBUSD: 16 x 16 int32 accumulators, each
// instruction 16 x 16 x 64 u8 x s8 MACs): the loop of qu8_gemm_amx_driver.h over the real tile
// instructions, with the AVX-512 requantizing epilogue of qu8.h. The non-GEMM entries of the amx
// table are the avx512vnni table's (depthwise on vpdpbusd, the rest AVX-512 F+BW). Callable only where
// qu8_amx_usable() (kernels/x86/amx_support.h) is true: that check also asks Linux for the tile
// state, without which the first tile instruction kills the process.
#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"

#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512F__) && defined(__AVX512BW__)
// GCC 12's avx512fintrin.h initialises _mm512_undefined_ps() from itself (GCC bug 105593, fixed
// in GCC 13), which the uninitialized warnings flag in every intrinsic inlined here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "kernels/x86/qu8_gemm_amx_driver.h"

namespace q8::kern {
namespace {

static_assert(kQu8AmxMR == amx::kMR && kQu8AmxNR == amx::kNR, "qu8_internal.h and the driver agree");

// GCC's tile intrinsics are asm statements that name the tile register by token pasting (so the
// register must be a literal) and, for LDTILECFG and TILELOADD, do not tell the compiler which
// memory they read: the compiler barriers keep the stores that fill a configuration or the gather
// buffer ahead of the instruction that reads them.
inline void compiler_barrier() { __asm__ volatile("" ::: "memory"); }

struct RealTiles {
  static void configure(const amx_model::TileConfig& c) {
    compiler_barrier();
    _tile_loadconfig(&c);
  }
  static void release() { _tile_release(); }
  template <int T>
  static void zero() {
    if constexpr (T == amx::kC0) _tile_zero(0);
    if constexpr (T == amx::kC1) _tile_zero(1);
    static_assert(T == amx::kC0 || T == amx::kC1, "only accumulators are zeroed");
  }
  template <int T>
  static void load(const void* base, ptrdiff_t stride) {
    compiler_barrier();
    if constexpr (T == 2) _tile_loadd(2, base, stride);
    if constexpr (T == 3) _tile_loadd(3, base, stride);
    if constexpr (T == 4) _tile_loadd(4, base, stride);
    if constexpr (T == 5) _tile_loadd(5, base, stride);
    if constexpr (T == 6) _tile_loadd(6, base, stride);
    if constexpr (T == 7) _tile_loadd(7, base, stride);
    static_assert(T >= 2 && T <= 7, "accumulators are not loaded");
  }
  template <int T>
  static void store(void* base, ptrdiff_t stride) {
    if constexpr (T == amx::kC0) _tile_stored(0, base, stride);
    if constexpr (T == amx::kC1) _tile_stored(1, base, stride);
    static_assert(T == amx::kC0 || T == amx::kC1, "only accumulators are stored");
  }
  template <int C, int A, int B>
  static void dpbusd() {
    using namespace amx;  // NOLINT(build/namespaces): tile names
    if constexpr (C == kC0 && A == kA && B == kB0) _tile_dpbusd(0, 2, 3);
    if constexpr (C == kC1 && A == kA && B == kB1) _tile_dpbusd(1, 2, 4);
    if constexpr (C == kC0 && A == kAt && B == kB0t) _tile_dpbusd(0, 5, 6);
    if constexpr (C == kC1 && A == kAt && B == kB1t) _tile_dpbusd(1, 5, 7);
    static_assert((C == kC0 && B == (A == kA ? kB0 : kB0t)) || (C == kC1 && B == (A == kA ? kB1 : kB1t)),
                  "a tile triple the driver does not use");
  }
  // qu8.h's requantization of acc + bias' for channels [0, nc) (nc <= 32): x = (float)acc * M;
  // clamp to [out_min - z, out_max - z]; round to nearest even (cvtps2dq under the default MXCSR);
  // + z. The result lies in [out_min, out_max], so the saturating narrowing store never changes it.
  static void requantize_row(const int32_t* acc, const uint8_t* bias, const uint8_t* mult, size_t nc, uint8_t* out,
                             const QU8Requant& p) {
    const __m512 lo = _mm512_set1_ps(static_cast<float>(int32_t{p.out_min} - p.out_zero_point));
    const __m512 hi = _mm512_set1_ps(static_cast<float>(int32_t{p.out_max} - p.out_zero_point));
    const __m512i z = _mm512_set1_epi32(p.out_zero_point);
    for (size_t v = 0; 16 * v < nc; ++v) {
      const size_t cols = nc - 16 * v;
      const __mmask16 mask = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
      const __m512i sum = _mm512_add_epi32(_mm512_load_si512(acc + 16 * v), _mm512_loadu_si512(bias + 64 * v));
      __m512 x = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), _mm512_loadu_ps(reinterpret_cast<const float*>(mult + 64 * v)));
      x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
      const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(x), z);
      _mm512_mask_cvtusepi32_storeu_epi8(out + 16 * v, mask, q);
    }
  }
};

// The amx table: AMX tiles for the GEMMs; its depthwise and its float-output dense layers (a row
// or a few, too few for tiles) are the avx512vnni table's.
constexpr QU8Kernels k_table = qu8_avx512_family_table(
    "amx", kQu8AmxMR, kQu8AmxNR, Q8_KERNEL(qu8_igemm_16x32c4__amx), Q8_KERNEL(qu8_gemm_16x32c4__amx),
    Q8_KERNEL(qu8_dwconv__avx512vnni), Q8_KERNEL(qu8_gemm_dequantize_8x32c4__avx512vnni));

}  // namespace

void qu8_igemm_16x32c4__amx(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                            uint8_t* c, size_t c_stride, const QU8Requant& p) {
  amx::igemm<RealTiles>(mr, nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_16x32c4__amx(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                           uint8_t* c, size_t c_stride, const QU8Requant& p) {
  amx::gemm<RealTiles>(mr, nc, kc, a, a_stride, w, c, c_stride, p);
}

void qu8_amx_release_thread() { amx::release<RealTiles>(); }

const QU8Kernels* qu8_kernels_amx() { return &k_table; }

}  // namespace q8::kern

#else
namespace q8::kern {
const QU8Kernels* qu8_kernels_amx() { return nullptr; }  // compiler without AMX flags
void qu8_amx_release_thread() {}
}  // namespace q8::kern
#endif
