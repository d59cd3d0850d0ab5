// fp32 kernels: pure functions over NHWC float tensors.
//
// No allocation, no threads, no knowledge of graphs or ONNX. Each ISA provides the same table
// (F32Kernels); the engine picks one table once, at compile time of a plan, and calls through
// it. Work is expressed as ranges (output pixels, rows) so the engine can split it over threads
// without changing any arithmetic.
//
// Same bits on every table. Every table performs, per output element, exactly these IEEE-754
// single-precision operations in this order (kernels/reference/f32_scalar.cpp is the reference;
// tests/kernels/test_f32_kernels.cpp compares every SIMD table with it bit for bit; NaN payloads
// are not part of the promise, NaN positions are):
//   conv / gemm: acc = bias; for tap t in order, for input channel k in order:
//                acc = fma(a, w, acc); out = clamp(acc). One fused multiply-add per term, no
//                partial accumulators, no reassociation; padding taps read the zero row.
//   dwconv:      acc = bias; for each tap inside the input, row-major: acc = fma(x, w, acc);
//                out = clamp(acc) (taps outside the input are skipped).
//   maxpool:     m = -inf; for each tap inside the input, row-major: m = (x > m || x != x) ? x : m
//                (ties keep the earlier tap, so -0/+0 follow the input; a NaN wins and stays).
//   avgpool:     s = 0; s = s + x over the taps inside the input, row-major;
//                out = count ? s / float(count) : 0 (a division, not a reciprocal multiply;
//                count = avgpool_divisor, kernels/window.h).
//   global_avgpool: s = 0; s = s + x over hw in order; out = s / float(HW).
//   binary, binary_rows: out = clamp(a op b), op one of + - * / (a correctly rounded division,
//                not a multiply by a reciprocal).
//   clamp(x, lo, hi): y = x < lo ? lo : x; y = y > hi ? hi : y (NaN passes through; a -0/+0
//                bound equal to x keeps x).
//   unary:       the algorithms of kernels/f32_math.h (range reduction, minimax polynomials,
//                2^n built from bits), written once over a float or a SIMD batch: the scalar
//                reference (f32_unary__scalar) and every SIMD table perform the same IEEE single
//                operations, fused multiply-adds spelled explicitly, so x86 and Arm give the same
//                bits.
// The pools and dwconv visit only the taps inside the input (kernels/window.h finds them in O(1)
// per output pixel), so a pixel costs those taps, never the kernel area.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "kernels/named.h"

namespace q8::kern {

// 2-D convolution geometry, NHWC. Per group: Cg = C / groups input channels and
// Kg = K / groups output channels. Pads are top, left, bottom, right.
struct ConvGeometry {
  size_t N = 1, IH = 0, IW = 0, C = 0;  // input
  size_t OH = 0, OW = 0, K = 0;         // output
  size_t KH = 1, KW = 1;
  size_t SH = 1, SW = 1, DH = 1, DW = 1;
  size_t PT = 0, PL = 0, PB = 0, PR = 0;
  size_t groups = 1;
  size_t Cg() const { return C / groups; }
  size_t Kg() const { return K / groups; }
  size_t taps() const { return KH * KW; }
  size_t out_pixels() const { return N * OH * OW; }
};

// The drivers below (f32_conv_run, f32_gemm_run, qu8_conv_run, qu8_gemm_run, ...) run a
// rectangle of their output: rows (output pixels) [m0, m1) by panels [n0, n1) of nr output
// channels, panel j being channels [j * nr, (j + 1) * nr). n1 is clipped to the layer's panels,
// so the default runs all of them. An output element's arithmetic does not depend on the
// rectangle it is run in, so results do not depend on how the engine splits a layer.
constexpr size_t kAllPanels = static_cast<size_t>(-1);

struct PoolGeometry {
  size_t N = 1, IH = 0, IW = 0, C = 0, OH = 0, OW = 0;
  size_t KH = 1, KW = 1, SH = 1, SW = 1, DH = 1, DW = 1;
  size_t PT = 0, PL = 0, PB = 0, PR = 0;
  bool count_include_pad = false;  // AveragePool only
};

// out[i] = clamp(a[i] op b[i], lo, hi) over n elements: the tables' same-shape binary entries.
using F32BinaryFn = void (*)(size_t n, const float* a, const float* b, float* out, float lo, float hi);

// Element-wise activations: ONNX's Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu, Elu, Erf,
// Sqrt, Exp, and Silu (x * sigmoid(x)). alpha/beta are HardSigmoid's, LeakyRelu's and Elu's.
enum class UnaryKind : uint8_t { Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu, Elu, Erf, Sqrt, Exp, Silu, Gelu };
struct UnaryParams {
  UnaryKind kind = UnaryKind::Sigmoid;
  float alpha = 0.f, beta = 0.f;
};
// out[i] = f(x[i]) for the activation p.kind: the tables' unary entry.
using F32UnaryFn = void (*)(size_t n, const float* x, float* out, const UnaryParams& p);

// What a convolution does to its output besides the clamp, instead of separate passes over the
// tensor:
//   - a residual (a tensor laid out like the output, NHWC, K channels a pixel) added before the
//     clamp, out = clamp(acc + residual), acc being the unclamped result of the conv contract
//     below: a residual block's Add fused into the convolution that feeds it (passes.h,
//     fuse_residual_add). The GEMM tiles add it themselves (F32ConvKernel); the depthwise
//     kernel writes acc and `apply` adds it with `add` (a table's binary[Add]) to each block of
//     pixels while the block is still in cache;
//   - then an element-wise activation, out = f(out), with `unary` (a table's unary entry): a
//     Silu, HardSwish, Sigmoid... fused into the convolution (passes.h, fuse_unary_activation),
//     applied to each block of pixels right after it is written.
// The bits are those of the convolution followed by the separate Add and activation steps.
struct F32Epilogue {
  const float* residual = nullptr;  // null: no residual
  F32BinaryFn add = nullptr;
  F32UnaryFn unary = nullptr;  // null: no activation past the clamp
  UnaryParams unary_params;

  // The clamp a depthwise convolution applies itself: none while a residual is still to be added
  // (apply clamps after the add), else the layer's [out_min, out_max].
  float conv_min(float out_min) const { return residual ? -std::numeric_limits<float>::infinity() : out_min; }
  float conv_max(float out_max) const { return residual ? std::numeric_limits<float>::infinity() : out_max; }
  // Finishes n outputs the convolution wrote with that clamp; res: their n residual values.
  void apply(size_t n, const float* res, float* out, float out_min, float out_max) const {
    if (residual) add(n, out, res, out, out_min, out_max);
    if (unary) unary(n, out, out, unary_params);
  }
};

// --- GEMM-based convolution (groups where Cg > 1 or Kg > 1; also Gemm/MatMul with K = taps*Cg) --
//
// Weights are packed once per group into panels of `nr` output channels:
//   panel p: [nr float bias][taps * Cg * nr float weights, tap-major, then channel, then the nr
//   lanes of the panel]; output channels past Kg in the last panel are zero.
// Indirection: for every output pixel and tap, a pointer to the first input channel of that
// tap's pixel (already offset to the group), or to `zero` (Cg zero floats) for padding. Layout
// [out_pixel][tap]; built once per plan by conv_indirection_init since the arena is fixed.
struct F32ConvKernel {
  size_t mr = 1, nr = 1;
  // Computes output pixels [m0, m0+mr') x channels [0, nc) with one panel of weights.
  //   a: mr' * ks pointers ([pixel][tap]); each points at kc contiguous floats.
  //   c: output for pixel 0 channel 0 of this tile; consecutive pixels are c_stride floats apart.
  //   residual: null, or the same pixels and channels of a tensor laid out like the output (the
  //     same c_stride): c = clamp(acc + residual), a residual Add fused into the tile.
  Named<void (*)(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w, float* c,
                 size_t c_stride, const float* residual, float out_min, float out_max)>
      igemm;
  // The same tile over one block of the reduction, for layers whose weights f32_conv_run walks in
  // blocks that stay in L1: taps [0, ks) of each pixel (pixel i's pointers start at a + i *
  // a_stride), channels [a_offset, a_offset + kc) of each tap, against w (ks * kc rows of nr
  // weights, no biases). Accumulators start from `bias` (nr floats), or from the partial sums in c
  // when it is null; c gets clamp(acc [+ residual]) when `last`, else acc unclamped (residual
  // unread). Each output's operations stay those of one igemm call over the whole reduction, in
  // the same order.
  Named<void (*)(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_stride, size_t a_offset,
                 const float* bias, const float* w, float* c, size_t c_stride, const float* residual, float out_min,
                 float out_max, bool last)>
      igemm_block;
};

size_t f32_conv_packed_floats(const ConvGeometry& g, size_t nr);
// w: ONNX layout [K][Cg][KH][KW]; bias: K floats or null.
void f32_conv_pack(const ConvGeometry& g, size_t nr, const float* w, const float* bias, float* packed);
// The first convolution over kernel rows (conv_rows.h): w packed for conv_rows_geometry(g), the
// packing f32_conv_pack gives that geometry; f32_conv_packed_floats(conv_rows_geometry(g), nr).
void f32_conv_rows_pack(const ConvGeometry& g, size_t nr, const float* w, const float* bias, float* packed);
// [out_pixels][taps] pointers into `input` (NHWC, pixel stride C, offset by group * Cg).
void conv_indirection_init(const ConvGeometry& g, size_t group, const float* input, const float* zero,
                           const float** indirection);
// Runs output pixels [p0, p1) by panels [n0, n1) of one group. `out` is the whole NHWC output
// tensor, and `epilogue.residual`, when given, the whole tensor added to it. Groups are packed one after
// another: packed_group = packed + group * (packed_floats / groups).
void f32_conv_run(const F32ConvKernel& k, const ConvGeometry& g, size_t group, const float* const* indirection,
                  const float* packed_group, float* out, size_t p0, size_t p1, float out_min, float out_max,
                  size_t n0 = 0, size_t n1 = kAllPanels, const F32Epilogue& epilogue = {});
// The name of the micro-kernel f32_conv_run calls for this layer: k.igemm's, or k.igemm_block's
// where it walks the reduction in blocks.
const char* f32_conv_kernel_name(const F32ConvKernel& k, const ConvGeometry& g);
// Whether f32_conv_run may be given the residual's own tensor as `out`: it walks the reduction in
// one pass, so each output is written once, right after its residual is read at the same address.
// (In blocks, partial sums go to `out` before the last block reads the residual.)
bool f32_conv_may_write_over_residual(const F32ConvKernel& k, const ConvGeometry& g);

// --- Depthwise convolution (groups == C == K) ----------------------------------------------
// Packed: [C bias][taps][C weights]. Runs output pixels [p0, p1).
size_t f32_dwconv_packed_floats(const ConvGeometry& g);
void f32_dwconv_pack(const ConvGeometry& g, const float* w, const float* bias, float* packed);

// --- Dense matrix product with a constant right-hand side ------------------------------------
// Gemm/MatMul: out[M][N] = A[M][Kd] * B[Kd][N] + bias[N], clamped. B is packed like a 1x1 conv:
// panels of nr columns, [nr bias][Kd * nr].
size_t f32_gemm_packed_floats(size_t Kd, size_t N, size_t nr);
// b(k, n) = B[k * b_row_stride + n * b_col_stride] so both B and B^T pack without copies.
void f32_gemm_pack(size_t Kd, size_t N, size_t nr, const float* B, size_t b_row_stride, size_t b_col_stride,
                   const float* bias, float* packed);

// The element-wise binary ops with table entries, in the order of F32Kernels::binary. Pow has
// none: it runs through the portable f32_broadcast_binary (kernels/f32_misc.h) on every table.
enum class BinaryOp : uint8_t { Add, Sub, Mul, Div, Pow };
constexpr size_t kTableBinaryOps = 4;  // Add, Sub, Mul, Div
// out[i] = f(x[i]). Sigmoid, Tanh, Elu, Erf, Exp and Silu are evaluated in float by
// kernels/f32_math.h (within a few float ulps of the exact value; the bounds per function are
// tested in tests/kernels/test_f32_kernels.cpp); Gelu is ((x * (erf(x / sqrt2) + 1)) * 0.5 in float
// steps, the graph PyTorch exports; HardSigmoid, HardSwish and LeakyRelu are their
// ONNX formulas in float (alpha * x + beta: a multiply, then an add); Sqrt is IEEE's. NaN in gives
// NaN out. The scalar table's entry, and the reference the SIMD tables match bit for bit.
void f32_unary__scalar(size_t n, const float* x, float* out, const UnaryParams& p);

struct F32Kernels {
  const char* isa = "scalar";
  F32ConvKernel conv;
  // The same contract on a tile one vector wide and taller, for layers of at most conv_narrow.nr
  // output channels per group (the 16-channel layers of UNets and small YOLOs, the 3-channel
  // head), on which conv's tile would compute lanes that are dropped; absent (null igemm) where
  // conv's tile is narrow already. f32_conv_kernel_for chooses.
  F32ConvKernel conv_narrow;
  // Plain GEMM on packed B: rows [m0, m0+mr'), one panel. A rows are a_stride floats apart.
  // Shares conv.mr and conv.nr: pack B with f32_gemm_pack(..., conv.nr, ...).
  Named<void (*)(size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w, float* c,
                 size_t c_stride, float out_min, float out_max)>
      gemm;
  // Depthwise over output pixels [p0, p1) (all channels).
  Named<void (*)(const ConvGeometry& g, const float* in, const float* packed, const float* zero, float* out, size_t p0,
                 size_t p1, float out_min, float out_max)>
      dwconv;
  // Pools over output pixels [p0, p1), NHWC, all channels.
  Named<void (*)(const PoolGeometry& g, const float* in, float* out, size_t p0, size_t p1)> maxpool;
  Named<void (*)(const PoolGeometry& g, const float* in, float* out, size_t p0, size_t p1)> avgpool;
  // out[n][c] = mean over hw of in[n][hw][c], for n in [n0, n1).
  Named<void (*)(size_t HW, size_t C, const float* in, float* out, size_t n0, size_t n1)> global_avgpool;
  // Same shape, by BinaryOp: out[i] = clamp(a[i] op b[i], lo, hi).
  Named<F32BinaryFn> binary[kTableBinaryOps];
  // Row broadcast, by BinaryOp: out[r*n + i] = clamp(a[r*a_rs + i] op b[r*b_rs + i], lo, hi). One
  // operand's row stride is 0 (a per-channel term on NHWC, or a trailing-axes term on C order),
  // on either side of the op.
  Named<void (*)(size_t rows, size_t n, const float* a, size_t a_rs, const float* b, size_t b_rs, float* out, float lo,
                 float hi)>
      binary_rows[kTableBinaryOps];
  // out[i] = clamp(x[i], lo, hi)
  Named<void (*)(size_t n, const float* x, float* out, float lo, float hi)> clamp;
  // out[i] = f(x[i]) for the activation p.kind (f32_unary__scalar's bits on every table).
  Named<F32UnaryFn> unary;
};

// The convolution kernel of table k for layers of Kg output channels per group: conv_narrow where
// the table has one and Kg fits in it, else conv. Packing, running and naming a layer all use the
// one this returns (its nr fixes the packing); the bits do not depend on the choice.
const F32ConvKernel& f32_conv_kernel_for(const F32Kernels& k, size_t Kg);

// Runs rows [m0, m1) by panels [n0, n1) of out[M][N] = A * packed B with kernel table k.
void f32_gemm_run(const F32Kernels& k, size_t N, size_t Kd, const float* a, size_t a_stride, const float* packed,
                  float* out, size_t out_stride, size_t m0, size_t m1, float out_min, float out_max, size_t n0 = 0,
                  size_t n1 = kAllPanels);

// Tables for each ISA; null where this build or target lacks the ISA.
const F32Kernels* f32_kernels_scalar();
const F32Kernels* f32_kernels_avx2();
const F32Kernels* f32_kernels_avx512();
// The AVX-512 table with a 6x64 GEMM tile instead of 6x32 (kernels/x86/f32_avx512.cpp says when it
// is faster); same ISA, same bits.
const F32Kernels* f32_kernels_avx512_6x64();
const F32Kernels* f32_kernels_neon();

}  // namespace q8::kern
