// QuantizedConvFloat: a 1x1, stride-1, unpadded, ungrouped convolution on uint8 activations with a
// float32 result (the output Conv of a UNet or a detection head). In NHWC it is the GEMM
// [pixels][C] x [C][K]: the table's gemm_dequantize over the pixels, the weights packed with the
// table's GEMM packing and the dequantization scales s_a * s_w[k] as multipliers, so
//   y[p][k] = (float)(bias'[k] + sum_c a[p][c] * w[k][c]) * (s_a * s_w[k]),
//   bias'[k] = bias[k] - z_a * sum_c w[k][c]   (qu8_gemm_pack folds the zero point)
// which is the exact int32 sum of (a - z_a) * w + bias, dequantized once. The result is defined in
// NHWC; the plan converts it to NCHW where the model's output (or an fp32 reader) wants that.
#include "kernels/qu8.h"
#include "runtime/ops/ops.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;

namespace {

void check_geometry(const Graph& g, const Node& n) {
  const kern::ConvGeometry c = conv_geometry(g, n);
  if (c.KH != 1 || c.KW != 1 || c.SH != 1 || c.SW != 1 || c.PT != 0 || c.PL != 0 || c.PB != 0 || c.PR != 0 ||
      c.groups != 1)
    fail(g, n, "QuantizedConvFloat takes only a 1x1, stride-1, unpadded, ungrouped convolution");
}

void plan_qconv_float(Plan::Builder& pb, size_t i, const Node& n) {
  const Graph& g = pb.g;
  check_geometry(g, n);
  const kern::ConvGeometry c = conv_geometry(g, n);
  // In NHWC the input is [pixels][C] and the output [pixels][K] (threads split them by
  // OutputGrid; an output's bytes do not depend on the split).
  plan_gemm_dequantize(pb, i, n, c.out_pixels(), c.K, c.C, Layout::NHWC, *pb.d.qu8);
}

AlignedBuffer pack_qconv_float(const Graph& g, const Node& n, const Dispatch& d) {
  return pack_gemm_dequantize(g, n, *d.qu8);
}

std::string qconv_float_kernel(const Graph&, const Node&, const Dispatch& d) { return d.qu8->gemm_dequantize.name; }

}  // namespace

const OpRuntime kQuantizedConvFloatRuntime = {pack_qconv_float, plan_qconv_float, qconv_float_kernel, conv_macs};

}  // namespace q8::rt
