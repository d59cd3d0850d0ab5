// int8 depthwise conv for AVX-512 over the quad section of the packing (kernels/qu8_internal.h):
// four taps of one channel per int32 lane, so one vpdpbusd adds 64 products (16 channels x 4
// taps) where widening to int32 and vpmulld adds 16.
//
// 3x3 kernels with horizontal stride 1 or 2 and no horizontal dilation (MobileNet's) slide
// along output rows, sharing interleaved input columns between neighbouring pixels (run_rows).
// Other kernels go by tiles of output pixels whose rows under every tap are gathered once, in the
// quads' tap order (qu8_dw_quad_tap; bytes that hold no tap read the last row again, against a
// weight of 0). Either way, per block of channels, bias', M and the weights stay in registers
// while the pixels go by, and the four rows of quad u have their bytes interleaved per channel
// by vpunpck{l,h}bw (rows 0, 1 and 2, 3) and vpunpck{l,h}wd, which leaves vector q lane 4L + j
// holding the four bytes of channel 16L + 4q + j: the lane order of the packed block, undone at
// the store by vpackssdw and vpackuswb.
//
// Channel blocks are 64 wide while 64 channels remain, then 32, then 16, then a last partial 16
// (masked loads and stores, which never touch the masked-off bytes). A zmm always carries 64
// lanes: 64 channels of one pixel, 32 channels of two pixels, or 16 channels of four, so
// MobileNet's 32-channel layer and the 16 left over from 144 channels use whole vectors; a block
// narrower than 64 broadcasts its 128-bit lanes of bias', M and weights to every pixel's part.
//
// Exactness: vpdpbusd multiplies u8 by s8 and adds the four int16-exact products and the
// accumulator in int32 without saturation (not the "s" form). Without VNNI (DotMadd) the same
// quad lane is split into its even and odd bytes, zero-extended (activations) and sign-extended
// (weights) to int16, and two vpmaddwd add the pairs: the same exact sum. Every sum wraps modulo
// 2^32 like the reference's. acc starts at bias' and runs over every tap, those outside the input
// reading z_a from `zero` (qu8.h's first form: bias' = bias - z_a * sum_t w_t). The requantization
// is qu8.h's: (float)acc * M, clamped to [out_min - z_out, out_max - z_out], rounded half to even
// (cvtps2dq), then + z_out, done here in int16 after vpackssdw (the rounded values lie in
// [-255, 255], so the saturating packs and the add are exact).
#pragma once

// GCC 12's avx512fintrin.h fills the unused operand of _mm512_inserti64x4 and friends with
// _mm512_undefined_*(), initialised from itself, which trips -W(maybe-)uninitialized on inlined
// intrinsics (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"
#include "kernels/qu8_ops_simd.h"
#include "kernels/unroll.h"
#include "kernels/window.h"

namespace q8::kern {
namespace {  // NOLINT: per-translation-unit instantiations
namespace dw_quad {

using qu8_simd::kMaxTaps;
using qu8_simd::PixelCursor;
static_assert(kQu8DwBlockMaxTaps <= kMaxTaps && kQu8DwBlockMaxTaps % 4 == 0, "rows of a window fit kMaxTaps");

#if defined(__AVX512VNNI__)
// acc += sum over the 4 bytes of a lane of u8(a) * s8(w).
struct DotVnni {
  using Wt = __m512i;
  static Wt prep(__m512i w) { return w; }
  static __m512i dot(__m512i acc, __m512i a, const Wt& w) { return _mm512_dpbusd_epi32(acc, a, w); }
};
#endif

// The same sum with AVX-512 BW: weights split once per block into their even and odd bytes as
// int16 (sign-extended), activations per step (zero-extended); vpmaddwd adds each int16 pair.
struct DotMadd {
  struct Wt {
    __m512i even, odd;
  };
  static Wt prep(__m512i w) { return {_mm512_srai_epi16(_mm512_slli_epi16(w, 8), 8), _mm512_srai_epi16(w, 8)}; }
  static __m512i dot(__m512i acc, __m512i a, const Wt& w) {
    const __m512i even = _mm512_and_si512(a, _mm512_set1_epi16(0xff)), odd = _mm512_srli_epi16(a, 8);
    return _mm512_add_epi32(acc, _mm512_add_epi32(_mm512_madd_epi16(even, w.even), _mm512_madd_epi16(odd, w.odd)));
  }
};

// B channels of 64 / B pixels per zmm. load: row bytes [c, c + B) of P consecutive pixels, pixel
// p's row at r[p * S]; param: a 64-byte vector of the block, its 128-bit lanes from byte s on
// repeated for each pixel; store: P pixels' B bytes (the first n of them), C apart; store_to: to
// P places. kPartial (B = 16):
// only the first nc channels are read and written.
template <size_t B, bool kPartial>
struct Lanes;

template <>
struct Lanes<64, false> {
  static constexpr size_t P = 1;
  size_t nc = 64;
  __m512i load(const uint8_t* const* r, size_t /*S*/, size_t c) const { return _mm512_loadu_si512(r[0] + c); }
  static __m512i param(const uint8_t* p) { return _mm512_loadu_si512(p); }
  void store(__m512i v, uint8_t* o, size_t /*C*/, size_t /*n*/) const { _mm512_storeu_si512(o, v); }
  void store_to(__m512i v, uint8_t* const* o) const { _mm512_storeu_si512(o[0], v); }
};

template <>
struct Lanes<32, false> {
  static constexpr size_t P = 2;
  size_t nc = 32;
  static __m256i ld(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  __m512i load(const uint8_t* const* r, size_t S, size_t c) const {
    return _mm512_inserti64x4(_mm512_zextsi256_si512(ld(r[0] + c)), ld(r[S] + c), 1);
  }
  static __m512i param(const uint8_t* p) { return _mm512_broadcast_i64x4(ld(p)); }
  void store(__m512i v, uint8_t* o, size_t C, size_t n) const {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm512_castsi512_si256(v));
    if (n > 1) _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + C), _mm512_extracti64x4_epi64(v, 1));
  }
  void store_to(__m512i v, uint8_t* const* o) const {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o[0]), _mm512_castsi512_si256(v));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o[1]), _mm512_extracti64x4_epi64(v, 1));
  }
};

template <bool kPartial>
struct Lanes<16, kPartial> {
  static constexpr size_t P = 4;
  size_t nc = 16;
  __m128i ld(const uint8_t* p) const {
    return kPartial ? _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << nc) - 1u), p)
                    : _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  }
  __m512i load(const uint8_t* const* r, size_t S, size_t c) const {
    __m512i v = _mm512_zextsi128_si512(ld(r[0] + c));
    v = _mm512_inserti32x4(v, ld(r[S] + c), 1);
    v = _mm512_inserti32x4(v, ld(r[2 * S] + c), 2);
    return _mm512_inserti32x4(v, ld(r[3 * S] + c), 3);
  }
  static __m512i param(const uint8_t* p) {
    return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  void st(__m128i v, uint8_t* o) const {
    if (kPartial)
      _mm_mask_storeu_epi8(o, static_cast<__mmask16>((1u << nc) - 1u), v);
    else
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o), v);
  }
  void store(__m512i v, uint8_t* o, size_t C, size_t n) const {
    st(_mm512_castsi512_si128(v), o);
    if (n > 1) st(_mm512_extracti32x4_epi32(v, 1), o + C);
    if (n > 2) st(_mm512_extracti32x4_epi32(v, 2), o + 2 * C);
    if (n > 3) st(_mm512_extracti32x4_epi32(v, 3), o + 3 * C);
  }
  void store_to(__m512i v, uint8_t* const* o) const {
    st(_mm512_castsi512_si128(v), o[0]);
    st(_mm512_extracti32x4_epi32(v, 1), o[1]);
    st(_mm512_extracti32x4_epi32(v, 2), o[2]);
    st(_mm512_extracti32x4_epi32(v, 3), o[3]);
  }
};

// Clamp bounds relative to z_out, and z_out as int16.
struct Requant {
  __m512 lo, hi;
  __m512i z16;
  explicit Requant(const QU8Requant& p)
      : lo(_mm512_set1_ps(static_cast<float>(static_cast<int32_t>(p.out_min) - p.out_zero_point))),
        hi(_mm512_set1_ps(static_cast<float>(static_cast<int32_t>(p.out_max) - p.out_zero_point))),
        z16(_mm512_set1_epi16(static_cast<int16_t>(p.out_zero_point))) {}
  // round(clamp((float)acc * m)), before + z_out: lanes in [out_min - z_out, out_max - z_out].
  __m512i operator()(__m512i acc, __m512 m) const {
    const __m512 x = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), m);
    return _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(x, lo), hi));  // max: x > lo ? x : lo
  }
  // Four vectors in the block lane order to 64 bytes in channel order, + z_out.
  __m512i pack(const __m512i* v) const {
    const __m512i a = _mm512_add_epi16(_mm512_packs_epi32(v[0], v[1]), z16);
    const __m512i b = _mm512_add_epi16(_mm512_packs_epi32(v[2], v[3]), z16);
    return _mm512_packus_epi16(a, b);
  }
};

// The np pixels of a tile (pixel i's rows at rows[i * S], rows past np repeating the last pixel's
// up to a multiple of 4), channels [c, c + B) whose parameters start at byte s of each vector of
// block blk.
template <class D, size_t QUADS, class L>
inline void block(const L& lanes, const uint8_t* const* rows, size_t S, size_t quads_rt, size_t np, const uint8_t* blk,
                  size_t s, size_t c, size_t C, uint8_t* o, const Requant& rq) {
  constexpr size_t kVec = kQu8DwQuadBlock / 4 * sizeof(int32_t);  // bytes per vector of 16 lanes
  constexpr size_t kMaxQuads = QUADS ? QUADS : kQu8DwBlockMaxTaps / 4;
  const size_t quads = QUADS ? QUADS : quads_rt;
  __m512i bias[4];
  __m512 m[4];
  Q8_UNROLL
  for (size_t q = 0; q < 4; ++q) {
    bias[q] = L::param(blk + q * kVec + s);
    m[q] = _mm512_castsi512_ps(L::param(blk + (4 + q) * kVec + s));
  }
  typename D::Wt w[kMaxQuads * 4];
  Q8_UNROLL
  for (size_t v = 0; v < 4 * quads; ++v) w[v] = D::prep(L::param(blk + (8 + v) * kVec + s));
  for (size_t i = 0; i < np; i += L::P) {
    const uint8_t* const* r = rows + i * S;
    __m512i acc[4] = {bias[0], bias[1], bias[2], bias[3]};
    Q8_UNROLL
    for (size_t u = 0; u < quads; ++u) {
      const __m512i a0 = lanes.load(r + 4 * u, S, c), a1 = lanes.load(r + 4 * u + 1, S, c);
      const __m512i a2 = lanes.load(r + 4 * u + 2, S, c), a3 = lanes.load(r + 4 * u + 3, S, c);
      const __m512i lo01 = _mm512_unpacklo_epi8(a0, a1), hi01 = _mm512_unpackhi_epi8(a0, a1);
      const __m512i lo23 = _mm512_unpacklo_epi8(a2, a3), hi23 = _mm512_unpackhi_epi8(a2, a3);
      acc[0] = D::dot(acc[0], _mm512_unpacklo_epi16(lo01, lo23), w[4 * u]);
      acc[1] = D::dot(acc[1], _mm512_unpackhi_epi16(lo01, lo23), w[4 * u + 1]);
      acc[2] = D::dot(acc[2], _mm512_unpacklo_epi16(hi01, hi23), w[4 * u + 2]);
      acc[3] = D::dot(acc[3], _mm512_unpackhi_epi16(hi01, hi23), w[4 * u + 3]);
    }
    __m512i v[4];
    Q8_UNROLL
    for (size_t q = 0; q < 4; ++q) v[q] = rq(acc[q], m[q]);
    lanes.store(rq.pack(v), o + i * C + c, C, np - i);
  }
}

// Rows of every tap of output pixel px (qu8_simd::dw_rows) into rows[0, S) in the quads' order
// (qu8_dw_quad_tap): the last tap's row for bytes that hold no tap (weight 0).
inline void pixel_rows(const ConvGeometry& g, const uint8_t* in, const uint8_t* zero, const PixelCursor& px,
                       const size_t* offset, const size_t* slot_tap, size_t S, const uint8_t** rows) {
  const size_t taps = g.taps();
  const uint8_t* r[kMaxTaps + 1];
  qu8_simd::dw_rows(g, in, zero, px, offset, r);
  r[taps] = r[taps - 1];
  for (size_t j = 0; j < S; ++j) rows[j] = r[slot_tap[j]];
}

constexpr size_t kTile = 32;  // output pixels whose rows are gathered at once (a multiple of 4)

// Output pixels [p0, p1), in tiles of gathered rows.
template <class D, size_t QUADS>
void run_tiles(const ConvGeometry& g, const uint8_t* in, const uint8_t* zero, uint8_t* out, size_t p0, size_t p1,
               const uint8_t* sec, size_t block_bytes, const size_t* offset, const size_t* slot_tap, size_t quads,
               const Requant& rq) {
  const size_t C = g.C, S = 4 * quads;
  const uint8_t* rows[kTile * (QUADS ? 4 * QUADS : kQu8DwBlockMaxTaps)];
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t first = p0; first < p1; first += kTile) {
    const size_t np = p1 - first < kTile ? p1 - first : kTile;
    for (size_t i = 0; i < np; ++i, px.next()) pixel_rows(g, in, zero, px, offset, slot_tap, S, rows + i * S);
    for (size_t i = np; i % 4; ++i)
      for (size_t t = 0; t < S; ++t) rows[i * S + t] = rows[(np - 1) * S + t];
    uint8_t* o = out + first * C;
    size_t c = 0;
    for (; c + 64 <= C; c += 64)
      block<D, QUADS>(Lanes<64, false>{}, rows, S, quads, np, sec + c / 64 * block_bytes, 0, c, C, o, rq);
    if (C - c >= 32) {
      block<D, QUADS>(Lanes<32, false>{}, rows, S, quads, np, sec + c / 64 * block_bytes, c % 64, c, C, o, rq);
      c += 32;
    }
    if (C - c >= 16) {
      block<D, QUADS>(Lanes<16, false>{}, rows, S, quads, np, sec + c / 64 * block_bytes, c % 64, c, C, o, rq);
      c += 16;
    }
    if (c < C)
      block<D, QUADS>(Lanes<16, true>{C - c}, rows, S, quads, np, sec + c / 64 * block_bytes, c % 64, c, C, o, rq);
  }
}

// --- 3x3, horizontal stride 1 or 2, no horizontal dilation: output rows (or the part of one in
// [p0, p1)). With the taps in quads by column (qu8_dw_quad_columns), one interleaved input column
// (rows ky = 0, 1, 2 and a zero byte) serves every output pixel whose window covers it: stride 1
// interleaves one new column per output pixel instead of three, stride 2 two. A vector carries
// P = 64 / B streams: the run is cut into P pieces of equal length (the last one overlapping the
// one before where the run does not divide, those pixels then computed and stored twice with the
// same bytes), each sliding along its own piece. A row ky or a column outside the input reads
// `zero` (the padding taps of qu8.h's first form).
struct RowTaps {
  const uint8_t* base[3];  // column 0 of input row ky, or `zero`
  size_t step[3];          // bytes per input column: C, or 0 for `zero`
  const uint8_t* zero;
  size_t IW;
};

// The 4 vectors of the interleaved input column ix[p] of each stream p.
template <class L>
inline void column(const L& lanes, const RowTaps& rt, const ptrdiff_t* ix, size_t c, __m512i* v) {
  const uint8_t* col[3][4];
  Q8_UNROLL
  for (size_t p = 0; p < L::P; ++p) {
    const bool inside = static_cast<size_t>(ix[p]) < rt.IW;  // ix < 0 wraps past IW
    Q8_UNROLL
    for (size_t ky = 0; ky < 3; ++ky)
      col[ky][p] = inside ? rt.base[ky] + static_cast<size_t>(ix[p]) * rt.step[ky] : rt.zero;
  }
  const __m512i a0 = lanes.load(col[0], 1, c), a1 = lanes.load(col[1], 1, c), a2 = lanes.load(col[2], 1, c);
  const __m512i z = _mm512_setzero_si512();
  const __m512i lo01 = _mm512_unpacklo_epi8(a0, a1), hi01 = _mm512_unpackhi_epi8(a0, a1);
  const __m512i lo2 = _mm512_unpacklo_epi8(a2, z), hi2 = _mm512_unpackhi_epi8(a2, z);
  v[0] = _mm512_unpacklo_epi16(lo01, lo2);
  v[1] = _mm512_unpackhi_epi16(lo01, lo2);
  v[2] = _mm512_unpacklo_epi16(hi01, hi2);
  v[3] = _mm512_unpackhi_epi16(hi01, hi2);
}

// Output pixels [a, b) of one output row (b - a >= P), channels [c, c + B): bias[q], m[q] and
// w[4 * kx + q] are the block's vectors.
template <class D, size_t SW, class L>
inline void row_pixels(const L& lanes, const RowTaps& rt, size_t a, size_t b, size_t PL, const __m512i* bias,
                       const __m512* m, const typename D::Wt* w, size_t c, size_t C, uint8_t* out_row,
                       const Requant& rq) {
  constexpr size_t P = L::P;
  const size_t n = b - a, len = (n + P - 1) / P;
  ptrdiff_t ix[4];  // input column of the next new interleaved column, per stream
  uint8_t* o[4];
  Q8_UNROLL
  for (size_t p = 0; p < P; ++p) {
    const size_t start = a + (p * len < n - len ? p * len : n - len);
    ix[p] = static_cast<ptrdiff_t>(start * SW) - static_cast<ptrdiff_t>(PL);
    o[p] = out_row + start * C + c;
  }
  auto advance = [&]() {
    Q8_UNROLL
    for (size_t p = 0; p < P; ++p) ++ix[p];
  };
  __m512i c0[4], c1[4], c2[4];
  if (SW == 1) {
    column(lanes, rt, ix, c, c0);
    advance();
  }
  column(lanes, rt, ix, c, SW == 1 ? c1 : c2);
  advance();
  for (size_t j = 0; j < len; ++j) {
    if (SW == 2) {
      Q8_UNROLL
      for (size_t q = 0; q < 4; ++q) c0[q] = c2[q];
      column(lanes, rt, ix, c, c1);
      advance();
    }
    column(lanes, rt, ix, c, c2);
    advance();
    __m512i v[4];
    Q8_UNROLL
    for (size_t q = 0; q < 4; ++q) {
      __m512i acc = D::dot(bias[q], c0[q], w[q]);
      acc = D::dot(acc, c1[q], w[4 + q]);
      acc = D::dot(acc, c2[q], w[8 + q]);
      v[q] = rq(acc, m[q]);
    }
    lanes.store_to(rq.pack(v), o);
    if (SW == 1) {
      Q8_UNROLL
      for (size_t q = 0; q < 4; ++q) c0[q] = c1[q], c1[q] = c2[q];
    }
    Q8_UNROLL
    for (size_t p = 0; p < P; ++p) o[p] += C;
  }
}

// Where output row (n, oy) reads its three input rows.
inline RowTaps row_taps(const ConvGeometry& g, const uint8_t* in, const uint8_t* zero, size_t n, size_t oy) {
  RowTaps rt;
  rt.zero = zero;
  rt.IW = g.IW;
  for (size_t ky = 0; ky < 3; ++ky) {
    const size_t iy = oy * g.SH + ky * g.DH;  // + PT
    const bool inside = iy >= g.PT && iy - g.PT < g.IH;
    rt.base[ky] = inside ? in + (n * g.IH + (iy - g.PT)) * g.IW * g.C : zero;
    rt.step[ky] = inside ? g.C : 0;
  }
  return rt;
}

// Walks the output rows of pixels [p0, p1) as pieces [a, b) of row (n, oy).
struct RowWalk {
  size_t p, p1, n, oy, a, b, OH, OW;
  RowWalk(size_t p0, size_t p1_, size_t oh, size_t ow)
      : p(p0), p1(p1_), n(p0 / (oh * ow)), oy(p0 % (oh * ow) / ow), a(p0 % ow), b(0), OH(oh), OW(ow) {
    set_b();
  }
  bool done() const { return p >= p1; }
  void set_b() { b = p1 - p < OW - a ? a + (p1 - p) : OW; }
  void next() {
    p += b - a;
    a = 0;
    if (++oy == OH) oy = 0, ++n;
    set_b();
  }
};

// Channels [c, c + B) of every long enough row piece of [p0, p1), the block's vectors loaded once.
template <class D, size_t SW, class L>
inline void rows_block(const L& lanes, const ConvGeometry& g, const uint8_t* in, const uint8_t* zero, uint8_t* out,
                       size_t p0, size_t p1, const uint8_t* blk, size_t s, size_t c, const Requant& rq) {
  constexpr size_t kVec = kQu8DwQuadBlock / 4 * sizeof(int32_t);
  __m512i bias[4];
  __m512 m[4];
  typename D::Wt w[12];
  Q8_UNROLL
  for (size_t q = 0; q < 4; ++q) {
    bias[q] = L::param(blk + q * kVec + s);
    m[q] = _mm512_castsi512_ps(L::param(blk + (4 + q) * kVec + s));
  }
  Q8_UNROLL
  for (size_t v = 0; v < 12; ++v) w[v] = D::prep(L::param(blk + (8 + v) * kVec + s));
  for (RowWalk r(p0, p1, g.OH, g.OW); !r.done(); r.next()) {
    if (r.b - r.a < 4) continue;  // run_rows's tiles
    row_pixels<D, SW>(lanes, row_taps(g, in, zero, r.n, r.oy), r.a, r.b, g.PL, bias, m, w, c, g.C,
                      out + (r.n * g.OH + r.oy) * g.OW * g.C, rq);
  }
}

// Output rows in chunks of kChunkRows: per chunk, each block of channels loads its vectors once
// and goes over every row, while the chunk's input stays in cache for the next block.
constexpr size_t kChunkRows = 8;

template <class D, size_t SW>
void run_rows(const ConvGeometry& g, const uint8_t* in, const uint8_t* zero, uint8_t* out, size_t p0, size_t p1,
              const uint8_t* sec, size_t block_bytes, const size_t* offset, const size_t* slot_tap, const Requant& rq) {
  const size_t C = g.C;
  for (size_t q0 = p0; q0 < p1;) {
    const size_t end_row = (q0 / g.OW + kChunkRows) * g.OW, q1 = p1 < end_row ? p1 : end_row;
    // Row pieces of fewer pixels than the streams of a 16-channel block go by tiles.
    for (RowWalk r(q0, q1, g.OH, g.OW); !r.done(); r.next())
      if (r.b - r.a < 4)
        run_tiles<D, 3>(g, in, zero, out, r.p, r.p + (r.b - r.a), sec, block_bytes, offset, slot_tap, 3, rq);
    size_t c = 0;
    for (; c + 64 <= C; c += 64)
      rows_block<D, SW>(Lanes<64, false>{}, g, in, zero, out, q0, q1, sec + c / 64 * block_bytes, 0, c, rq);
    if (C - c >= 32) {
      rows_block<D, SW>(Lanes<32, false>{}, g, in, zero, out, q0, q1, sec + c / 64 * block_bytes, c % 64, c, rq);
      c += 32;
    }
    if (C - c >= 16) {
      rows_block<D, SW>(Lanes<16, false>{}, g, in, zero, out, q0, q1, sec + c / 64 * block_bytes, c % 64, c, rq);
      c += 16;
    }
    if (c < C)
      rows_block<D, SW>(Lanes<16, true>{C - c}, g, in, zero, out, q0, q1, sec + c / 64 * block_bytes, c % 64, c, rq);
    q0 = q1;
  }
}

// QUADS: ceil(taps / 4) when fixed at compile time, else 0 (any taps <= kQu8DwBlockMaxTaps).
template <class D, size_t QUADS>
void run(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out, size_t p0,
         size_t p1, const QU8Requant& p) {
  const size_t taps = g.taps(), quads = QUADS ? QUADS : (taps + 3) / 4;
  const uint8_t* sec = static_cast<const uint8_t*>(packed) + qu8_dw_quad_section(g);
  const size_t block_bytes = qu8_dw_quad_block_bytes(g);
  const Requant rq(p);
  size_t offset[kMaxTaps], slot_tap[kQu8DwBlockMaxTaps];
  tap_offsets(g, offset);
  for (size_t u = 0; u < quads; ++u)
    for (size_t k = 0; k < 4; ++k) slot_tap[4 * u + k] = qu8_dw_quad_tap(g, u, k);
  if (QUADS == 3 && g.KH == 3 && g.KW == 3 && g.DW == 1) {
    if (g.SW == 1) return run_rows<D, 1>(g, in, zero, out, p0, p1, sec, block_bytes, offset, slot_tap, rq);
    if (g.SW == 2) return run_rows<D, 2>(g, in, zero, out, p0, p1, sec, block_bytes, offset, slot_tap, rq);
  }
  run_tiles<D, QUADS>(g, in, zero, out, p0, p1, sec, block_bytes, offset, slot_tap, quads, rq);
}

// Kernels of at most kQu8DwBlockMaxTaps taps; longer ones take qu8_ops_simd.h's path, which visits
// only the taps inside the input.
template <class D, class Fallback>
void dwconv(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out, size_t p0,
            size_t p1, const QU8Requant& p, Fallback fallback) {
  switch (g.taps()) {
    case 9: return run<D, 3>(g, in, packed, zero, out, p0, p1, p);
    case 25: return run<D, 7>(g, in, packed, zero, out, p0, p1, p);
    default:
      if (g.taps() <= kQu8DwBlockMaxTaps) return run<D, 0>(g, in, packed, zero, out, p0, p1, p);
      return fallback(g, in, packed, zero, out, p0, p1, p);
  }
}

}  // namespace dw_quad
}  // namespace
}  // namespace q8::kern
