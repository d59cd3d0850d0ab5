// INT8 kernels: uint8 activations (asymmetric, per tensor), int8 weights (per output channel),
// int32 accumulation, float32 requantization. Pure functions over NHWC uint8 tensors.
//
// Every table below must produce exactly the bytes of the scalar reference (qu8_kernels_scalar)
// for every input: integer sums are exact, and the float steps are spelled out here so that
// every path performs the same IEEE operations in the same order (no FMA contraction).
//
// Requantization of an int32 accumulator `acc` for output channel c (DESIGN.md):
//   x   = (float)acc * M[c]                         (one rounding: int32->float is exact-RNE)
//   x   = min(max(x, (float)(out_min - z_out)), (float)(out_max - z_out))
//   out = (int32)round_half_even(x) + z_out         (cvtps2dq / nearbyintf)
// Clamping before rounding equals clamping after it because the bounds are integers, and it
// keeps the float->int conversion in range. A NaN never arises (acc and M are finite).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/f32.h"  // ConvGeometry, PoolGeometry
#include "kernels/named.h"

namespace q8::kern {

struct QU8Requant {
  int32_t out_zero_point = 0;
  uint8_t out_min = 0, out_max = 255;  // a fused ReLU/Clip narrows these
};

// ---- Weight packing for GEMM and indirect GEMM --------------------------------------------
//
// Per group, panels of `nr` output channels, input channels in groups of `kr` (4 or 8: the
// table's QU8Kernels::kr, the width of its dot-product step), each weight stored in
// `weight_bytes` bytes (the table's QU8Kernels::weight_bytes: 1 = int8; 2 = the same value as
// int16, for kernels that multiply int16 straight from memory); within a panel:
//   [nr int32 bias'] [taps x ceil(Cg/kr) blocks of (nr x kr weights)] [nr float M]
// Block b of tap t holds, for lane n, the kr weights w[n][t][kr*b .. kr*b+kr-1] (channels past Cg
// are zero). With kr = 4 one 32-bit lane holds 4 consecutive input channels of one output
// channel (SDOT, vpdpbusd; as int16, one 64-bit lane); with kr = 8 one 16-byte vector holds 2
// output channels x 8 input channels, the right operand of Arm's I8MM USMMLA.
// Output channels past Kg in the last panel have zero weights, bias and M.
//
// The zero-point algebra (z_a: input zero point; weights already centred, i.e. w - z_w):
//   acc[n] = bias[n] + sum_k (a_k - z_a) * w[n][k]
//          = (bias[n] - z_a * sum_k w[n][k]) + sum_k a_k * w[n][k]
//          =  bias'[n]                       + sum_k a_k * w[n][k]
// so the inner loop is a plain u8 x s8 dot product (vpdpbusd on VNNI). The sum over k covers
// every tap, so padding taps must read z_a (see `zero` below), contributing (z_a - z_a) * w = 0.
// A kernel reads each activation row in whole blocks, up to kr - 1 bytes past Cg: those bytes
// (whatever they hold) meet the zero weights past Cg, so they add nothing.
size_t qu8_conv_packed_bytes(const ConvGeometry& g, size_t nr, size_t kr, size_t weight_bytes);  // all groups
// w: [K][Cg][KH][KW] int8, centred (zero point already subtracted and in range);
// bias: K int32 (or null); multiplier: K floats M[c] = s_in * s_w[c] / s_out.
// Group `grp`'s packing starts at packed + grp * qu8_conv_packed_bytes(...) / groups.
void qu8_conv_pack(const ConvGeometry& g, size_t nr, size_t kr, size_t weight_bytes, const int8_t* w,
                   const int32_t* bias, const float* multiplier, uint8_t a_zero_point, void* packed);

// Dense: B is Kd x N with b(k, n) = B[k * b_row_stride + n * b_col_stride] (int8, centred);
// packed like a 1x1 conv with Cg = Kd.
size_t qu8_gemm_packed_bytes(size_t Kd, size_t N, size_t nr, size_t kr, size_t weight_bytes);
void qu8_gemm_pack(size_t Kd, size_t N, size_t nr, size_t kr, size_t weight_bytes, const int8_t* B, size_t b_row_stride,
                   size_t b_col_stride, const int32_t* bias, const float* multiplier, uint8_t a_zero_point,
                   void* packed);

// The largest QU8Kernels::kr of any table: activation rows, input tensors and the zero row must
// stay readable for kQu8MaxKr - 1 bytes past their last channel.
constexpr size_t kQu8MaxKr = 8;

// Indirection for conv: [out_pixel][tap] pointers to the first channel (of group `grp`) of the
// input pixel, or `zero` for padding taps: a row whose first C bytes equal z_a and that is
// readable for kQu8MaxKr - 1 bytes more (those meet zero weights). Input tensors likewise need
// kQu8MaxKr - 1 readable bytes past their end.
void qu8_conv_indirection_init(const ConvGeometry& g, size_t grp, const uint8_t* input, const uint8_t* zero,
                               const uint8_t** indirection);

// ---- Depthwise (groups == C == K) ----------------------------------------------------------
// Packed: [C int32 bias'][taps][C int8 weights][C float M][C int32 bias][channel blocks],
// bias' = bias - z_a * sum_t w[c][t]; the channel blocks (three sections, of 16, 32 and 64
// channels, for kernels of at most 64 taps) hold the same numbers again in the orders the AVX2 and
// AVX-512 kernels read them (kernels/qu8_internal.h). Two ways to the same int32 (sums wrap modulo 2^32):
//   acc = bias' + sum over every tap of a_t * w_t, a tap outside the input reading z_a, or
//   acc = bias  + sum over the taps inside the input of (a_t - z_a) * w_t.
// The second costs only the taps inside the input (kernels/window.h); the reference uses it, and
// so does every path where a kernel's taps outnumber what a short list holds, so no pixel ever
// costs the whole kernel area.
size_t qu8_dwconv_packed_bytes(const ConvGeometry& g);
void qu8_dwconv_pack(const ConvGeometry& g, const int8_t* w, const int32_t* bias, const float* multiplier,
                     uint8_t a_zero_point, void* packed);

// ---- Element-wise and pooling parameters ---------------------------------------------------
// Add: x = (float)(a - z_a) * Ma;  y = (float)(b - z_b) * Mb;  s = x + y;  then clamp/round as
// above with z_out (Ma = s_a / s_out, Mb = s_b / s_out). Mul and add are separate operations.
struct QU8AddParams {
  int32_t a_zero_point = 0, b_zero_point = 0;
  float a_multiplier = 1.f, b_multiplier = 1.f;
  QU8Requant out;
};
// Mul (ONNX Runtime's QLinearMul): acc = (a - z_a) * (b - z_b), an exact int32 (and exact as a
// float: |acc| < 2^24); then x = (float)acc * M (M = s_a * s_b / s_out) and clamp/round as above.
struct QU8MulParams {
  int32_t a_zero_point = 0, b_zero_point = 0;
  float multiplier = 1.f;
  QU8Requant out;
};
// Average pools: acc = sum over the counted taps of (a - z_in), an exact int32; then
// x = (float)acc * (in_over_out / (float)count), the window's scale being one IEEE division,
// then clamp/round as above with z_out; count = avgpool_divisor (kernels/window.h), the fp32 rule.
struct QU8PoolParams {
  int32_t in_zero_point = 0;
  float in_over_out = 1.f;  // s_in / s_out
  QU8Requant out;
};
// Quantize: q = clamp(round_half_even(x / s) + z, 0, 255), computed as
//   t = x / s (IEEE division); t = min(max(t, -z), 255 - z) (a NaN becomes -z); q = round(t) + z.
// Dequantize: y = (float)(q - z) * s.

// ---- The table -----------------------------------------------------------------------------
struct QU8Kernels {
  const char* isa = "scalar";
  size_t mr = 1, nr = 1;    // GEMM tile; weights for this table are packed with this nr
  size_t kr = 4;            // ... and this K group (4 or 8, at most kQu8MaxKr)
  size_t weight_bytes = 1;  // ... and this size per weight (1: int8; 2: int16), qu8_conv_pack

  // Output pixels/rows [0, mr') x channels [0, nc) of one panel (nc <= nr, mr' <= mr).
  // kc is the unpadded channel count per tap (Cg, or Kd for gemm); the kernel reads each
  // activation row in blocks of kr and may read up to kr - 1 bytes past kc (callers provide
  // slack); those bytes meet zero weights.
  Named<void (*)(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, uint8_t* c,
                 size_t c_stride, const QU8Requant& p)>
      igemm;
  Named<void (*)(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w, uint8_t* c,
                 size_t c_stride, const QU8Requant& p)>
      gemm;
  // Depthwise over output pixels [p0, p1). Taps outside the input count as z_a: `zero` is a row
  // of C bytes equal to z_a (the same z_a the weights were packed with).
  Named<void (*)(const ConvGeometry& g, const uint8_t* in, const void* packed, const uint8_t* zero, uint8_t* out,
                 size_t p0, size_t p1, const QU8Requant& p)>
      dwconv;
  // Max pool on uint8 (input and output share scale and zero point), output pixels [p0, p1).
  Named<void (*)(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1)> maxpool;
  // Average pool with requantization; count per ONNX (count_include_pad as in f32).
  Named<void (*)(const PoolGeometry& g, const uint8_t* in, uint8_t* out, size_t p0, size_t p1, const QU8PoolParams& p)>
      avgpool;
  // out[n][c] from the HW pixels of image n, for n in [n0, n1); count = HW.
  Named<void (*)(size_t HW, size_t C, const uint8_t* in, uint8_t* out, size_t n0, size_t n1, const QU8PoolParams& p)>
      global_avgpool;
  // n elements, same shape.
  Named<void (*)(size_t n, const uint8_t* a, const uint8_t* b, uint8_t* out, const QU8AddParams& p)> add;
  Named<void (*)(size_t n, const float* x, uint8_t* q, float scale, int32_t zero_point)> quantize;
  Named<void (*)(size_t n, const uint8_t* q, float* y, float scale, int32_t zero_point)> dequantize;
  // Rows of n: out[r*n + i] = a[r*a_rs + i] * b[r*b_rs + i] requantized (QU8MulParams); a row
  // stride of 0 broadcasts that operand's row (a per-channel term on NHWC), on either side.
  Named<void (*)(size_t rows, size_t n, const uint8_t* a, size_t a_rs, const uint8_t* b, size_t b_rs, uint8_t* out,
                 const QU8MulParams& p)>
      mul_rows;
  // out[i] = table[in[i]]: a unary op in int8, its 256-entry table built at plan time.
  Named<void (*)(size_t n, const uint8_t* in, uint8_t* out, const uint8_t* table)> lookup;
  // The GEMM with a float output (a dense layer that ends a quantized network, the classifier):
  // weights packed by qu8_gemm_pack with this table's nr, kr and weight_bytes, `multiplier` being
  // the dequantization scale s_a * s_w[n]; the tile of `gemm`, and instead of requantizing
  //   acc       = bias'[n] + sum_k a[m][k] * w[n][k]   (int32, wrapping; the packing's algebra)
  //   c[m][n]   = (float)acc * scale[n]               (one conversion, one rounding: cvtdq2ps and
  //                                                    scvtf round to nearest even like the cast)
  Named<void (*)(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w, float* c,
                 size_t c_stride)>
      gemm_dequantize;
  // The table for dense layers (QuantizedDense, QuantizedDenseFloat), or null for this one. A
  // dense layer of a row or a few (a classifier at batch 1) reads each weight once, so its time
  // is the weights' bytes: a table whose weights are wider than int8 names one over int8 weights
  // with the same ISA here (dense_table()).
  const QU8Kernels* dense = nullptr;
};

inline const QU8Kernels& dense_table(const QU8Kernels& k) { return k.dense ? *k.dense : k; }

// The scalar table's lookup: a load, a dependent load and a store per byte. The SIMD tables look
// 16-byte rows up with byte shuffles (vpshufb, tbl) instead; a gather gives the same bytes however
// it is done.
void qu8_lookup__portable(size_t n, const uint8_t* in, uint8_t* out, const uint8_t* table);
// The same on AVX-512 VBMI (vpermi2b), in no table of its own: the engine puts it in the AVX-512
// family's tables where the CPU has VBMI. x86 builds only; callable only on such a CPU.
void qu8_lookup__avx512vbmi(size_t n, const uint8_t* in, uint8_t* out, const uint8_t* table);

// Drivers shared by all tables (loops over tiles and panels; no ISA code). Each runs rows [m0, m1)
// (output pixels [p0, p1)) by panels [n0, n1) of its output (kAllPanels: f32.h).
void qu8_conv_run(const QU8Kernels& k, const ConvGeometry& g, size_t grp, const uint8_t* const* indirection,
                  const void* packed_group, uint8_t* out, size_t p0, size_t p1, const QU8Requant& p, size_t n0 = 0,
                  size_t n1 = kAllPanels);
void qu8_gemm_run(const QU8Kernels& k, size_t N, size_t Kd, const uint8_t* a, size_t a_stride, const void* packed,
                  uint8_t* out, size_t out_stride, size_t m0, size_t m1, const QU8Requant& p, size_t n0 = 0,
                  size_t n1 = kAllPanels);
// The same with gemm_dequantize: out[m][n] = (float)acc * scale[n] (weights packed by
// qu8_gemm_pack with the scales as multipliers).
void qu8_gemm_dequantize_run(const QU8Kernels& k, size_t N, size_t Kd, const uint8_t* a, size_t a_stride,
                             const void* packed, float* out, size_t out_stride, size_t m0, size_t m1, size_t n0 = 0,
                             size_t n1 = kAllPanels);

// The model input, float NCHW, quantized straight into uint8 NHWC over pixels [p0, p1) of N*HW:
// the bytes of k.quantize followed by u8_nchw_to_nhwc, in one pass through an L1-sized buffer.
void qu8_quantize_nchw_to_nhwc(const QU8Kernels& k, size_t C, size_t HW, const float* in, uint8_t* out, float scale,
                               int32_t zero_point, size_t p0, size_t p1);

// The first convolution over kernel rows (conv_rows.h): the weights packed for
// conv_rows_geometry(g), the same bytes as the per-tap igemm.
void qu8_conv_rows_pack(const ConvGeometry& g, size_t nr, size_t kr, size_t weight_bytes, const int8_t* w,
                        const int32_t* bias, const float* multiplier, uint8_t a_zero_point, void* packed);

// Tables; null where the build or target lacks the ISA (the CPU check is the caller's).
const QU8Kernels* qu8_kernels_scalar();
const QU8Kernels* qu8_kernels_avx2();
// The avx2 table with int8 weights (weight_bytes 1) in its GEMM tiles: the avx2 table's dense.
const QU8Kernels* qu8_kernels_avx2_w8();
const QU8Kernels* qu8_kernels_avx512();  // AVX-512 F+BW, no VNNI
const QU8Kernels* qu8_kernels_avx512vnni();
// The avx512vnni table with 6x64 GEMM tiles instead of 8x32 (kernels/x86/qu8_gemm_avx512vnni.cpp says
// when it is faster); the same ISA and bytes, weights packed with nr = 64.
const QU8Kernels* qu8_kernels_avx512vnni_6x64();
// AMX-INT8 tiles (GEMMs) + AVX-512 (the rest). Usable only where qu8_amx_usable()
// (kernels/x86/amx_support.h) says so; that check also obtains Linux's permission for tile state.
const QU8Kernels* qu8_kernels_amx();
// The amx GEMM kernels load a tile configuration into the calling thread's tile registers on first
// use and keep it across calls (reloading only when the K tail changes). This releases it
// (TILERELEASE), so the OS no longer saves 8 KiB of tile data with the thread: call it on each
// thread that ran amx kernels when a run ends (or before other code on that thread configures
// tiles itself). Cheap, and a no-op on threads without a configuration and in builds without AMX.
void qu8_amx_release_thread();
const QU8Kernels* qu8_kernels_neon();
const QU8Kernels* qu8_kernels_neondot();
const QU8Kernels* qu8_kernels_neoni8mm();  // Armv8.6 I8MM (USMMLA), kr = 8
// AVX-VNNI (VEX vpdpbusd on ymm) GEMMs + the avx2 table's other kernels. Usable only where
// qu8_avxvnni_usable() (kernels/x86/avxvnni_support.h) says so.
const QU8Kernels* qu8_kernels_avxvnni();

}  // namespace q8::kern
