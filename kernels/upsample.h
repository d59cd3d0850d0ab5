// Resize (nearest, bilinear) and transposed convolution by gathering on NHWC tensors: the ops that
// grow the spatial axes in UNet/YOLO-style decoders (ConvTranspose with strides up to 8 runs as
// convolutions instead: conv_transpose.h). One portable implementation (compiled with
// -ffp-contract=off) that every ISA table shares, so every path gives the same bits; pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/conv_transpose.h"  // ConvTransposeGeometry

namespace q8::kern {

// ONNX Resize's coordinate_transformation_mode and nearest_mode (the supported ones).
enum class ResizeCoord : uint8_t { HalfPixel, PytorchHalfPixel, AlignCorners, Asymmetric };
enum class ResizeRound : uint8_t { RoundPreferFloor, RoundPreferCeil, Floor, Ceil };

// The source coordinate of output index o on an axis of in_len resized at `scale` to `resized`
// (in_len * scale, unrounded, when scales are given: align_corners divides by it), in float.
struct ResizeAxis {
  size_t in_len = 1, out_len = 1;
  float scale = 1.f, resized = 1.f;
};
float resize_source_coord(ResizeCoord mode, const ResizeAxis& a, size_t o);

// Nearest: idx[o] is the input index output index o copies, for o in [0, out_len).
void resize_nearest_index(ResizeCoord mode, ResizeRound round, const ResizeAxis& a, int32_t* idx);

// Linear: output index o reads input indices lo[o] and hi[o] with weights w_lo[o] and w_hi[o].
struct LinearTaps {
  int32_t* lo;
  int32_t* hi;
  float* w_lo;
  float* w_hi;
};
void resize_linear_taps(ResizeCoord mode, const ResizeAxis& a, const LinearTaps& t);

struct ResizeGeometry {
  size_t N = 0, IH = 0, IW = 0, OH = 0, OW = 0;
};

// Nearest-neighbour resize of NHWC pixels of pixel_bytes bytes (C elements of any type: fp32 and
// uint8 alike): output pixel (n, oh, ow) is input pixel (n, iy[oh], ix[ow]). Output pixels
// [p0, p1) of the N*OH*OW.
void resize_nearest_nhwc(const ResizeGeometry& g, size_t pixel_bytes, const int32_t* iy, const int32_t* ix,
                         const uint8_t* in, uint8_t* out, size_t p0, size_t p1);

// Bilinear resize of fp32 NHWC tensors with C channels: out = (wy_lo*wx_lo)*x[lo][lo] +
// (wy_lo*wx_hi)*x[lo][hi] + (wy_hi*wx_lo)*x[hi][lo] + (wy_hi*wx_hi)*x[hi][hi], summed left to right.
// Output pixels [p0, p1).
void f32_resize_bilinear_nhwc(const ResizeGeometry& g, size_t C, const LinearTaps& ty, const LinearTaps& tx,
                              const float* in, float* out, size_t p0, size_t p1);

// ConvTranspose by gathering, for the strides past 8 that the engine does not give the phase
// decomposition of conv_transpose.h (ir::conv_transpose_phase_strides). Weights packed as [groups][KH][KW][Cg][Kg]
// (f32_conv_transpose_gather_pack; w: ONNX's [C][Kg][KH][KW], C*Kg*KH*KW floats). Output pixels
// [p0, p1) of the N*OH*OW: each starts at its bias (0 without one) and adds, tap by tap in
// (kh, kw) order and channel by channel, input * weight (a multiply, then an add) for every tap
// whose input pixel exists. The fixed order makes the result independent of the ISA and of the
// thread split.
void f32_conv_transpose_gather_pack(const ConvTransposeGeometry& g, const float* w, float* packed);
void f32_conv_transpose_gather_nhwc(const ConvTransposeGeometry& g, const float* x, const float* packed,
                                    const float* bias, float* y, size_t p0, size_t p1);

}  // namespace q8::kern
