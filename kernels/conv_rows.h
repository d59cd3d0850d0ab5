// A convolution with few input channels (the first layer of a CNN on an RGB image) as an indirect
// GEMM over kernel rows, for fp32 and int8 alike. With DW == 1 and one group, the KW taps of a
// kernel row are KW * C contiguous input elements (NHWC), so each of the KH rows is one tap of
// KW * C channels: conv_rows_geometry(g) is the same convolution with KW = 1 and C = KW * C. Per
// output pixel the igemm then loads KH pointers instead of KH * KW and runs one long reduction
// per row instead of KW short ones (in int8 it also pads K to kr once per row, not once per tap).
// The reduction visits (ky, kx, c) in the order the per-tap igemm does, so fp32 keeps its bits.
//
// A row that overlaps the left or right padding is not contiguous input: each run gathers it into
// an `edges` slot (the padding value there: 0.0f, or the input zero point in int8); a row wholly
// above or below the input points at `zero` (KW * C padding values; in int8 readable for
// kQu8MaxKr - 1 more bytes, which the int8 igemm may read). The pointers are built once per plan
// (conv_rows_indirection_init), the edge slots filled by each run for its pixels
// (conv_rows_gather_edges). The weights are packed for conv_rows_geometry(g) by
// f32_conv_rows_pack or qu8_conv_rows_pack; the runs are f32_conv_run and qu8_conv_run.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/f32.h"

namespace q8::kern {

// Whether a convolution runs over kernel rows: one group, at most kConvRowsMaxChannels input
// channels, DW == 1 and KW > 1. Measured on Zen 5, one thread, 224x224x3 input, kernel rows
// against the per-tap igemm:
//   int8 (avx512vnni, best of 30): 7x7 s2 -> 64 0.50 / 0.63 ms, 11x11 s4 0.21 / 0.35 ms, 5x5 s2
//     0.34 / 0.40 ms, 3x3 s2 -> 32 0.09 / 0.10 ms; with C = 4 (no padding to save) 5x5 s1 equal.
//     A GEMM over each pixel's gathered receptive field (K = 147, padded once) lost to both at
//     3x3 and to kernel rows everywhere: its gather cost a third of its GEMM.
//   fp32 (avx512, 6x32 and 12x16 tiles, best of 30): 7x7 s2 -> 64 1.08 / 1.18 ms, 11x11 s4 -> 64
//     0.63 / 0.70 ms, 3x3 s2 -> 32 0.112 / 0.120 ms, 3x3 s2 -> 16 0.079 / 0.095 ms.
constexpr size_t kConvRowsMaxChannels = 3;
bool conv_runs_kernel_rows(const ConvGeometry& g);

ConvGeometry conv_rows_geometry(const ConvGeometry& g);  // KW = 1, DW = 1, C = KW * C

// Elements of the `edges` buffer for T = float or uint8_t.
template <class T>
size_t conv_rows_edge_elements(const ConvGeometry& g);
// The indirection of conv_rows_geometry(g) ([pixel][KH] pointers) into `input`, `zero` and
// `edges`, whose addresses it keeps.
template <class T>
void conv_rows_indirection_init(const ConvGeometry& g, const T* input, const T* zero, const T* edges,
                                const T** indirection);
// Fills the edge slots of output pixels [p0, p1) from `input`, `pad` in the padding (disjoint
// ranges fill disjoint slots).
template <class T>
void conv_rows_gather_edges(const ConvGeometry& g, const T* input, T pad, T* edges, size_t p0, size_t p1);

}  // namespace q8::kern
