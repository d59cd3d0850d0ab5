// Declarations shared between the int8 kernel files (kernels/ only; not part of the engine's
// view of the kernels, which is kernels/qu8.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/qu8.h"

namespace q8::kern {

// --- GEMM and indirect GEMM micro-kernels
// Signatures are QU8Kernels::igemm / ::gemm. Weights for a table must be packed with that table's
// NR (qu8_conv_pack / qu8_gemm_pack); MR is the most rows one call computes. Every kernel
// computes exactly the bytes of the scalar one (integer sums are exact; the requantization is
// qu8.h's float sequence, with no FMA contraction).
constexpr size_t kQu8ScalarMR = 4, kQu8ScalarNR = 4;
// Defined in kernels/reference/qu8_gemm_scalar.cpp.
void qu8_igemm_4x4c4__scalar(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                             uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_4x4c4__scalar(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                            uint8_t* c, size_t c_stride, const QU8Requant& p);
// QU8Kernels::gemm_dequantize, for the scalar table's packing (nr = 4) and, any row count, for
// nr = 32 (the AMX tile model's table; kr = 4, int8).
void qu8_gemm_dequantize_4x4c4__scalar(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                       const void* w, float* c, size_t c_stride);
void qu8_gemm_dequantize_16x32c4__scalar(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                         const void* w, float* c, size_t c_stride);

#if defined(Q8_ARCH_X86)
// kernels/x86/qu8_gemm_avx2.cpp (AVX2: weights packed as int16, u8 widened to int16 in-register,
// vpmaddwd; exact).
constexpr size_t kQu8Avx2MR = 3, kQu8Avx2NR = 16;
void qu8_igemm_3x16c4__avx2(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                            uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_3x16c4__avx2(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                           uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_dequantize_3x16c4__avx2(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                                      float* c, size_t c_stride);
// The same tiles over int8 weights, sign-extended as they are loaded (the avx2_w8 table).
void qu8_igemm_3x16c4__avx2_w8(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                               uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_3x16c4__avx2_w8(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                              uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_dequantize_3x16c4__avx2_w8(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                         const void* w, float* c, size_t c_stride);
// kernels/x86/qu8_gemm_avx512.cpp (AVX-512 F+BW, no VNNI: int16 widening, vpmaddwd; exact).
constexpr size_t kQu8Avx512MR = 8, kQu8Avx512NR = 16;
void qu8_igemm_8x16c4__avx512(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                              uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_8x16c4__avx512(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                             uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_dequantize_8x16c4__avx512(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                        const void* w, float* c, size_t c_stride);
// kernels/x86/qu8_gemm_avx512vnni.cpp (vpdpbusd on zmm).
constexpr size_t kQu8Avx512vnniMR = 8, kQu8Avx512vnniNR = 32;
void qu8_igemm_8x32c4__avx512vnni(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                                  uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_8x32c4__avx512vnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                                 uint8_t* c, size_t c_stride, const QU8Requant& p);
// Also the amx table's gemm_dequantize (same packing: nr = 32, c4, int8; any row count, so the
// amx table's mr = 16 too): a float-output dense layer has a row or a few, too few for AMX tiles.
void qu8_gemm_dequantize_8x32c4__avx512vnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                            const void* w, float* c, size_t c_stride);
// The same in tiles of 6 rows x 64 channels (the avx512vnni_6x64 table: packed with nr = 64).
constexpr size_t kQu8Avx512vnni6x64MR = 6, kQu8Avx512vnni6x64NR = 64;
void qu8_igemm_6x64c4__avx512vnni(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                                  uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_6x64c4__avx512vnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                                 uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_dequantize_6x64c4__avx512vnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                            const void* w, float* c, size_t c_stride);
// kernels/x86/qu8_gemm_amx.cpp (AMX-INT8 tiles; the loop is kernels/x86/qu8_gemm_amx_driver.h).
constexpr size_t kQu8AmxMR = 16, kQu8AmxNR = 32;
void qu8_igemm_16x32c4__amx(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                            uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_16x32c4__amx(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                           uint8_t* c, size_t c_stride, const QU8Requant& p);
// kernels/x86/qu8_gemm_amx_model.cpp: the same driver over a scalar model of the tile
// instructions (kernels/x86/amx_tile_model.h), runnable on any x86 CPU; for tests. Its table has
// the AMX GEMM tile (mr, nr) and the scalar non-GEMM entries. The release clears this thread's
// model tile configuration, as qu8_amx_release_thread() does the real one.
void qu8_igemm_16x32c4__amx_model(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                                  uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_16x32c4__amx_model(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                                 uint8_t* c, size_t c_stride, const QU8Requant& p);
const QU8Kernels* qu8_kernels_amx_model();
void qu8_amx_model_release_thread();
// kernels/x86/qu8_gemm_avxvnni.cpp (VEX vpdpbusd on ymm: AVX-VNNI without AVX-512).
constexpr size_t kQu8AvxvnniMR = 6, kQu8AvxvnniNR = 16;
void qu8_igemm_6x16c4__avxvnni(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                               uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_6x16c4__avxvnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                              uint8_t* c, size_t c_stride, const QU8Requant& p);
void qu8_gemm_dequantize_6x16c4__avxvnni(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                         const void* w, float* c, size_t c_stride);
#endif

// --- Depthwise: the channel-block section of the packed weights
// qu8_dwconv_pack appends to qu8.h's depthwise layout a section for kernels that take 16 channels
// and two taps per step through vpmaddwd (u8 and s8 widened to int16; each int32 lane sums the
// two taps of one channel, exact). It starts qu8_dw_block_section(g) bytes into the packing (not
// necessarily aligned) and holds, per block of 16 channels (the last one padded with channels of
// zero weight, bias and M):
//   [16 int32 bias'] [16 float M] [ceil(taps / 2) pairs x 32 int16 weights]
// in the lane order of _mm256_unpacklo/hi_epi16 over two taps' channels widened to int16 (per
// 128-bit half, one pair per channel): the "lo" half of a block (bias' lanes 0-7, M lanes 0-7, the
// first 16 int16 of a pair) is channels 0-3 and 8-11, the "hi" half channels 4-7 and 12-15.
// int16 2j and 2j + 1 of a pair's half are the weights of taps 2p and 2p + 1 for its j-th
// channel (0 past the last tap). _mm256_packs_epi32(lo, hi) restores channel order.
// This section and those after it exist only for kernels of at most kQu8DwBlockMaxTaps taps (every tap of a window
// is summed, so only short kernels use them); for longer ones they hold no blocks, keeping the
// packing of a huge kernel near its int8 weights' size.
constexpr size_t kQu8DwBlock = 16, kQu8DwBlockMaxTaps = 64;
// Blocks of `width` channels in a section.
static inline size_t qu8_dw_blocks(const ConvGeometry& g, size_t width) {
  return g.taps() <= kQu8DwBlockMaxTaps ? (g.C + width - 1) / width : 0;
}
static inline size_t qu8_dw_block_section(const ConvGeometry& g) {
  return g.C * sizeof(int32_t) + g.taps() * g.C + 2 * g.C * sizeof(int32_t);
}
static inline size_t qu8_dw_block_bytes(const ConvGeometry& g) {
  return 2 * kQu8DwBlock * sizeof(int32_t) + (g.taps() + 1) / 2 * 2 * kQu8DwBlock * sizeof(int16_t);
}
// Channel of lane j (0-7) of a block's lo (half 0) or hi (half 1) vector.
static inline size_t qu8_dw_block_channel(size_t half, size_t j) { return (j < 4 ? j : j + 4) + 4 * half; }

// After it, a second section for kernels that take 32 channels and two taps per vpmaddubsw
// (u8 x s8 byte pairs summed into int16), exact because each weight is split into nibbles:
//   w = 16 * h + l,  l = ((w + 8) & 15) - 8 in [-8, 7],  h = (w - l) / 16 in [-8, 8],
// so one pair sums to at most 2 * 255 * 8 = 4080 in magnitude and up to kQu8DwNibblePairs pairs
// add up in int16 without overflow (32640); then acc += sum_l + 16 * sum_h in int32 (vpmaddwd
// with (1, 16)). It starts qu8_dw_nibble_section(g) bytes into the packing and holds ceil(C / 32)
// blocks of 32 channels, block b starting at channel 32 b, but the last where C > 32 is not a
// multiple of 32: that one holds the last 32 channels, [C - 32, C), overlapping the block before
// it, so a kernel reads it from the rows' last 32 bytes; where C < 32, the one block is padded as
// above. Per block:
//   [32 int32 bias'] [32 float M] [ceil(taps / 2) pairs x (XL, XH, YL, YH: 32 int8 each)]
// For taps t = 2p, 2p + 1, X = _mm256_unpacklo_epi8(row_t, row_t+1) holds byte pairs of channels
// 0-7 and 16-23 (per 128-bit half), Y = unpackhi those of 8-15 and 24-31; XL holds the l of X's
// channels in the same byte-pair order, XH their h, YL and YH likewise. bias' and M are four
// vectors of 8 lanes, vector q lane j being channel 4q + j (j < 4) or 4q + j + 12 (j >= 4): the
// order _mm256_unpacklo/hi_epi16 gives the int16 sums of X (q = 0, 1) and Y (q = 2, 3), which
// _mm256_packs_epi32 and _mm256_packus_epi16 turn back into channel order.
constexpr size_t kQu8DwNibbleBlock = 32, kQu8DwNibblePairs = 8;
static inline size_t qu8_dw_nibble_section(const ConvGeometry& g) {
  return qu8_dw_block_section(g) + qu8_dw_blocks(g, kQu8DwBlock) * qu8_dw_block_bytes(g);
}
static inline size_t qu8_dw_nibble_block_bytes(const ConvGeometry& g) {
  return 2 * kQu8DwNibbleBlock * sizeof(int32_t) + (g.taps() + 1) / 2 * 4 * kQu8DwNibbleBlock;
}
// Channel of lane j (0-7) of vector q (0-3) of a nibble block; of byte pair i (0-15) of X (y = 0)
// or Y (y = 1).
static inline size_t qu8_dw_nibble_lane_channel(size_t q, size_t j) { return 4 * q + (j < 4 ? j : j + 12); }
static inline size_t qu8_dw_nibble_pair_channel(size_t y, size_t i) { return 8 * y + (i < 8 ? i : i + 8); }

// After it, a third section for kernels that take four taps per 32-bit lane (AVX-512: vpdpbusd,
// or two vpmaddwd without VNNI). It starts qu8_dw_quad_section(g) bytes into the packing and
// holds, per block of 64 channels (the last one padded with channels of zero weight, bias and M):
//   [4 vectors x 16 int32 bias'] [4 x 16 float M] [ceil(taps / 4) quads x 4 vectors x 16 x 4 int8]
// Lane 4L + j (L: 128-bit lane 0-3, j: 0-3) of vector q (0-3) is channel 16L + 4q + j of the
// block, the order in which _mm512_unpacklo/hi_epi8 then _mm512_unpacklo/hi_epi16 interleave the
// bytes of four tap rows (64 channels each) into one u8 quad per channel; byte k of a weight lane
// of quad u is the weight of tap qu8_dw_quad_tap(g, u, k) (0 where that is no tap). _mm512_packs_epi32 (vectors 0, 1
// and 2, 3) then _mm512_packus_epi16 turn the four vectors back into channel order. A kernel that
// takes 32 (or 16) channels at a time reads lanes 8 (or 4) at a time: the 128-bit lanes s / 16 on
// of each vector, for channels [s, s + 32) of the block.
constexpr size_t kQu8DwQuadBlock = 64;
static inline size_t qu8_dw_quad_section(const ConvGeometry& g) {
  return qu8_dw_nibble_section(g) + qu8_dw_blocks(g, kQu8DwNibbleBlock) * qu8_dw_nibble_block_bytes(g);
}
static inline size_t qu8_dw_quad_block_bytes(const ConvGeometry& g) {
  return 2 * kQu8DwQuadBlock * sizeof(int32_t) + (g.taps() + 3) / 4 * 4 * kQu8DwQuadBlock;
}
// Taps go into quads by columns where that takes no more quads (3x3: quad kx holds taps
// (0, kx), (1, kx), (2, kx) and a zero), so horizontally neighbouring output pixels share whole
// interleaved input columns; otherwise in row-major order, four at a time.
static inline bool qu8_dw_quad_columns(const ConvGeometry& g) {
  return g.KH >= 3 && g.KH <= 4 && g.KW <= (g.taps() + 3) / 4;
}
// Tap (ky * KW + kx) of byte k of quad u, or g.taps() where the byte holds no tap.
static inline size_t qu8_dw_quad_tap(const ConvGeometry& g, size_t u, size_t k) {
  if (qu8_dw_quad_columns(g)) return k < g.KH ? k * g.KW + u : g.taps();
  return 4 * u + k < g.taps() ? 4 * u + k : g.taps();
}
// Byte offset, within a vector of a quad block, of the int32 lane that holds channel i (0-63).
static inline size_t qu8_dw_quad_lane_offset(size_t i) { return 4 * (4 * (i / 16) + i % 4); }
// Vector (0-3) that holds channel i of a quad block.
static inline size_t qu8_dw_quad_vector(size_t i) { return i % 16 / 4; }

// --- element-wise, pooling, depthwise
// Defined in kernels/x86/qu8_ops_avx512.cpp (compiled with AVX-512 F/BW/VL/DQ) and reused by the
// avx512vnni and amx tables, which differ in their GEMM micro-kernels and depthwise. Callable only
// where the CPU has AVX-512 F+BW; the files define them only when built with those flags.
#if defined(Q8_ARCH_X86)
void qu8_dwconv__avx512(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out,
                        size_t p0, size_t p1, const QU8Requant& p);
// Defined in kernels/x86/qu8_ops_avx512vnni.cpp: the avx512vnni table's depthwise (four taps per
// vpdpbusd lane), also the amx table's. Callable only where the CPU has AVX-512 VNNI.
void qu8_dwconv__avx512vnni(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero,
                            uint8_t* out, size_t p0, size_t p1, const QU8Requant& p);
void qu8_maxpool__avx512(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1);
void qu8_avgpool__avx512(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1,
                         const QU8PoolParams& p);
void qu8_global_avgpool__avx512(size_t HW, size_t C, const uint8_t* in, uint8_t* out, size_t n0, size_t n1,
                                const QU8PoolParams& p);
void qu8_add__avx512(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out, const QU8AddParams& p);
void qu8_quantize__avx512(size_t n, const float* x, uint8_t* q, float scale, int32_t zero_point);
void qu8_dequantize__avx512(size_t n, const uint8_t* q, float* y, float scale, int32_t zero_point);
void qu8_mul_rows__avx512(size_t rows, size_t n, const uint8_t* a, size_t a_rs, const uint8_t* b, size_t b_rs,
                          uint8_t* out, const QU8MulParams& p);
void qu8_lookup__avx512(size_t n, const uint8_t* in, uint8_t* out, const uint8_t* table);

// A table of the AVX-512 family (avx512, the two avx512vnni tables, amx): its own GEMM tile, GEMM
// micro-kernels and depthwise, and the AVX-512 F+BW element-wise and pooling kernels above.
// constexpr, so every such table is constant-initialised (no code runs to build it) and asking for
// one is safe on any CPU.
constexpr QU8Kernels qu8_avx512_family_table(const char* isa, size_t mr, size_t nr, decltype(QU8Kernels::igemm) igemm,
                                             decltype(QU8Kernels::gemm) gemm, decltype(QU8Kernels::dwconv) dwconv,
                                             decltype(QU8Kernels::gemm_dequantize) gemm_dequantize) {
  return {
      isa,
      mr,
      nr,
      4,  // kr: c4 blocks
      1,  // weight_bytes: int8
      igemm,
      gemm,
      dwconv,
      Q8_KERNEL(qu8_maxpool__avx512),
      Q8_KERNEL(qu8_avgpool__avx512),
      Q8_KERNEL(qu8_global_avgpool__avx512),
      Q8_KERNEL(qu8_add__avx512),
      Q8_KERNEL(qu8_quantize__avx512),
      Q8_KERNEL(qu8_dequantize__avx512),
      Q8_KERNEL(qu8_mul_rows__avx512),
      Q8_KERNEL(qu8_lookup__avx512),
      gemm_dequantize,
  };
}
#endif

// Defined in kernels/x86/qu8_ops_avx2.cpp (compiled with AVX2 and FMA) and reused by the avxvnni
// table, which differs only in its GEMM micro-kernels. Callable only where the CPU has AVX2 and
// FMA; the file defines them only when built with those flags.
#if defined(Q8_ARCH_X86)
void qu8_dwconv__avx2(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out,
                      size_t p0, size_t p1, const QU8Requant& p);
void qu8_maxpool__avx2(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1);
void qu8_avgpool__avx2(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1,
                       const QU8PoolParams& p);
void qu8_global_avgpool__avx2(size_t HW, size_t C, const uint8_t* in, uint8_t* out, size_t n0, size_t n1,
                              const QU8PoolParams& p);
void qu8_add__avx2(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out, const QU8AddParams& p);
void qu8_quantize__avx2(size_t n, const float* x, uint8_t* q, float scale, int32_t zero_point);
void qu8_dequantize__avx2(size_t n, const uint8_t* q, float* y, float scale, int32_t zero_point);
void qu8_mul_rows__avx2(size_t rows, size_t n, const uint8_t* a, size_t a_rs, const uint8_t* b, size_t b_rs,
                        uint8_t* out, const QU8MulParams& p);
void qu8_lookup__avx2(size_t n, const uint8_t* in, uint8_t* out, const uint8_t* table);

// A table of the AVX2 family (avx2, avx2_w8, avxvnni): its own GEMM tile, weight size and GEMM
// micro-kernels, the AVX2 depthwise, element-wise and pooling kernels above, and its dense table.
// constexpr, like the AVX-512 family's.
constexpr QU8Kernels qu8_avx2_family_table(const char* isa, size_t mr, size_t nr, size_t weight_bytes,
                                           decltype(QU8Kernels::igemm) igemm, decltype(QU8Kernels::gemm) gemm,
                                           decltype(QU8Kernels::gemm_dequantize) gemm_dequantize,
                                           const QU8Kernels* dense) {
  return {
      isa,
      mr,
      nr,
      4,  // kr: c4 blocks
      weight_bytes,
      igemm,
      gemm,
      Q8_KERNEL(qu8_dwconv__avx2),
      Q8_KERNEL(qu8_maxpool__avx2),
      Q8_KERNEL(qu8_avgpool__avx2),
      Q8_KERNEL(qu8_global_avgpool__avx2),
      Q8_KERNEL(qu8_add__avx2),
      Q8_KERNEL(qu8_quantize__avx2),
      Q8_KERNEL(qu8_dequantize__avx2),
      Q8_KERNEL(qu8_mul_rows__avx2),
      Q8_KERNEL(qu8_lookup__avx2),
      gemm_dequantize,
      dense,
  };
}
#endif

}  // namespace q8::kern
