// int8 weight packing, indirection buffers and the tile loops around the GEMM micro-kernels.
// ISA-independent: each table's micro-kernels see the same kind of tiles, only mr and nr differ.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/conv_indirection.h"
#include "kernels/conv_transpose.h"
#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"
#include "kernels/row_tiles.h"

namespace q8::kern {
namespace {

size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

// One panel (qu8.h): [nr int32 bias'][taps x ceil(Cg/kr) blocks of nr x kr weights of wb bytes]
// [nr float M].
size_t panel_bytes(size_t taps, size_t cg, size_t nr, size_t kr, size_t wb) {
  return nr * sizeof(int32_t) + taps * ceil_div(cg, kr) * nr * kr * wb + nr * sizeof(float);
}

// bias' = bias - z_a * sum_k w[k] (the algebra below), computed in int64 and wrapped to int32 like
// the kernels' int32 sums (any true accumulator fits in int32, so the wrapped partial terms add up
// to the exact result).
int32_t adjusted_bias(int32_t bias, uint8_t a_zero_point, int64_t wsum) {
  return static_cast<int32_t>(
      static_cast<uint32_t>(static_cast<uint64_t>(int64_t{bias} - int64_t{a_zero_point} * wsum)));
}

// Packs one group's panels. wt(kk, t, c) is the centred int8 weight of output channel kk of the
// group (kk < Kg), tap t and input channel c (c < Cg); stored as int8 (wb = 1) or int16 (wb = 2).
//
// The zero-point algebra the micro-kernels rely on (z_a: input zero point):
//   acc[n] = bias[n] + sum_k (a_k - z_a) * w[n][k]
//          = (bias[n] - z_a * sum_k w[n][k]) + sum_k a_k * w[n][k]
//          =  bias'[n]                       + sum_k a_k * w[n][k]
// where k runs over every tap and channel, so padding taps must read z_a (the `zero` row);
// bias' is adjusted_bias().
template <class W>
void pack_group(size_t Kg, size_t taps, size_t Cg, size_t nr, size_t kr, size_t wb, W wt, const int32_t* bias,
                const float* multiplier, uint8_t a_zero_point, uint8_t* pg) {
  const size_t blocks = ceil_div(Cg, kr), pb = panel_bytes(taps, Cg, nr, kr, wb);
  for (size_t panel = 0; panel < ceil_div(Kg, nr); ++panel) {
    uint8_t* pp = pg + panel * pb;
    uint8_t* pw = pp + nr * sizeof(int32_t);
    uint8_t* pm = pp + nr * sizeof(int32_t) + taps * blocks * nr * kr * wb;
    for (size_t lane = 0; lane < nr; ++lane) {
      const size_t kk = panel * nr + lane;
      const bool real = kk < Kg;
      int64_t wsum = 0;
      for (size_t t = 0; t < taps; ++t)
        for (size_t b = 0; b < blocks; ++b)
          for (size_t j = 0; j < kr; ++j) {
            const size_t c = kr * b + j;
            const int8_t v = real && c < Cg ? wt(kk, t, c) : int8_t{0};
            uint8_t* dst = pw + (((t * blocks + b) * nr + lane) * kr + j) * wb;
            if (wb == 2) {
              const int16_t v16 = v;
              std::memcpy(dst, &v16, sizeof v16);
            } else {
              std::memcpy(dst, &v, sizeof v);
            }
            wsum += v;
          }
      const int32_t b32 = real ? adjusted_bias(bias ? bias[kk] : 0, a_zero_point, wsum) : 0;
      const float m = real ? multiplier[kk] : 0.0f;
      std::memcpy(pp + lane * sizeof(int32_t), &b32, sizeof b32);
      std::memcpy(pm + lane * sizeof(float), &m, sizeof m);
    }
  }
}

// Output rows are walked in balanced tiles (RowTiles), in blocks whose input rows (about
// kBlockBytes) stay in L2 while every panel of weights in [n0, n1) passes over them, then panel by
// panel: each panel is read once per block rather than once per tile. (For the igemm a row's
// bytes include its ks indirection pointers, which outweigh the input bytes when Cg is small.)
// Where the panels' weights together are at most kTilesOuterWeightBytes, the tiles go outermost
// instead, each over every panel: panel by panel, a block's output rows would be written nr bytes
// at a time, pass after pass (16-byte strips of a cache line on the avx2 table's panels), and a
// block's output outgrows L2 long before its input does (MobileNetV2's 16 -> 96 expansion writes
// six bytes per byte read); tile by tile, each tile writes its rows whole while the weights stay
// in L1/L2.
// The tiling never splits the reduction and the arithmetic of an output element does not depend
// on its tile, so results do not depend on how the engine splits the work over threads.
constexpr size_t kBlockBytes = 256 * 1024;
constexpr size_t kTilesOuterWeightBytes = 32 * 1024;

template <class Tile>
void run_tiles(size_t m0, size_t m1, size_t mr, size_t row_bytes, size_t n0, size_t n1, size_t panel_size, Tile tile) {
  const RowTiles t(m0, m1, mr);
  const size_t start_rows = kBlockBytes / std::max<size_t>(row_bytes, 1);
  const size_t tiles_per_block = std::max<size_t>(1, start_rows / mr);
  const bool tiles_outer = n1 > n0 && (n1 - n0) * panel_size <= kTilesOuterWeightBytes;
  for (size_t tb = 0; tb < t.count; tb += tiles_per_block) {
    const size_t te = std::min(t.count, tb + tiles_per_block);
    if (tiles_outer) {
      for (size_t i = tb; i < te; ++i)
        for (size_t panel = n0; panel < n1; ++panel) tile(t.start(i), t.rows(i), panel);
    } else {
      for (size_t panel = n0; panel < n1; ++panel)
        for (size_t i = tb; i < te; ++i) tile(t.start(i), t.rows(i), panel);
    }
  }
}

}  // namespace

size_t qu8_conv_packed_bytes(const ConvGeometry& g, size_t nr, size_t kr, size_t weight_bytes) {
  return g.groups * ceil_div(g.Kg(), nr) * panel_bytes(g.taps(), g.Cg(), nr, kr, weight_bytes);
}

void qu8_conv_pack(const ConvGeometry& g, size_t nr, size_t kr, size_t weight_bytes, const int8_t* w,
                   const int32_t* bias, const float* multiplier, uint8_t a_zero_point, void* packed) {
  const size_t Cg = g.Cg(), Kg = g.Kg(), taps = g.taps();
  const size_t group_bytes = qu8_conv_packed_bytes(g, nr, kr, weight_bytes) / g.groups;
  for (size_t grp = 0; grp < g.groups; ++grp) {
    const size_t oc0 = grp * Kg;
    auto wt = [&](size_t kk, size_t t, size_t c) { return w[((oc0 + kk) * Cg + c) * taps + t]; };
    pack_group(Kg, taps, Cg, nr, kr, weight_bytes, wt, bias ? bias + oc0 : nullptr, multiplier + oc0, a_zero_point,
               static_cast<uint8_t*>(packed) + grp * group_bytes);
  }
}

size_t qu8_gemm_packed_bytes(size_t Kd, size_t N, size_t nr, size_t kr, size_t weight_bytes) {
  return ceil_div(N, nr) * panel_bytes(1, Kd, nr, kr, weight_bytes);
}

void qu8_gemm_pack(size_t Kd, size_t N, size_t nr, size_t kr, size_t weight_bytes, const int8_t* B, size_t b_row_stride,
                   size_t b_col_stride, const int32_t* bias, const float* multiplier, uint8_t a_zero_point,
                   void* packed) {
  auto wt = [&](size_t n, size_t, size_t k) { return B[k * b_row_stride + n * b_col_stride]; };
  pack_group(N, 1, Kd, nr, kr, weight_bytes, wt, bias, multiplier, a_zero_point, static_cast<uint8_t*>(packed));
}

// The igemm's packing for the geometry qu8_conv_rows_geometry gives: tap ky, channel kx * C + c.
void qu8_conv_rows_pack(const ConvGeometry& g, size_t nr, size_t kr, size_t weight_bytes, const int8_t* w,
                        const int32_t* bias, const float* multiplier, uint8_t a_zero_point, void* packed) {
  const size_t C = g.C, KH = g.KH, KW = g.KW;
  auto wt = [&](size_t kk, size_t ky, size_t j) { return w[((kk * C + j % C) * KH + ky) * KW + j / C]; };
  pack_group(g.K, KH, KW * C, nr, kr, weight_bytes, wt, bias, multiplier, a_zero_point, static_cast<uint8_t*>(packed));
}

void qu8_conv_indirection_init(const ConvGeometry& g, size_t group, const uint8_t* input, const uint8_t* zero,
                               const uint8_t** indirection) {
  fill_conv_indirection(g, group, input, zero, indirection);
}

void qu8_conv_run(const QU8Kernels& k, const ConvGeometry& g, size_t grp, const uint8_t* const* indirection,
                  const void* packed_group, uint8_t* out, size_t p0, size_t p1, const QU8Requant& p, size_t n0,
                  size_t n1) {
  const size_t nr = k.nr, Kg = g.Kg(), Cg = g.Cg(), ks = g.taps(), K = g.K;
  const size_t pb = panel_bytes(ks, Cg, nr, k.kr, k.weight_bytes);
  uint8_t* out_g = out + grp * Kg;
  const uint8_t* pw = static_cast<const uint8_t*>(packed_group);
  run_tiles(p0, p1, k.mr, ks * (Cg + sizeof(void*)), n0, std::min(n1, ceil_div(Kg, nr)), pb,
            [&](size_t s, size_t rows, size_t panel) {
              k.igemm(rows, std::min(nr, Kg - panel * nr), Cg, ks, indirection + s * ks, pw + panel * pb,
                      out_g + s * K + panel * nr, K, p);
            });
}

void qu8_gemm_run(const QU8Kernels& k, size_t N, size_t Kd, const uint8_t* a, size_t a_stride, const void* packed,
                  uint8_t* out, size_t out_stride, size_t m0, size_t m1, const QU8Requant& p, size_t n0, size_t n1) {
  const size_t nr = k.nr, pb = panel_bytes(1, Kd, nr, k.kr, k.weight_bytes);
  const uint8_t* pw = static_cast<const uint8_t*>(packed);
  run_tiles(m0, m1, k.mr, Kd, n0, std::min(n1, ceil_div(N, nr)), pb, [&](size_t s, size_t rows, size_t panel) {
    k.gemm(rows, std::min(nr, N - panel * nr), Kd, a + s * a_stride, a_stride, pw + panel * pb,
           out + s * out_stride + panel * nr, out_stride, p);
  });
}

void qu8_gemm_dequantize_run(const QU8Kernels& k, size_t N, size_t Kd, const uint8_t* a, size_t a_stride,
                             const void* packed, float* out, size_t out_stride, size_t m0, size_t m1, size_t n0,
                             size_t n1) {
  const size_t nr = k.nr, pb = panel_bytes(1, Kd, nr, k.kr, k.weight_bytes);
  const uint8_t* pw = static_cast<const uint8_t*>(packed);
  run_tiles(m0, m1, k.mr, Kd, n0, std::min(n1, ceil_div(N, nr)), pb, [&](size_t s, size_t rows, size_t panel) {
    k.gemm_dequantize(rows, std::min(nr, N - panel * nr), Kd, a + s * a_stride, a_stride, pw + panel * pb,
                      out + s * out_stride + panel * nr, out_stride);
  });
}

size_t qu8_dwconv_packed_bytes(const ConvGeometry& g) {
  return qu8_dw_quad_section(g) + qu8_dw_blocks(g, kQu8DwQuadBlock) * qu8_dw_quad_block_bytes(g);
}

// [C int32 bias'][taps][C int8][C float M][C int32 bias], bias' = bias - z_a * sum_t w[c][t] (the
// algebra above with one input channel per output channel), bias as given (0 without one) for the
// kernels that sum only over the taps inside the input (qu8.h).
void qu8_dwconv_pack(const ConvGeometry& g, const int8_t* w, const int32_t* bias, const float* multiplier,
                     uint8_t a_zero_point, void* packed) {
  const size_t C = g.C, taps = g.taps();
  uint8_t* pp = static_cast<uint8_t*>(packed);
  int8_t* pw = reinterpret_cast<int8_t*>(pp + C * sizeof(int32_t));
  uint8_t* pm = pp + C * sizeof(int32_t) + taps * C;
  for (size_t c = 0; c < C; ++c) {
    int64_t wsum = 0;
    for (size_t t = 0; t < taps; ++t) {
      const int8_t v = w[c * taps + t];  // ONNX [C][1][KH][KW]
      pw[t * C + c] = v;
      wsum += v;
    }
    const int32_t b32 = adjusted_bias(bias ? bias[c] : 0, a_zero_point, wsum);
    std::memcpy(pp + c * sizeof(int32_t), &b32, sizeof b32);
    std::memcpy(pm + c * sizeof(float), &multiplier[c], sizeof(float));
    const int32_t b0 = bias ? bias[c] : 0;
    std::memcpy(pm + C * sizeof(float) + c * sizeof(int32_t), &b0, sizeof b0);
  }
  if (taps > kQu8DwBlockMaxTaps) return;  // no channel blocks (qu8_internal.h)
  // The channel-block section (qu8_internal.h): the same bias' and M, weights as int16 tap pairs.
  const size_t pairs = (taps + 1) / 2, block_bytes = qu8_dw_block_bytes(g);
  uint8_t* sec = pp + qu8_dw_block_section(g);
  std::memset(sec, 0, qu8_dw_blocks(g, kQu8DwBlock) * block_bytes);
  for (size_t c0 = 0; c0 < C; c0 += kQu8DwBlock) {
    uint8_t* blk = sec + c0 / kQu8DwBlock * block_bytes;
    for (size_t half = 0; half < 2; ++half)
      for (size_t j = 0; j < 8; ++j) {
        const size_t c = c0 + qu8_dw_block_channel(half, j);
        if (c >= C) continue;
        const size_t lane = half * 8 + j;
        std::memcpy(blk + lane * sizeof(int32_t), pp + c * sizeof(int32_t), sizeof(int32_t));
        std::memcpy(blk + (16 + lane) * sizeof(int32_t), pm + c * sizeof(float), sizeof(float));
        for (size_t pr = 0; pr < pairs; ++pr)
          for (size_t k = 0; k < 2; ++k) {
            const size_t t = 2 * pr + k;
            const int16_t v = t < taps ? w[c * taps + t] : 0;
            std::memcpy(blk + 32 * sizeof(int32_t) + ((pr * 2 + half) * 16 + 2 * j + k) * sizeof(int16_t), &v,
                        sizeof v);
          }
      }
  }
  // The nibble section (qu8_internal.h): the same bias' and M, weights split as 16 * h + l.
  const size_t nibble_bytes = qu8_dw_nibble_block_bytes(g);
  uint8_t* nsec = pp + qu8_dw_nibble_section(g);
  std::memset(nsec, 0, qu8_dw_blocks(g, kQu8DwNibbleBlock) * nibble_bytes);
  for (size_t b = 0; b * kQu8DwNibbleBlock < C; ++b) {
    uint8_t* blk = nsec + b * nibble_bytes;
    // Block b's first channel: 32 b, or for the last of a row longer than 32, C - 32.
    const size_t c0 =
        C > kQu8DwNibbleBlock && (b + 1) * kQu8DwNibbleBlock > C ? C - kQu8DwNibbleBlock : b * kQu8DwNibbleBlock;
    for (size_t q = 0; q < 4; ++q)
      for (size_t j = 0; j < 8; ++j) {
        const size_t c = c0 + qu8_dw_nibble_lane_channel(q, j);
        if (c >= C) continue;
        std::memcpy(blk + (8 * q + j) * sizeof(int32_t), pp + c * sizeof(int32_t), sizeof(int32_t));
        std::memcpy(blk + (32 + 8 * q + j) * sizeof(int32_t), pm + c * sizeof(float), sizeof(float));
      }
    int8_t* pw8 = reinterpret_cast<int8_t*>(blk + 64 * sizeof(int32_t));
    for (size_t pr = 0; pr < pairs; ++pr)
      for (size_t y = 0; y < 2; ++y)
        for (size_t i = 0; i < 16; ++i) {
          const size_t c = c0 + qu8_dw_nibble_pair_channel(y, i);
          if (c >= C) continue;
          for (size_t k = 0; k < 2; ++k) {
            const size_t t = 2 * pr + k;
            const int v = t < taps ? w[c * taps + t] : 0;
            const int lo = ((v + 8) & 15) - 8, hi = (v - lo) / 16;
            int8_t* vec = pw8 + (pr * 4 + 2 * y) * kQu8DwNibbleBlock;  // XL or YL; XH, YH follow
            vec[2 * i + k] = static_cast<int8_t>(lo);
            vec[kQu8DwNibbleBlock + 2 * i + k] = static_cast<int8_t>(hi);
          }
        }
  }
  // The quad section (qu8_internal.h): the same bias' (bias - z_a * sum over every tap of w, so
  // padding taps read z_a) and M, the weights of four taps per channel lane.
  const size_t quads = (taps + 3) / 4, quad_bytes = qu8_dw_quad_block_bytes(g);
  uint8_t* qsec = pp + qu8_dw_quad_section(g);
  std::memset(qsec, 0, qu8_dw_blocks(g, kQu8DwQuadBlock) * quad_bytes);
  constexpr size_t kVec = kQu8DwQuadBlock / 4 * sizeof(int32_t);  // bytes per vector of 16 lanes
  for (size_t c = 0; c < C; ++c) {
    const size_t i = c % kQu8DwQuadBlock, v = qu8_dw_quad_vector(i), at = v * kVec + qu8_dw_quad_lane_offset(i);
    uint8_t* blk = qsec + c / kQu8DwQuadBlock * quad_bytes;
    std::memcpy(blk + at, pp + c * sizeof(int32_t), sizeof(int32_t));
    std::memcpy(blk + 4 * kVec + at, pm + c * sizeof(float), sizeof(float));
    for (size_t u = 0; u < quads; ++u)
      for (size_t k = 0; k < 4; ++k) {
        const size_t t = qu8_dw_quad_tap(g, u, k);
        blk[(8 + 4 * u) * kVec + at + k] = static_cast<uint8_t>(t < taps ? w[c * taps + t] : 0);
      }
  }
}

// Tables of ISAs this target does not compile at all (their files are not in the build).
#if !defined(Q8_ARCH_X86)
const QU8Kernels* qu8_kernels_avx2() { return nullptr; }
const QU8Kernels* qu8_kernels_avx2_w8() { return nullptr; }
const QU8Kernels* qu8_kernels_avx512() { return nullptr; }
const QU8Kernels* qu8_kernels_avx512vnni() { return nullptr; }
const QU8Kernels* qu8_kernels_avx512vnni_6x64() { return nullptr; }
const QU8Kernels* qu8_kernels_amx() { return nullptr; }
void qu8_amx_release_thread() {}
const QU8Kernels* qu8_kernels_avxvnni() { return nullptr; }
#endif
#if !defined(Q8_ARCH_ARM64)
const QU8Kernels* qu8_kernels_neon() { return nullptr; }
const QU8Kernels* qu8_kernels_neondot() { return nullptr; }
const QU8Kernels* qu8_kernels_neoni8mm() { return nullptr; }
#endif

// ConvTranspose (conv_transpose.h): per residue, per group, a Conv's panels over the
// residue's taps; tap t = ty * (taps along x) + tx is (first_y + ty*step_y, first_x + tx*step_x).
void qu8_conv_transpose_pack(const ConvTransposeGeometry& g, size_t nr, size_t kr, size_t weight_bytes, const int8_t* w,
                             const int32_t* bias, const float* multiplier, uint8_t a_zero_point, void* packed) {
  const size_t Cg = g.Cg(), Kg = g.Kg(), KHW = g.KH * g.KW;
  uint8_t* dst = static_cast<uint8_t*>(packed);
  for (size_t r = 0; r < conv_transpose_phases(g); ++r) {  // residue r: phase r without pads
    const ConvTransposePhaseAxis ay = conv_transpose_phase_axis(r / g.SW, g.SH, g.DH, 0, g.KH, 0);
    const ConvTransposePhaseAxis ax = conv_transpose_phase_axis(r % g.SW, g.SW, g.DW, 0, g.KW, 0);
    const size_t taps = std::max<size_t>(ay.taps * ax.taps, 1),
                 group_bytes = panel_bytes(taps, Cg, nr, kr, weight_bytes) * ceil_div(Kg, nr);
    for (size_t grp = 0; grp < g.groups; ++grp) {
      auto wt = [&](size_t kk, size_t t, size_t c) {
        if (ay.taps * ax.taps == 0) return int8_t{0};  // the zero tap of a phase no tap reaches
        const size_t ky = ay.first + t / ax.taps * ay.step, kx = ax.first + t % ax.taps * ax.step;
        return w[((grp * Cg + c) * Kg + kk) * KHW + ky * g.KW + kx];
      };
      pack_group(Kg, taps, Cg, nr, kr, weight_bytes, wt, bias ? bias + grp * Kg : nullptr, multiplier + grp * Kg,
                 a_zero_point, dst);
      dst += group_bytes;
    }
  }
}

}  // namespace q8::kern
