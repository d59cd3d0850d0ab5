// fp32 kernels for the ops CNNs rarely put on a hot path: layout changes at the graph's edges,
// general broadcasting, matrix products of two activations, a standalone BatchNormalization.
// Scalar and portable; pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/f32.h"

namespace q8::kern {

// NCHW <-> NHWC for pixels [p0, p1) of the N*HW pixels (p = n*HW + hw), so one image splits
// over threads too; float and uint8 tensors.
void f32_nchw_to_nhwc(size_t C, size_t HW, const float* in, float* out, size_t p0, size_t p1);
void f32_nhwc_to_nchw(size_t C, size_t HW, const float* in, float* out, size_t p0, size_t p1);
void u8_nchw_to_nhwc(size_t C, size_t HW, const uint8_t* in, uint8_t* out, size_t p0, size_t p1);
void u8_nhwc_to_nchw(size_t C, size_t HW, const uint8_t* in, uint8_t* out, size_t p0, size_t p1);

// Constant padding (ONNX Pad, mode constant): out has out_dims = in_dims + begin + end per axis
// (negative begin/end crop); elements with no source in `in` are `value`. rank <= 8, C order.
void f32_pad(size_t rank, const int64_t* in_dims, const int64_t* begin, const int64_t* out_dims, const float* in,
             float value, float* out);
void u8_pad(size_t rank, const int64_t* in_dims, const int64_t* begin, const int64_t* out_dims, const uint8_t* in,
            uint8_t value, uint8_t* out);

// out = clamp(a + b_scale * b) with numpy broadcasting. Shapes are given at the output's rank: a_dims and
// b_dims hold 1 on broadcast axes. rank <= 8.
void f32_broadcast_add(size_t rank, const int64_t* out_dims, const int64_t* a_dims, const float* a,
                       const int64_t* b_dims, const float* b, float b_scale, float* out, float lo, float hi);

// out = clamp(a op b) with numpy broadcasting, shapes given as for f32_broadcast_add. Add, Sub,
// Mul and Div as the tables compute them; Pow: b == 2 gives a * a and b == 3 gives a * a * a
// (as ONNX Runtime does for those exponents), any other b std::pow(a, b) (one libm call on every
// table, so every table gives the same bits on one machine).
void f32_broadcast_binary(BinaryOp op, size_t rank, const int64_t* out_dims, const int64_t* a_dims, const float* a,
                          const int64_t* b_dims, const float* b, float* out, float lo, float hi);

// Mean over the axes marked in `reduced` (rank <= 8, C order): out has in_dims with the reduced
// axes set to 1. Each output sums its inputs from 0.0f in row-major order of the input, then
// divides by their count.
void f32_reduce_mean(size_t rank, const int64_t* in_dims, const bool* reduced, const float* in, float* out);

// exp of a float: the Exp activation's scalar reference (kernels/f32_math.h, within 2 ulps; the
// same bits on every CPU and compiler, unlike libm's). log: computed in double by a fixed
// polynomial, correctly rounded in all but rare cases.
float portable_expf(float x);
float portable_logf(float x);

// Softmax (log_softmax: LogSoftmax) along an axis of `len` elements `inner` apart, for the
// outer indices [o0, o1) of a C-order tensor [outer][len][inner]. Per (outer, inner) lane:
// m = max (a NaN wins); s = 0.0f; s = s + exp(x - m) in axis order; out = exp(x - m) / s, or
// (x - m) - log(s). exp is the Exp activation of table k (the same bits on every table, so the
// same results); log is portable_logf.
void f32_softmax(const F32Kernels& k, size_t len, size_t inner, const float* in, float* out, size_t o0, size_t o1,
                 bool log_softmax);

// LayerNormalization over rows of n elements, rows [r0, r1): mean = (sum x) / n; var = (sum
// (x - mean)^2) / n, each sum over 8 partial sums from 0.0f (element i into partial i % 8, in
// order) added as ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7)); inv = 1 / sqrt(var + eps);
// out = (x - mean) * inv * scale[i] + bias[i] (bias may be null). mean_out and inv_std_out, when
// not null, receive each row's mean and inv.
void f32_layer_norm(size_t n, const float* in, const float* scale, const float* bias, float eps, float* out,
                    float* mean_out, float* inv_std_out, size_t r0, size_t r1);

// out[b][M][N] = alpha * A[b] x B[b] (+ nothing): batched row-major product where the batch
// strides of A and B may be 0 (broadcast). Element (m, k) of A is a[m*a_rs + k*a_cs].
struct MatMulGeometry {
  size_t batch = 1, M = 0, N = 0, K = 0;
  size_t a_batch_stride = 0, a_rs = 0, a_cs = 1;
  size_t b_batch_stride = 0, b_rs = 0, b_cs = 1;
  float alpha = 1.f;
};
void f32_matmul_strided(const MatMulGeometry& g, const float* a, const float* b, float* out);

// Concatenation as rows: output row r is, for each input i in order, input i's row r (in_row[i]
// bytes), for rows [r0, r1). Any element type; covers every axis (a row is everything from the
// axis on) and NHWC tensors joined along channels (a row is one pixel's channels).
void concat_rows(size_t r0, size_t r1, size_t inputs, const uint8_t* const* in, const size_t* in_row, uint8_t* out,
                 size_t out_row);

// A strided copy, for Slice and Transpose on any element type: element i of `out` (C order, dims
// out_dims) is in[sum_k i_k * in_strides[k]] (strides in elements, negative for reversed steps;
// `in` points at the element that out[0] copies). Runs output rows [r0, r1), a row being the
// last axis; rank <= 8.
void strided_copy(size_t rank, const int64_t* out_dims, const int64_t* in_strides, size_t elem, const uint8_t* in,
                  uint8_t* out, size_t r0, size_t r1);

// ShuffleNet's channel shuffle of `group` groups of `per_group` channels: output channel
// i * group + j is input channel j * per_group + i. A channel is `bytes` contiguous bytes (one
// element of an NHWC pixel); each of the blocks [o0, o1) of group * per_group channels (the
// pixels) is shuffled alike.
void channel_shuffle(size_t group, size_t per_group, size_t bytes, const uint8_t* in, uint8_t* out, size_t o0,
                     size_t o1);

// out = in * scale[c] + shift[c] (one rounding each, never fused) for channel c of `outer` blocks of
// C channels of `inner` values: C-order data, or with inner = 1 NHWC pixels, the same bytes.
void f32_channel_affine(size_t outer, size_t C, size_t inner, const float* in, const float* scale, const float* shift,
                        float* out);

}  // namespace q8::kern
