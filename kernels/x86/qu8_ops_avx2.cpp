// int8 depthwise conv, pools, add, quantize, dequantize for AVX2 (compiled with -mavx2 -mfma),
// and the avx2 table. Depthwise kernels of up to kQu8DwBlockMaxTaps taps are this file's
// channel-block kernels (dw16 below: 32 or 16 channels and two taps per multiply-add). The rest
// are kernels/qu8_ops_simd.h's loops over the traits below: 8 int32 lanes per ymm (u8
// zero-extended and s8 sign-extended with vpmovzxbd/vpmovsxbd, exact vpmulld products), 32 bytes
// per ymm for max pool. Tails shorter than a vector go through a small stack buffer
// (partial_vectors.h), so no load or store touches a byte past the caller's rows.
#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/qu8_ops_simd.h"
#include "kernels/unroll.h"
#include "kernels/x86/partial_vectors.h"

namespace q8::kern {
namespace {

struct Avx2 {
  static constexpr size_t W = 8;    // int32 / float lanes
  static constexpr size_t WB = 32;  // byte lanes
  using I = __m256i;
  using F = __m256;
  using B = __m256i;

  static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  static F set1f(float v) { return _mm256_set1_ps(v); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  static I sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I mul(I a, I b) { return _mm256_mullo_epi32(a, b); }  // |u8 * s8| < 2^15: exact
  static F cvtf(I a) { return _mm256_cvtepi32_ps(a); }
  static F mulf(F a, F b) { return _mm256_mul_ps(a, b); }
  static F addf(F a, F b) { return _mm256_add_ps(a, b); }
  static F subf(F a, F b) { return _mm256_sub_ps(a, b); }
  static F divf(F a, F b) { return _mm256_div_ps(a, b); }
  static F maxf(F a, F lo) { return _mm256_max_ps(a, lo); }  // a > lo ? a : lo
  static F minf(F a, F hi) { return _mm256_min_ps(a, hi); }  // a < hi ? a : hi
  static I round(F a) { return _mm256_cvtps_epi32(a); }      // MXCSR: round half to even
  static F opaque(F a) {  // keeps the compiler from fusing this product into a later add
    __asm__("" : "+x"(a));
    return a;
  }

  static I load_u8(const uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static I load_s8(const int8_t* p) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static I load_u8_partial(const uint8_t* p, size_t n) {
    return _mm256_cvtepu8_epi32(load_bytes_partial<__m128i>(p, n));
  }
  static I load_s8_partial(const int8_t* p, size_t n) {
    return _mm256_cvtepi8_epi32(load_bytes_partial<__m128i>(p, n));
  }
  static I load_i32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static I load_i32_partial(const void* p, size_t n) { return load_bytes_partial<__m256i>(p, n * 4); }
  static void store_i32(I v, int32_t* p) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }  // aligned
  static F load_f32(const void* p) { return _mm256_loadu_ps(static_cast<const float*>(p)); }
  static F load_f32_partial(const void* p, size_t n) { return load_bytes_partial<__m256>(p, n * 4); }
  // Lanes hold values in [0, 255]: the saturating packs are exact.
  static __m128i pack8(I v) {
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm_packus_epi16(w, w);
  }
  static void store_u8(I v, uint8_t* p) { _mm_storel_epi64(reinterpret_cast<__m128i*>(p), pack8(v)); }
  static void store_u8_partial(I v, uint8_t* p, size_t n) { store_bytes_partial(pack8(v), p, n); }
  static void store_f32(F v, float* p) { _mm256_storeu_ps(p, v); }
  static void store_f32_partial(F v, float* p, size_t n) { store_bytes_partial(v, p, n * 4); }

  static B zero_b() { return _mm256_setzero_si256(); }
  static B set1_b(uint8_t v) { return _mm256_set1_epi8(static_cast<char>(v)); }
  static B max_b(B a, B b) { return _mm256_max_epu8(a, b); }
  static B load_b(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static B load_b_partial(const uint8_t* p, size_t n) { return load_bytes_partial<B>(p, n); }
  static void store_b(B v, uint8_t* p) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static void store_b_partial(B v, uint8_t* p, size_t n) { store_bytes_partial(v, p, n); }
  // f[j] = 2^23 + byte, as float bits 0x4B0000bb (see Avx512's: the same unpacks per 128-bit lane).
  static void widen_biased(B v, F f[4]) {
    const __m256i zero = _mm256_setzero_si256(), top = _mm256_set1_epi16(0x4B00);
    const __m256i lo = _mm256_unpacklo_epi8(v, zero), hi = _mm256_unpackhi_epi8(v, zero);
    f[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(lo, top));
    f[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(lo, top));
    f[2] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(hi, top));
    f[3] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(hi, top));
  }
  // Bytes of sat_u8(sat_s16(r) + z), in widen_biased's order (packs within 128-bit lanes).
  static B narrow_u8(const I r[4], int32_t z) {
    const __m256i zw = _mm256_set1_epi16(static_cast<int16_t>(z));
    const __m256i w01 = _mm256_adds_epi16(_mm256_packs_epi32(r[0], r[1]), zw);
    const __m256i w23 = _mm256_adds_epi16(_mm256_packs_epi32(r[2], r[3]), zw);
    return _mm256_packus_epi16(w01, w23);
  }
};

// The byte operations of max pool on 16-byte vectors, for rows shorter than a ymm (ShuffleNetV2's
// 24 channels): whole and overlapping xmm instead of partial ymm through a stack copy.
struct Xmm {
  static constexpr size_t WB = 16;
  using B = __m128i;
  static B zero_b() { return _mm_setzero_si128(); }
  static B max_b(B a, B b) { return _mm_max_epu8(a, b); }
  static B load_b(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static B load_b_partial(const uint8_t* p, size_t n) { return load_bytes_partial<B>(p, n); }
  static void store_b(B v, uint8_t* p) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
  static void store_b_partial(B v, uint8_t* p, size_t n) { store_bytes_partial(v, p, n); }
};

// --- Depthwise: channel blocks x 2 taps per multiply-add ------------------------------------
// Output pixels go in tiles of at most kTile: a tile is either a run of one output row whose
// windows lie wholly inside the input (every pixel but a border's, for the usual pads), whose tap
// rows are fixed offsets from the run's first pixel (InteriorRows: nothing is gathered), or a run
// of border pixels, whose rows under every tap are gathered once (GatheredRows; a tap outside the
// input reads `zero`). At 32 channels gathering took a third of the time. Then channels go in
// blocks of 32 (block32: vpmaddubsw over nibble-split weights, 2 pixels per step). A rest of 16
// or 8 channels goes as a block of 16 (block: vpmaddwd, 4 pixels per step) or half of one; any
// other rest of a row longer than 32 as one more 32-channel block over the row's last 32 bytes
// (a 16-lane block costs about what a 32-channel one does: MNASNet's 120 channels as 96 + 16 + 8
// took 1.26x the time of 128, and ShuffleNetV2's 58 as 32 + 16 + a copy of 10 per pixel 3x
// fp32's). Rows shorter than 32 go in blocks of 16, half a block and a stack copy (tail).
// Both read their sections of the packing (kernels/qu8_internal.h). For channels [c, c + 16) of
// taps t and t + 1, both rows are widened to int16 (vpmovzxbw) and interleaved per channel
// (vpunpcklwd / vpunpckhwd), and one vpmaddwd against the block's (w_t, w_t+1) pairs adds the two
// taps' products of 8 channels into int32 lanes: u8 * s8 fits int16 operands, the pair sum is
// exact, and every sum wraps modulo 2^32 like the reference's. acc starts at bias' and runs over
// every tap, those outside the input reading z_a from `zero` (qu8.h's first form); the requantization
// is DwRequant's (below), one IEEE operation per step, on the lo/hi lane order, which
// _mm256_packs_epi32(lo, hi) turns back into channel order. An odd last tap pairs with a
// repeated row and a zero weight. Kernels of more than kQu8DwBlockMaxTaps taps (no blocks packed)
// take qu8_ops_simd.h's path, which visits only the taps inside the input.
namespace dw16 {

using qu8_simd::kMaxTaps;
static_assert(kQu8DwBlockMaxTaps <= kMaxTaps, "a window's rows must fit the buffers below");
using qu8_simd::PixelCursor;

// Pixel i of a tile, tap t (t < 2 * pairs; an odd tap count's last pair repeats the last tap, against
// a weight of 0): the first byte of the input pixel under that tap.
struct GatheredRows {
  const uint8_t* const* rows;  // pixel i's taps at rows[i * stride + t]
  size_t stride;
  const uint8_t* operator()(size_t i, size_t t) const { return rows[i * stride + t]; }
};
struct InteriorRows {
  const uint8_t* base;   // tap 0 of pixel 0
  size_t step;           // bytes from one pixel's tap 0 to the next one's: SW * C
  const size_t* offset;  // tap t's distance from tap 0 (tap_offsets, the repeated tap included)
  const uint8_t* operator()(size_t i, size_t t) const { return base + i * step + offset[t]; }
};

inline __m256i load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// qu8.h's requantization with z_out added after the first pack: x = (float)acc * M, clamped to
// [out_min - z_out, out_max - z_out], rounded half to even (cvtps2dq); vpackssdw, + z_out in int16
// (exact: the clamped values lie in [-255, 255]), vpackuswb. Where out_min is 0 (a ReLU or ReLU6
// output) the low clamp is left out: a value below -z_out, rounded (below -2^31 cvtps2dq gives
// INT_MIN) and saturated to int16, stays negative after + z_out, and vpackuswb makes it 0, as the
// clamp would have.
struct DwRequant {
  __m256 lo, hi;
  __m256i z;  // int16 lanes
  bool clamp_lo;
  explicit DwRequant(const QU8Requant& p)
      : lo(_mm256_set1_ps(static_cast<float>(int32_t{p.out_min} - p.out_zero_point))),
        hi(_mm256_set1_ps(static_cast<float>(int32_t{p.out_max} - p.out_zero_point))),
        z(_mm256_set1_epi16(static_cast<int16_t>(p.out_zero_point))),
        clamp_lo(p.out_min != 0) {}
  __m256i rounded(__m256i acc, const uint8_t* m) const {
    __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(reinterpret_cast<const float*>(m)));
    if (clamp_lo) x = _mm256_max_ps(x, lo);
    return _mm256_cvtps_epi32(_mm256_min_ps(x, hi));
  }
  // int16 lanes: vpackssdw(a, b) + z_out.
  __m256i pack16(__m256i a, __m256i b) const { return _mm256_adds_epi16(_mm256_packs_epi32(a, b), z); }
};

// Requantizes one block's lo/hi accumulators and returns its 16 bytes in channel order.
inline __m128i requant16(__m256i lo, __m256i hi, const uint8_t* blk, const DwRequant& rq) {
  const __m256i w = rq.pack16(rq.rounded(lo, blk + 64), rq.rounded(hi, blk + 96));
  return _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

// NP pixels from pixel i0 of the tile, channels [c, c + CH) of the block at c (CH = 8: its first
// half, which vpunpck{l,h}wd keep in the low 128-bit lanes, read and written without touching
// the other 8 bytes); rows(i, t) is pixel i's tap t.
// Keeps an accumulator in a register as one chain of adds: without it GCC reassociates the
// unrolled sums into trees whose partial products spill to the stack.
inline __m256i chain(__m256i v) {
  __asm__("" : "+x"(v));
  return v;
}

// CH (16 or 8) bytes from p as int16 lanes; with 8, the upper 128 bits are 0.
template <size_t CH>
inline __m256i widen(const uint8_t* p) {
  static_assert(CH == 16 || CH == 8, "a block or its first half");
  const __m128i* q = reinterpret_cast<const __m128i*>(p);
  return _mm256_cvtepu8_epi16(CH == 16 ? _mm_loadu_si128(q) : _mm_loadl_epi64(q));
}

template <size_t NP, size_t PAIRS, size_t CH, class Rows>
inline void block(const Rows& rows, size_t i0, size_t pairs_rt, const uint8_t* blk, size_t c, uint8_t* o, size_t C,
                  const DwRequant& rq) {
  const size_t pairs = PAIRS ? PAIRS : pairs_rt;
  __m256i lo[NP], hi[NP];
  const __m256i blo = load(blk), bhi = load(blk + 32);
  Q8_UNROLL
  for (size_t i = 0; i < NP; ++i) lo[i] = blo, hi[i] = bhi;
  const uint8_t* wp = blk + 128;
  Q8_UNROLL
  for (size_t pr = 0; pr < pairs; ++pr, wp += 64) {
    const __m256i wlo = chain(load(wp)), whi = chain(load(wp + 32));  // once for the NP pixels
    Q8_UNROLL
    for (size_t i = 0; i < NP; ++i) {
      const __m256i a0 = widen<CH>(rows(i0 + i, 2 * pr) + c), a1 = widen<CH>(rows(i0 + i, 2 * pr + 1) + c);
      lo[i] = chain(_mm256_add_epi32(lo[i], _mm256_madd_epi16(_mm256_unpacklo_epi16(a0, a1), wlo)));
      hi[i] = chain(_mm256_add_epi32(hi[i], _mm256_madd_epi16(_mm256_unpackhi_epi16(a0, a1), whi)));
    }
  }
  Q8_UNROLL
  for (size_t i = 0; i < NP; ++i) {
    __m128i* out = reinterpret_cast<__m128i*>(o + i * C + c);
    const __m128i bytes = requant16(lo[i], hi[i], blk, rq);
    if constexpr (CH == 16)
      _mm_storeu_si128(out, bytes);
    else
      _mm_storel_epi64(out, bytes);
  }
}

// block over the np pixels of a tile, kGroup at a time.
constexpr size_t kGroup = 4;  // output pixels per 16-channel step (8 int32 accumulators)
template <size_t PAIRS, size_t CH, class Rows>
inline void block_pixels(const Rows& rows, size_t np, size_t pairs, const uint8_t* blk, size_t c, uint8_t* o, size_t C,
                         const DwRequant& rq) {
  size_t i = 0;
  for (; i + kGroup <= np; i += kGroup) block<kGroup, PAIRS, CH>(rows, i, pairs, blk, c, o + i * C, C, rq);
  for (; i < np; ++i) block<1, PAIRS, CH>(rows, i, pairs, blk, c, o + i * C, C, rq);
}

inline __m256i chain16(__m256i v) { return chain(v); }

// NP pixels from pixel i0 of the tile, channels [c, c + 32), through the nibble section
// (qu8_internal.h): per tap pair the two rows' bytes interleaved per channel (X, Y) meet the low
// and high nibble weights in four vpmaddubsw, whose int16 sums run over at most kQu8DwNibblePairs
// pairs before they are widened into the int32 accumulators as sum_l + 16 * sum_h.
template <size_t NP, size_t PAIRS, class Rows>
inline void block32(const Rows& rows, size_t i0, size_t pairs_rt, const uint8_t* blk, size_t c, uint8_t* o, size_t C,
                    const DwRequant& rq) {
  const size_t pairs = PAIRS ? PAIRS : pairs_rt;
  const __m256i one_sixteen = _mm256_set1_epi32(0x00100001);  // int16 pairs (1, 16)
  __m256i acc[NP][4];
  Q8_UNROLL
  for (size_t i = 0; i < NP; ++i) Q8_UNROLL
  for (size_t q = 0; q < 4; ++q) acc[i][q] = load(blk + 32 * q);
  const uint8_t* wp = blk + 256;
  Q8_UNROLL
  for (size_t p0 = 0; p0 < pairs; p0 += kQu8DwNibblePairs) {
    const size_t p1 = pairs - p0 < kQu8DwNibblePairs ? pairs : p0 + kQu8DwNibblePairs;
    __m256i s[NP][4];  // int16 sums: X low, X high, Y low, Y high nibbles
    Q8_UNROLL
    for (size_t i = 0; i < NP; ++i) Q8_UNROLL
    for (size_t q = 0; q < 4; ++q) s[i][q] = _mm256_setzero_si256();
    Q8_UNROLL
    for (size_t pr = p0; pr < p1; ++pr, wp += 128) {
      __m256i xy[NP][2];
      Q8_UNROLL
      for (size_t i = 0; i < NP; ++i) {
        const __m256i a0 = load(rows(i0 + i, 2 * pr) + c), a1 = load(rows(i0 + i, 2 * pr + 1) + c);
        xy[i][0] = _mm256_unpacklo_epi8(a0, a1);
        xy[i][1] = _mm256_unpackhi_epi8(a0, a1);
      }
      // Each weight vector is loaded once for the NP pixels (chain: kept in a register, not folded
      // into every pixel's vpmaddubsw as a load of its own).
      Q8_UNROLL
      for (size_t q = 0; q < 4; ++q) {
        const __m256i w = chain(load(wp + 32 * q));
        Q8_UNROLL
        for (size_t i = 0; i < NP; ++i)
          s[i][q] = chain16(_mm256_add_epi16(s[i][q], _mm256_maddubs_epi16(xy[i][q / 2], w)));
      }
    }
    Q8_UNROLL
    for (size_t i = 0; i < NP; ++i) {
      acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_unpacklo_epi16(s[i][0], s[i][1]), one_sixteen));
      acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_unpackhi_epi16(s[i][0], s[i][1]), one_sixteen));
      acc[i][2] = _mm256_add_epi32(acc[i][2], _mm256_madd_epi16(_mm256_unpacklo_epi16(s[i][2], s[i][3]), one_sixteen));
      acc[i][3] = _mm256_add_epi32(acc[i][3], _mm256_madd_epi16(_mm256_unpackhi_epi16(s[i][2], s[i][3]), one_sixteen));
    }
  }
  Q8_UNROLL
  for (size_t i = 0; i < NP; ++i) {
    __m256i v[4];
    Q8_UNROLL
    for (size_t q = 0; q < 4; ++q) v[q] = rq.rounded(acc[i][q], blk + 128 + 32 * q);
    const __m256i b = _mm256_packus_epi16(rq.pack16(v[0], v[1]), rq.pack16(v[2], v[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + i * C + c), b);
  }
}

// The last nc channels of pixel i of the tile, lanes [lane, lane + nc) of the block blk (lane + nc
// <= 16): each row's nc bytes copied into a zero-filled buffer at those lanes, so nothing past a
// row's last channel is read.
template <class Rows>
inline void tail(const Rows& rows, size_t i, size_t pairs, const uint8_t* blk, size_t c, size_t lane, size_t nc,
                 uint8_t* o, const DwRequant& rq) {
  alignas(16) uint8_t buf[kMaxTaps + 1][16];
  const uint8_t* r[kMaxTaps + 1];
  for (size_t t = 0; t < 2 * pairs; ++t) {
    std::memset(buf[t], 0, 16);
    std::memcpy(buf[t] + lane, rows(i, t) + c, nc);
    r[t] = buf[t];
  }
  alignas(16) uint8_t res[16];
  block<1, 0, 16>(GatheredRows{r, 2 * pairs}, 0, pairs, blk, 0, res, 0, rq);
  std::memcpy(o + c, res + lane, nc);
}

constexpr size_t kTile = 16;        // output pixels whose rows are gathered at once
constexpr size_t kNibbleGroup = 2;  // output pixels per 32-channel step (8 int16 sums)

// block32 over the np pixels of a tile, kNibbleGroup at a time.
template <size_t PAIRS, class Rows>
inline void block32_pixels(const Rows& rows, size_t np, size_t pairs, const uint8_t* blk, size_t c, uint8_t* o,
                           size_t C, const DwRequant& rq) {
  size_t i = 0;
  for (; i + kNibbleGroup <= np; i += kNibbleGroup)
    block32<kNibbleGroup, PAIRS>(rows, i, pairs, blk, c, o + i * C, C, rq);
  for (; i < np; ++i) block32<1, PAIRS>(rows, i, pairs, blk, c, o + i * C, C, rq);
}

template <size_t PAIRS>
void run(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out, size_t p0,
         size_t p1, const QU8Requant& p) {
  const size_t C = g.C, taps = g.taps(), pairs = (taps + 1) / 2, stride = 2 * pairs;
  const uint8_t* sec = static_cast<const uint8_t*>(packed) + qu8_dw_block_section(g);
  const size_t block_bytes = qu8_dw_block_bytes(g);
  const uint8_t* nsec = static_cast<const uint8_t*>(packed) + qu8_dw_nibble_section(g);
  const size_t nibble_bytes = qu8_dw_nibble_block_bytes(g);
  const DwRequant rq(p);
  // An odd tap count's last pair repeats the last tap (its pair weight is 0).
  size_t offset[kMaxTaps + 1];
  tap_offsets(g, offset);
  if (taps % 2) offset[taps] = offset[taps - 1];
  const uint8_t* gathered[kTile * (kMaxTaps + 1)];
  // Past the last whole 32-channel block, `rest` channels: 8 or 16 go as a half or a 16-lane
  // block; any other rest of a row longer than 32 as the block of its last 32 channels (the last
  // packed one, qu8_internal.h), overlapping the block before it, whose channels it gives the
  // same bytes again; a row shorter than 32 in 16-lane blocks, a half block and a copy.
  const size_t rest = C % kQu8DwNibbleBlock;
  const bool last32 = C > kQu8DwNibbleBlock && rest != 8 && rest != 16;
  // Every channel block of the tile's np pixels, whose rows `rows` gives.
  auto blocks = [&](const auto& rows, size_t np, uint8_t* o) {
    size_t c = 0;
    for (; c + kQu8DwNibbleBlock <= C; c += kQu8DwNibbleBlock)
      block32_pixels<PAIRS>(rows, np, pairs, nsec + c / kQu8DwNibbleBlock * nibble_bytes, c, o, C, rq);
    if (last32) {
      if (c < C)
        block32_pixels<PAIRS>(rows, np, pairs, nsec + c / kQu8DwNibbleBlock * nibble_bytes, C - kQu8DwNibbleBlock, o, C,
                              rq);
      return;
    }
    for (; c + kQu8DwBlock <= C; c += kQu8DwBlock)
      block_pixels<PAIRS, 16>(rows, np, pairs, sec + c / kQu8DwBlock * block_bytes, c, o, C, rq);
    const uint8_t* last = sec + c / kQu8DwBlock * block_bytes;
    if (C - c >= 8) {
      block_pixels<PAIRS, 8>(rows, np, pairs, last, c, o, C, rq);
      c += 8;
    }
    if (c < C)
      for (size_t i = 0; i < np; ++i) tail(rows, i, pairs, last, c, c % kQu8DwBlock, C - c, o + i * C, rq);
  };
  const size_t reach_x = (g.KW - 1) * g.DW;  // a window's last column, from its first
  PixelCursor px(p0, g.OH, g.OW);
  for (size_t first = p0; first < p1;) {
    const size_t most = p1 - first < kTile ? p1 - first : kTile;
    size_t np = 0, iy, ix;
    if (window_inside(g, px.oy, px.ox, iy, ix)) {
      // The row's next pixels whose windows are inside too (the same input rows, SW columns on).
      const size_t in_row = g.OW - px.ox;
      np = 1;
      while (np < most && np < in_row && ix + np * g.SW + reach_x < g.IW) ++np;
      blocks(InteriorRows{in + ((px.n * g.IH + iy) * g.IW + ix) * C, g.SW * C, offset}, np, out + first * C);
      for (size_t i = 0; i < np; ++i) px.next();
    } else {
      // Border pixels up to the next inside window: their rows under every tap, gathered.
      for (; np < most && (np == 0 || !window_inside(g, px.oy, px.ox, iy, ix)); ++np, px.next()) {
        const uint8_t** r = gathered + np * stride;
        qu8_simd::dw_rows(g, in, zero, px, offset, r);
        if (taps % 2) r[taps] = r[taps - 1];
      }
      blocks(GatheredRows{gathered, stride}, np, out + first * C);
    }
    first += np;
  }
}

}  // namespace dw16

}  // namespace

// Declared in kernels/qu8_internal.h: the avxvnni table reuses them.
void qu8_dwconv__avx2(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out,
                      size_t p0, size_t p1, const QU8Requant& p) {
  switch (g.taps()) {
    case 9: return dw16::run<5>(g, in, packed, zero, out, p0, p1, p);
    case 25: return dw16::run<13>(g, in, packed, zero, out, p0, p1, p);
    default:
      if (g.taps() <= kQu8DwBlockMaxTaps) return dw16::run<0>(g, in, packed, zero, out, p0, p1, p);
      return qu8_simd::dwconv<Avx2>(g, in, packed, zero, out, p0, p1, p);
  }
}
void qu8_maxpool__avx2(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1) {
  if (g.C < Avx2::WB) return qu8_simd::maxpool<Xmm>(g, in, out, p0, p1);
  qu8_simd::maxpool<Avx2>(g, in, out, p0, p1);
}
void qu8_avgpool__avx2(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1,
                       const QU8PoolParams& p) {
  qu8_simd::avgpool<Avx2>(g, in, out, p0, p1, p);
}
void qu8_global_avgpool__avx2(size_t HW, size_t C, const uint8_t* in, uint8_t* out, size_t n0, size_t n1,
                              const QU8PoolParams& p) {
  qu8_simd::global_avgpool<Avx2>(HW, C, in, out, n0, n1, p);
}
void qu8_add__avx2(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out, const QU8AddParams& p) {
  qu8_simd::add<Avx2>(n, a, b, out, p);
}
void qu8_mul_rows__avx2(size_t rows, size_t n, const uint8_t* a, size_t a_rs, const uint8_t* b, size_t b_rs,
                        uint8_t* out, const QU8MulParams& p) {
  qu8_simd::mul_rows<Avx2>(rows, n, a, a_rs, b, b_rs, out, p);
}
// 16 rows of 16 bytes, one vpshufb per row on the low nibble, then the high nibble picks among
// the 16 results. Its bit 4 picks between rows 2j and 2j + 1 without a blend: vpshufb gives 0
// where an index byte has bit 7 set, so row 2j is looked up with bit 4 moved to bit 7 and row
// 2j + 1 with its complement there, and the two results are OR-ed (one of them is 0). Bits 5, 6
// and 7 then go through a tree of vpblendvb, which reads each byte's top bit: bit k is shifted
// there (a 16-bit shift moves each byte's bit k to its own bit 7). 7 blends per 32 bytes instead
// of 15: 12 % faster on Zen 3, where the step now takes about 16 cycles, one per vpshufb (loading
// each row once for two vectors measured the same).
void qu8_lookup__avx2(size_t n, const uint8_t* in, uint8_t* out, const uint8_t* table) {
  __m256i row[16];
  for (int h = 0; h < 16; ++h)
    row[h] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * h)));
  const __m256i nibble = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10), top = _mm256_set1_epi8(-128);
  auto lookup = [&](__m256i x) {
    // Low nibble, and bit 4 as bit 7 (x & 0x10, shifted by 3 within its byte).
    const __m256i even = _mm256_or_si256(_mm256_and_si256(x, nibble), _mm256_slli_epi16(_mm256_and_si256(x, bit4), 3));
    const __m256i odd = _mm256_xor_si256(even, top);
    __m256i level[8];
    for (int j = 0; j < 8; ++j)
      level[j] = _mm256_or_si256(_mm256_shuffle_epi8(row[2 * j], even), _mm256_shuffle_epi8(row[2 * j + 1], odd));
    const __m256i b5 = _mm256_slli_epi16(x, 2), b6 = _mm256_slli_epi16(x, 1);
    for (int j = 0; j < 4; ++j) level[j] = _mm256_blendv_epi8(level[2 * j], level[2 * j + 1], b5);
    for (int j = 0; j < 2; ++j) level[j] = _mm256_blendv_epi8(level[2 * j], level[2 * j + 1], b6);
    return _mm256_blendv_epi8(level[0], level[1], x);
  };
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        lookup(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i))));
  for (; i < n; ++i) out[i] = table[in[i]];
}

void qu8_quantize__avx2(size_t n, const float* x, uint8_t* q, float scale, int32_t zero_point) {
  qu8_simd::quantize<Avx2>(n, x, q, scale, zero_point);
}
void qu8_dequantize__avx2(size_t n, const uint8_t* q, float* y, float scale, int32_t zero_point) {
  qu8_simd::dequantize<Avx2>(n, q, y, scale, zero_point);
}

namespace {

// Constant-initialised (no code runs to build them), so asking for a table is safe on any CPU.
constexpr QU8Kernels k_table_w8 =
    qu8_avx2_family_table("avx2_w8", kQu8Avx2MR, kQu8Avx2NR, 1,  // int8 weights, sign-extended as the tile loads them
                          Q8_KERNEL(qu8_igemm_3x16c4__avx2_w8), Q8_KERNEL(qu8_gemm_3x16c4__avx2_w8),
                          Q8_KERNEL(qu8_gemm_dequantize_3x16c4__avx2_w8), nullptr);

// int16 weights, the vpmaddwd operand read straight from memory; dense layers stream their
// weights, so they run on int8 ones (half the bytes).
constexpr QU8Kernels k_table =
    qu8_avx2_family_table("avx2", kQu8Avx2MR, kQu8Avx2NR, 2, Q8_KERNEL(qu8_igemm_3x16c4__avx2),
                          Q8_KERNEL(qu8_gemm_3x16c4__avx2), Q8_KERNEL(qu8_gemm_dequantize_3x16c4__avx2), &k_table_w8);

}  // namespace

const QU8Kernels* qu8_kernels_avx2() { return &k_table; }
const QU8Kernels* qu8_kernels_avx2_w8() { return &k_table_w8; }

}  // namespace q8::kern

#else
namespace q8::kern {
const QU8Kernels* qu8_kernels_avx2() { return nullptr; }  // this build has no AVX2 flags
const QU8Kernels* qu8_kernels_avx2_w8() { return nullptr; }
}  // namespace q8::kern
#endif
