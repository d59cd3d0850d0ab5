// Transposed convolution (ONNX ConvTranspose) as ordinary convolutions, one per output phase, on
// the igemm micro-kernels of a table, unchanged: fp32 (F32ConvKernel) and int8 (QU8Kernels: uint8
// activations, int8 weights per output channel).
//
// Input pixel iy and tap ky reach output row oy = iy*SH + ky*DH - PT, so output row oy gathers
// the taps with (oy + PT - ky*DH) divisible by SH, reading input row (oy + PT - ky*DH) / SH
// when that row exists. Whether ky divides depends only on oy mod SH (PT fixed): the rows of one
// phase py = oy mod SH share one set of taps, ky = first + i*step (step = SH / gcd(SH, DH)).
// The same holds for columns. So each phase (py, px) is an ordinary convolution over its own
// taps: packed like a Conv's (f32.h, qu8.h), with an indirection row per output pixel whose taps
// outside the input point at the zero row (zeros in fp32, the zero point in int8, which adds
// (z_a - z_a) * w = 0 after bias' = bias - z_a * sum w over the phase's taps). A phase that no
// tap reaches (a kernel smaller than the stride) gets one tap of zero weights reading the zero
// row: its output is the bias (requantized in int8). Every tap computed is one that contributes,
// so k = 2, s = 2 costs one tap per output pixel, not four.
//
// In fp32 each output is then exactly the convolution contract of f32.h over its phase's taps:
// acc = bias; for each tap of the phase in (ky, kx) order, for each input channel in order,
// acc = fma(x, w, acc), a tap outside the input reading zeros; out = clamp(acc). Every table
// performs these operations, so every ISA and thread split gives the same bits.
//
// The weights are packed once per residue (ry, rx) = ((py + PT) mod SH, (px + PL) mod SW), which
// fixes the taps and depends on neither the pads nor the input size (auto_pad and output_shape
// make the pads depend on it): phase (py, px) runs residue ((py + PT) mod SH, (px + PL) mod SW).
// There are SH * SW residues, each packed at least one tap deep, so the engine takes this path
// for small strides only (ir::conv_transpose_phase_strides).
//
// The output pixels are numbered phase by phase, the phases in the order of the residues they run
// (so each phase's packing follows the previous one's), then image, row, column of the phase: the
// igemm writes pixel v of that order at row v of a scratch tensor [pixels][K], and the run copies
// its rows to their NHWC places. A geometry with one phase (SH = SW = 1) writes the output
// directly.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/f32.h"
#include "kernels/qu8.h"

namespace q8::kern {

// NHWC in and out. Input pixel (ih, iw) and tap (kh, kw) reach output pixel
// (ih*SH + kh*DH - PT, iw*SW + kw*DW - PL).
struct ConvTransposeGeometry {
  size_t N = 0, C = 0, IH = 0, IW = 0, K = 0, OH = 0, OW = 0;
  size_t KH = 1, KW = 1, SH = 1, SW = 1, DH = 1, DW = 1, PT = 0, PL = 0, groups = 1;
  size_t Cg() const { return C / groups; }
  size_t Kg() const { return K / groups; }
};

// The taps of one phase along one axis: k = first + i*step for i < taps (taps may be 0), and
// the phase's output extent (output rows p, p+S, p+2S, ... below O).
struct ConvTransposePhaseAxis {
  size_t first = 0, step = 1, taps = 0, out = 0;
};
ConvTransposePhaseAxis conv_transpose_phase_axis(size_t phase, size_t S, size_t D, size_t P, size_t K, size_t O);

// Phase ph = py * SW + px of SH * SW; its taps (at least 1: see above) and output pixels.
size_t conv_transpose_phases(const ConvTransposeGeometry& g);
size_t conv_transpose_phase_taps(const ConvTransposeGeometry& g, size_t ph);
size_t conv_transpose_phase_pixels(const ConvTransposeGeometry& g, size_t ph);

// Indirection: for each phase (in the order above), for each group, [phase pixel][phase tap]
// pointers into `input` (already offset to the group's channels) or to `zero` (a zero row of C
// elements, with the slack the table's kernels read past it).
size_t conv_transpose_indirection_size(const ConvTransposeGeometry& g);  // pointers
void conv_transpose_indirection_init(const ConvTransposeGeometry& g, const uint8_t* input, const uint8_t* zero,
                                     const uint8_t** indirection);
void conv_transpose_indirection_init(const ConvTransposeGeometry& g, const float* input, const float* zero,
                                     const float** indirection);

// --- fp32 ---------------------------------------------------------------------------------
// Packing: for each residue r = ry * SW + rx, for each group, the panels of f32_conv_pack over
// the residue's taps (tap-major in (ky, kx) order). Reads only C, K, groups, KH, KW, SH, SW, DH,
// DW of g. w: ONNX's [C][Kg][KH][KW]; bias: K floats or null.
size_t f32_conv_transpose_packed_floats(const ConvTransposeGeometry& g, size_t nr);
void f32_conv_transpose_pack(const ConvTransposeGeometry& g, size_t nr, const float* w, const float* bias,
                             float* packed);
// Output pixels [p0, p1) of the order above, all groups, outputs clamped to [out_min, out_max].
// With more than one phase, the igemm writes rows [p0, p1) of `scratch` (N*OH*OW rows of K
// floats) and the run then copies those rows to `out` (NHWC); with one phase, scratch is unused
// (may be null) and the igemm writes `out`. Ranges that do not overlap may run at once
// (threads): each writes only its own rows of both.
void f32_conv_transpose_run(const F32ConvKernel& k, const ConvTransposeGeometry& g, const float* const* indirection,
                            const float* packed, float* scratch, float* out, size_t p0, size_t p1, float out_min,
                            float out_max);

// --- int8 ---------------------------------------------------------------------------------
// Packing as in fp32, with the panels of qu8_conv_pack. w: int8, centred; bias: K int32 (or
// null); multiplier: K floats s_in * s_w[c] / s_out.
size_t qu8_conv_transpose_packed_bytes(const ConvTransposeGeometry& g, size_t nr, size_t kr, size_t weight_bytes);
void qu8_conv_transpose_pack(const ConvTransposeGeometry& g, size_t nr, size_t kr, size_t weight_bytes, const int8_t* w,
                             const int32_t* bias, const float* multiplier, uint8_t a_zero_point, void* packed);
// As f32_conv_transpose_run, in bytes; the zero row of the indirection holds z_a and is readable
// kQu8MaxKr - 1 bytes further. The kernels write output channels only, so scratch needs no slack.
void qu8_conv_transpose_run(const QU8Kernels& k, const ConvTransposeGeometry& g, const uint8_t* const* indirection,
                            const void* packed, uint8_t* scratch, uint8_t* out, size_t p0, size_t p1,
                            const QU8Requant& p);

}  // namespace q8::kern
