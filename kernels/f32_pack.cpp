// fp32 weight packing, indirection buffers and the tile loops around the micro-kernels. These are
// ISA-independent: each table's micro-kernels see the same tiles, only mr and nr differ.
#include <algorithm>
#include <cstddef>

#include "kernels/conv_indirection.h"
#include "kernels/conv_transpose.h"
#include "kernels/f32.h"
#include "kernels/row_tiles.h"

namespace q8::kern {
namespace {

size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

// One panel: nr biases, then taps * Cg rows of nr weights.
size_t conv_panel_floats(const ConvGeometry& g, size_t nr) { return nr + g.taps() * g.Cg() * nr; }
size_t conv_group_floats(const ConvGeometry& g, size_t nr) { return ceil_div(g.Kg(), nr) * conv_panel_floats(g, nr); }

// Output pixels are walked in blocks whose input rows (about `kBlockBytes`) stay in L2 while every
// panel of weights passes over them, in balanced tiles of at most mr pixels (RowTiles), panel by
// panel (each panel read once per block rather than once per tile) or, where the weights are
// small, tile by tile over every panel (kTilesOuterWeightBytes). Blocks are whole
// multiples of mr and the tiling never splits the reduction, so every output element gets the
// same arithmetic whatever the range [p0, p1) (results do not depend on how the engine splits
// the work over threads).
constexpr size_t kBlockBytes = 256 * 1024;
// Within a block, the tiles go outermost, each over every panel, when the panels' weights together
// are at most kTilesOuterWeightBytes (they then stay in L2 while the tiles pass): each tile writes
// its pixels' whole output rows, and reads their whole residual rows, as one sequential stream,
// where panel by panel the block's rows were written a strip at a time. Measured on an Intel
// Xeon, the two orders alternating in one process (BENCHMARKS.md): 0.86-0.97x the time of
// ResNet-50's and MobileNetV2's 1x1 layers of 28x28 to 112x112 pixels with 2-8 panels, the same
// at 14x14, and 1.02-1.19x with 1 MiB of weights (resnet50's 14x14 256->1024), hence the bound.
constexpr size_t kTilesOuterWeightBytes = 256 * 1024;

size_t pixel_block(size_t row_floats, size_t mr) {
  const size_t rows = kBlockBytes / (std::max<size_t>(row_floats, 1) * sizeof(float));
  return std::max(mr, rows / mr * mr);
}

// Layers with long reductions and few pixels (resnet18's layer4 and resnet50's last stage: 7x7
// pixels, K = 4608, 9.4 MB of weights) take a blocked order instead. When a pixel block of
// kBlockBytes of input rows covers at most two mr-pixel tiles, a panel's whole reduction (295 KiB
// at 3x3x512 and nr = 16) serves at most two tiles before the next block, so every weight streams
// from L3 or memory for every tile or two. The blocked order splits the reduction into blocks of
// about kWeightBlockBytes per panel (a share of L1) and walks them outermost within a pixel block:
// for each block of the reduction, for each panel, every tile of the pixel block runs on the same
// L1-resident weights, the partial sums waiting in the output, while the next panel's block is
// prefetched into L2. The blocks follow the canonical order (taps in order, channels in order
// within a tap), so each output's operations do not change. A block is whole taps when Cg is
// small, or a run of one tap's channels when Cg is large. Panels whose reduction exceeds
// kOnePassPanelBytes take the blocked order too, however many tiles a pixel block holds: streamed
// from L2 once per tile, such a panel kept the 6x64 tile well below the rate it reaches on
// L1-resident weights (Intel Xeon, BENCHMARKS.md: resnet50's 7x7 1x1 2048->512, 512 KiB a panel,
// 1.4 -> 0.85 ms; resnet18's 14x14 3x3 256->256, 576 KiB). Other layers keep the one-pass order:
// it was as fast or faster on them (BENCHMARKS.md, fp32 kernels).
constexpr size_t kWeightBlockBytes = 16 * 1024;
constexpr size_t kOnePassPanelBytes = 256 * 1024;
// Pixels per block in the blocked order: their inputs for one block of the reduction stay in L2.
constexpr size_t kBlockedInputBytes = 192 * 1024;
constexpr size_t kCacheLineFloats = 64 / sizeof(float);

struct ReductionBlocks {
  size_t taps_per_block = 0;      // whole taps per block (channel runs: 1)
  size_t channels_per_block = 0;  // channels of a tap per block (whole taps: Cg)
  size_t rows = 0;                // taps_per_block * channels_per_block, the largest block
};

// The blocks of a reduction of `taps` taps of Cg channels with tiles mr x nr, or rows == 0 when
// the layer keeps the one-pass order.
ReductionBlocks reduction_blocks(size_t taps, size_t Cg, size_t mr, size_t nr) {
  ReductionBlocks b;
  const bool few_tiles = pixel_block(taps * Cg, mr) <= 2 * mr;
  const bool large_panel = taps * Cg * nr * sizeof(float) > kOnePassPanelBytes;
  if (!few_tiles && !large_panel) return b;
  const size_t target = std::max<size_t>(kWeightBlockBytes / (nr * sizeof(float)), 1);
  if (Cg >= target) {
    b.taps_per_block = 1;
    b.channels_per_block = ceil_div(Cg, ceil_div(Cg, target));
  } else {
    b.taps_per_block = target / Cg;
    b.channels_per_block = Cg;
  }
  b.rows = b.taps_per_block * b.channels_per_block;
  return b;
}

// The fused activation over output pixels [b0, b1), channels [c0, c1) of one group (out offset to
// the group, pixels `stride` floats apart), which the tiles wrote clamped (residual added). One
// call over the block when its rows are whole and contiguous, else one per pixel.
void activate_block(const F32Epilogue& e, float* out, size_t stride, size_t b0, size_t b1, size_t c0, size_t c1) {
  if (!e.unary || c0 >= c1) return;  // no activation, or an empty range of panels
  const bool whole = c0 == 0 && c1 == stride;
  const size_t pixels = whole ? 1 : b1 - b0, n = whole ? (b1 - b0) * stride : c1 - c0;
  for (size_t i = 0; i < pixels; ++i)
    e.unary(n, out + (b0 + i) * stride + c0, out + (b0 + i) * stride + c0, e.unary_params);
}

// Output pixels [p0, p1) of one group in the blocked order. a: [pixel][tap] pointers; the weights
// of a block (taps [t0, t0 + nt), channels [c0, c0 + kc)) are rows t0 * Cg + c0 onwards of each
// panel, contiguous after the panel's nr biases. res: the residual offset to the group, or null.
void run_blocked(const F32ConvKernel& k, const ReductionBlocks& rb, size_t taps, size_t Cg, size_t Kg,
                 const float* const* a, const float* packed, size_t panel_floats, float* out, size_t out_stride,
                 size_t p0, size_t p1, size_t n0, size_t n1, float out_min, float out_max, const F32Epilogue& epilogue,
                 const float* res) {
  const size_t mr = k.mr, nr = k.nr;
  if (p0 >= p1) return;
  // Pixel blocks of equal size (whole tiles), so no short last block walks all the weights for a
  // few pixels.
  const size_t max_block = std::max(mr, kBlockedInputBytes / (rb.rows * sizeof(float)) / mr * mr);
  const size_t block = ceil_div(ceil_div(p1 - p0, ceil_div(p1 - p0, max_block)), mr) * mr;
  for (size_t b0 = p0; b0 < p1; b0 += block) {
    const size_t b1 = std::min(p1, b0 + block);
    const RowTiles tiles(b0, b1, mr);
    for (size_t t0 = 0; t0 < taps; t0 += rb.taps_per_block) {
      const size_t nt = std::min(rb.taps_per_block, taps - t0);
      for (size_t c0 = 0; c0 < Cg; c0 += rb.channels_per_block) {
        const size_t kc = std::min(rb.channels_per_block, Cg - c0);
        const bool first = t0 == 0 && c0 == 0, last = t0 + nt == taps && c0 + kc == Cg;
        const size_t lines = ceil_div(nt * kc * nr, kCacheLineFloats), lines_per_tile = ceil_div(lines, tiles.count);
        for (size_t panel = n0; panel < n1; ++panel) {
          const size_t nc = std::min(nr, Kg - panel * nr);
          const float* pp = packed + panel * panel_floats;
          const float* w = pp + nr + (t0 * Cg + c0) * nr;
          const float* next = panel + 1 < n1 ? w + panel_floats : nullptr;
          for (size_t tile = 0; tile < tiles.count; ++tile) {
            // Each tile asks for its share of the next panel's block, so it is in L2 when needed.
            if (next)
              for (size_t l = tile * lines_per_tile; l < std::min(lines, (tile + 1) * lines_per_tile); ++l)
                __builtin_prefetch(next + l * kCacheLineFloats, 0, 2);
            const size_t p = tiles.start(tile), at = p * out_stride + panel * nr;
            k.igemm_block(tiles.rows(tile), nc, kc, nt, a + p * taps + t0, taps, c0, first ? pp : nullptr, w, out + at,
                          out_stride, last && res ? res + at : nullptr, out_min, out_max, last);
          }
        }
      }
    }
    activate_block(epilogue, out, out_stride, b0, b1, n0 * nr, std::min(Kg, n1 * nr));
  }
}

// One group's panels: [nr biases][taps * Cg rows of nr weights], weight(kk, t, c) being output
// channel kk of the group at tap t and input channel c; lanes past Kg are zero.
template <typename Weight>
void pack_group(size_t Kg, size_t taps, size_t Cg, size_t nr, Weight weight, const float* bias, float* pg) {
  const size_t panel_floats = nr + taps * Cg * nr;
  for (size_t panel = 0; panel < ceil_div(Kg, nr); ++panel) {
    float* pp = pg + panel * panel_floats;
    for (size_t lane = 0; lane < nr; ++lane) {
      const size_t kk = panel * nr + lane;
      const bool real = kk < Kg;
      pp[lane] = real && bias ? bias[kk] : 0.0f;
      for (size_t t = 0; t < taps; ++t)
        for (size_t c = 0; c < Cg; ++c) pp[nr + (t * Cg + c) * nr + lane] = real ? weight(kk, t, c) : 0.0f;
    }
  }
}

}  // namespace

size_t f32_conv_packed_floats(const ConvGeometry& g, size_t nr) { return g.groups * conv_group_floats(g, nr); }

void f32_conv_pack(const ConvGeometry& g, size_t nr, const float* w, const float* bias, float* packed) {
  const size_t Cg = g.Cg(), Kg = g.Kg(), taps = g.taps();
  for (size_t group = 0; group < g.groups; ++group)
    pack_group(
        Kg, taps, Cg, nr, [&](size_t kk, size_t t, size_t c) { return w[((group * Kg + kk) * Cg + c) * taps + t]; },
        bias ? bias + group * Kg : nullptr, packed + group * conv_group_floats(g, nr));
}

// Kernel rows (conv_rows.h): tap ky, channel j = kx * C + c of conv_rows_geometry(g).
void f32_conv_rows_pack(const ConvGeometry& g, size_t nr, const float* w, const float* bias, float* packed) {
  const size_t C = g.C, KH = g.KH, KW = g.KW;
  pack_group(
      g.K, KH, KW * C, nr, [&](size_t kk, size_t ky, size_t j) { return w[((kk * C + j % C) * KH + ky) * KW + j / C]; },
      bias, packed);
}

// ConvTranspose (conv_transpose.h): per residue, per group, a Conv's panels over the residue's
// taps; tap t = ty * (taps along x) + tx is (first_y + ty*step_y, first_x + tx*step_x).
void f32_conv_transpose_pack(const ConvTransposeGeometry& g, size_t nr, const float* w, const float* bias,
                             float* packed) {
  const size_t Cg = g.Cg(), Kg = g.Kg(), KHW = g.KH * g.KW;
  float* dst = packed;
  for (size_t r = 0; r < conv_transpose_phases(g); ++r) {  // residue r: phase r without pads
    const ConvTransposePhaseAxis ay = conv_transpose_phase_axis(r / g.SW, g.SH, g.DH, 0, g.KH, 0);
    const ConvTransposePhaseAxis ax = conv_transpose_phase_axis(r % g.SW, g.SW, g.DW, 0, g.KW, 0);
    const size_t taps = std::max<size_t>(ay.taps * ax.taps, 1), group_floats = (nr + taps * Cg * nr) * ceil_div(Kg, nr);
    for (size_t grp = 0; grp < g.groups; ++grp) {
      auto weight = [&](size_t kk, size_t t, size_t c) {
        if (ay.taps * ax.taps == 0) return 0.0f;  // the zero tap of a phase no tap reaches
        const size_t ky = ay.first + t / ax.taps * ay.step, kx = ax.first + t % ax.taps * ax.step;
        return w[((grp * Cg + c) * Kg + kk) * KHW + ky * g.KW + kx];
      };
      pack_group(Kg, taps, Cg, nr, weight, bias ? bias + grp * Kg : nullptr, dst);
      dst += group_floats;
    }
  }
}

void conv_indirection_init(const ConvGeometry& g, size_t group, const float* input, const float* zero,
                           const float** indirection) {
  fill_conv_indirection(g, group, input, zero, indirection);
}

const char* f32_conv_kernel_name(const F32ConvKernel& k, const ConvGeometry& g) {
  return reduction_blocks(g.taps(), g.Cg(), k.mr, k.nr).rows ? k.igemm_block.name : k.igemm.name;
}

bool f32_conv_may_write_over_residual(const F32ConvKernel& k, const ConvGeometry& g) {
  return reduction_blocks(g.taps(), g.Cg(), k.mr, k.nr).rows == 0;
}

void f32_conv_run(const F32ConvKernel& k, const ConvGeometry& g, size_t group, const float* const* indirection,
                  const float* packed_group, float* out, size_t p0, size_t p1, float out_min, float out_max, size_t n0,
                  size_t n1, const F32Epilogue& epilogue) {
  const size_t mr = k.mr, nr = k.nr, Kg = g.Kg(), Cg = g.Cg(), ks = g.taps(), K = g.K;
  const size_t panel_floats = conv_panel_floats(g, nr);
  n1 = std::min(n1, ceil_div(Kg, nr));
  float* out_g = out + group * Kg;
  const float* res_g = epilogue.residual ? epilogue.residual + group * Kg : nullptr;
  const ReductionBlocks rb = reduction_blocks(ks, Cg, mr, nr);
  if (rb.rows) {
    run_blocked(k, rb, ks, Cg, Kg, indirection, packed_group, panel_floats, out_g, K, p0, p1, n0, n1, out_min, out_max,
                epilogue, res_g);
    return;
  }
  const size_t block = pixel_block(ks * Cg, mr);
  const bool tiles_outer = n1 > n0 && (n1 - n0) * panel_floats * sizeof(float) <= kTilesOuterWeightBytes;
  for (size_t b0 = p0; b0 < p1; b0 += block) {
    const size_t b1 = std::min(p1, b0 + block);
    const RowTiles tiles(b0, b1, mr);
    auto tile = [&](size_t i, size_t panel) {
      const size_t p = tiles.start(i), at = p * K + panel * nr;
      k.igemm(tiles.rows(i), std::min(nr, Kg - panel * nr), Cg, ks, indirection + p * ks,
              packed_group + panel * panel_floats, out_g + at, K, res_g ? res_g + at : nullptr, out_min, out_max);
    };
    if (tiles_outer) {
      for (size_t i = 0; i < tiles.count; ++i)
        for (size_t panel = n0; panel < n1; ++panel) tile(i, panel);
    } else {
      for (size_t panel = n0; panel < n1; ++panel)
        for (size_t i = 0; i < tiles.count; ++i) tile(i, panel);
    }
    activate_block(epilogue, out_g, K, b0, b1, n0 * nr, std::min(Kg, n1 * nr));
  }
}

size_t f32_dwconv_packed_floats(const ConvGeometry& g) { return g.C + g.taps() * g.C; }

void f32_dwconv_pack(const ConvGeometry& g, const float* w, const float* bias, float* packed) {
  const size_t C = g.C, taps = g.taps();
  for (size_t c = 0; c < C; ++c) packed[c] = bias ? bias[c] : 0.0f;
  for (size_t t = 0; t < taps; ++t)
    for (size_t c = 0; c < C; ++c) packed[C + t * C + c] = w[c * taps + t];  // ONNX [C][1][KH][KW]
}

size_t f32_gemm_packed_floats(size_t Kd, size_t N, size_t nr) { return ceil_div(N, nr) * (nr + Kd * nr); }

void f32_gemm_pack(size_t Kd, size_t N, size_t nr, const float* B, size_t b_row_stride, size_t b_col_stride,
                   const float* bias, float* packed) {
  for (size_t panel = 0; panel < ceil_div(N, nr); ++panel) {
    float* pp = packed + panel * (nr + Kd * nr);
    for (size_t lane = 0; lane < nr; ++lane) {
      const size_t n = panel * nr + lane;
      const bool real = n < N;
      pp[lane] = real && bias ? bias[n] : 0.0f;
      for (size_t kk = 0; kk < Kd; ++kk)
        pp[nr + kk * nr + lane] = real ? B[kk * b_row_stride + n * b_col_stride] : 0.0f;
    }
  }
}

const F32ConvKernel& f32_conv_kernel_for(const F32Kernels& k, size_t Kg) {
  return k.conv_narrow.igemm && Kg <= k.conv_narrow.nr ? k.conv_narrow : k.conv;
}

void f32_gemm_run(const F32Kernels& k, size_t N, size_t Kd, const float* a, size_t a_stride, const float* packed,
                  float* out, size_t out_stride, size_t m0, size_t m1, float out_min, float out_max, size_t n0,
                  size_t n1) {
  const size_t mr = k.conv.mr, nr = k.conv.nr;
  const size_t panel_floats = nr + Kd * nr;
  const size_t block = pixel_block(Kd, mr);
  n1 = std::min(n1, ceil_div(N, nr));
  for (size_t b0 = m0; b0 < m1; b0 += block) {
    const size_t b1 = std::min(m1, b0 + block);
    for (size_t panel = n0; panel < n1; ++panel) {
      const size_t nc = std::min(nr, N - panel * nr);
      const float* w = packed + panel * panel_floats;
      const RowTiles tiles(b0, b1, mr);
      for (size_t i = 0; i < tiles.count; ++i) {
        const size_t m = tiles.start(i);
        k.gemm(tiles.rows(i), nc, Kd, a + m * a_stride, a_stride, w, out + m * out_stride + panel * nr, out_stride,
               out_min, out_max);
      }
    }
  }
}

// Tables of ISAs this target does not compile at all (their files are not in the build).
#if !defined(Q8_ARCH_X86)
const F32Kernels* f32_kernels_avx2() { return nullptr; }
const F32Kernels* f32_kernels_avx512() { return nullptr; }
const F32Kernels* f32_kernels_avx512_6x64() { return nullptr; }
#endif
#if !defined(Q8_ARCH_ARM64)
const F32Kernels* f32_kernels_neon() { return nullptr; }
#endif

}  // namespace q8::kern
