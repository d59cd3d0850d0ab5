// Transposed convolution (ONNX ConvTranspose) in int8: uint8 NHWC activations, int8 weights per
// output channel, the igemm micro-kernels of a QU8Kernels table, unchanged.
//
// Input pixel iy and tap ky reach output row oy = iy*SH + ky*DH - PT, so output row oy gathers
// the taps with (oy + PT - ky*DH) divisible by SH, reading input row (oy + PT - ky*DH) / SH
// when that row exists. Whether ky divides depends only on oy mod SH (PT fixed): the rows of one
// phase py = oy mod SH share one set of taps, ky = first + i*step (step = SH / gcd(SH, DH)).
// The same holds for columns. So each phase (py, px) is an ordinary convolution over its own
// taps: packed like a Conv's (qu8.h), with an indirection row per output pixel whose taps
// outside the input point at the zero-point row (contributing (z_a - z_a) * w = 0 after
// bias' = bias - z_a * sum w over the phase's taps). A phase that no tap reaches (a kernel
// smaller than the stride) gets one tap of zero weights reading the zero row: its output is the
// requantized bias. Every tap computed is one that contributes, so k = 2, s = 2 costs one tap
// per output pixel, not four.
//
// The weights are packed once per residue (ry, rx) = ((py + PT) mod SH, (px + PL) mod SW), which
// fixes the taps and depends on neither the pads nor the input size (auto_pad and output_shape
// make the pads depend on it): phase (py, px) runs residue ((py + PT) mod SH, (px + PL) mod SW).
//
// The output pixels are numbered phase by phase, the phases in the order of the residues they run
// (so each phase's packing follows the previous one's), then image, row, column of the phase: the
// igemm writes pixel v of that order at row v of a scratch tensor [pixels][K], and the run copies
// its rows to their NHWC places. A geometry with one phase (SH = SW = 1) writes the output
// directly.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/qu8.h"
#include "kernels/upsample.h"  // ConvTransposeGeometry

namespace q8::kern {

// The taps of one phase along one axis: k = first + i*step for i < taps (taps may be 0), and
// the phase's output extent (output rows p, p+S, p+2S, ... below O).
struct ConvTransposePhaseAxis {
  size_t first = 0, step = 1, taps = 0, out = 0;
};
ConvTransposePhaseAxis conv_transpose_phase_axis(size_t phase, size_t S, size_t D, size_t P, size_t K, size_t O);

// Phase ph = py * SW + px of SH * SW; its taps (at least 1: see above) and output pixels.
size_t qu8_conv_transpose_phases(const ConvTransposeGeometry& g);
size_t qu8_conv_transpose_phase_taps(const ConvTransposeGeometry& g, size_t ph);
size_t qu8_conv_transpose_phase_pixels(const ConvTransposeGeometry& g, size_t ph);

// Packing: for each residue r = ry * SW + rx, for each group, the panels of qu8_conv_pack over
// the residue's taps (tap-major in (ky, kx) order). Reads only C, K, groups, KH, KW, SH, SW, DH,
// DW of g. w: ONNX's [C][Kg][KH][KW] int8, centred; bias: K int32 (or null); multiplier: K
// floats s_in * s_w[c] / s_out.
size_t qu8_conv_transpose_packed_bytes(const ConvTransposeGeometry& g, size_t nr, size_t kr, size_t weight_bytes);
void qu8_conv_transpose_pack(const ConvTransposeGeometry& g, size_t nr, size_t kr, size_t weight_bytes, const int8_t* w,
                             const int32_t* bias, const float* multiplier, uint8_t a_zero_point, void* packed);

// Indirection: for each phase (in the order above), for each group, [phase pixel][phase tap]
// pointers into `input` (already offset to the group's channels) or to `zero` (a row of C bytes
// equal to z_a, readable kQu8MaxKr - 1 bytes further).
size_t qu8_conv_transpose_indirection_size(const ConvTransposeGeometry& g);  // pointers
void qu8_conv_transpose_indirection_init(const ConvTransposeGeometry& g, const uint8_t* input, const uint8_t* zero,
                                         const uint8_t** indirection);

// Output pixels [p0, p1) of the order above, all groups. With more than one phase, the
// igemm writes rows [p0, p1) of `scratch` (N*OH*OW rows of K bytes; the kernels write output
// channels only, so it needs no slack) and the run then copies those rows to `out` (NHWC); with
// one phase, scratch is unused (may be null) and the igemm writes `out`. Ranges that do not
// overlap may run at once (threads): each writes only its own rows of both.
void qu8_conv_transpose_run(const QU8Kernels& k, const ConvTransposeGeometry& g, const uint8_t* const* indirection,
                            const void* packed, uint8_t* scratch, uint8_t* out, size_t p0, size_t p1,
                            const QU8Requant& p);

}  // namespace q8::kern
