// ConvTranspose (fp32) on NHWC tensors: weights packed once per tap as [Cg][Kg] blocks after
// which the bias follows; each output pixel gathers the taps whose input pixel exists
// (kern::f32_conv_transpose_nhwc), in a fixed order, so threads and ISAs give the same bits.
#include "runtime/ops/ops.h"

#include <algorithm>

#include "ir/shape_inference.h"
#include "kernels/upsample.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Shape;

namespace {

// The geometry as far as the weights fix it (channels, kernel, groups).
kern::ConvTransposeGeometry weight_geometry(const Graph& g, const Node& n) {
  const ConstTensor* w = const_input(g, n, 1);
  kern::ConvTransposeGeometry c;
  c.groups = static_cast<size_t>(n.attr_int("group", 1));
  c.C = w->dims[0], c.K = w->dims[1] * c.groups, c.KH = w->dims[2], c.KW = w->dims[3];
  return c;
}

kern::ConvTransposeGeometry geometry(const Graph& g, const Node& n) {
  kern::ConvTransposeGeometry c = weight_geometry(g, n);
  const Shape& xs = shape_of(g, n.inputs[0]);
  const ir::ConvTransposeWindow win = ir::conv_transpose_window(g, n, xs, c.KH, c.KW);
  const auto st = n.attr_ints("strides", {1, 1}), dl = n.attr_ints("dilations", {1, 1});
  c.N = xs[0], c.IH = xs[2], c.IW = xs[3], c.OH = win.oh, c.OW = win.ow;
  c.SH = st[0], c.SW = st[1], c.DH = dl[0], c.DW = dl[1], c.PT = win.pt, c.PL = win.pl;
  return c;
}

AlignedBuffer pack_conv_transpose(const Graph& g, const Node& n, const Dispatch&) {
  const kern::ConvTransposeGeometry c = weight_geometry(g, n);
  const size_t wn = c.C * c.Kg() * c.KH * c.KW;
  AlignedBuffer buf((wn + c.K) * sizeof(float));
  float* p = buf.as<float>();
  kern::f32_conv_transpose_pack(c, const_input(g, n, 1)->data<float>(), p);
  const ConstTensor* b = const_input(g, n, 2);
  if (b)
    std::copy(b->data<float>(), b->data<float>() + c.K, p + wn);
  else
    std::fill(p + wn, p + wn + c.K, 0.f);
  return buf;
}

void plan_conv_transpose(Plan::Builder& pb, size_t i, const Node& n) {
  const kern::ConvTransposeGeometry c = geometry(pb.g, n);
  const float* w = pb.w.per_node[i].as<float>();
  const float* bias = w + c.C * c.Kg() * c.KH * c.KW;
  const int x = pb.get(n.inputs[0], Layout::NHWC);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::NHWC, y);
  Step& s = pb.add_step(n.name, c.N * c.OH * c.OW, 1, {x}, {y});
  s.fn = [&A = pb.addresses(), c, w, bias, x, y](size_t p0, size_t p1) {
    kern::f32_conv_transpose_nhwc(c, A.f32(x), w, bias, A.f32(y), p0, p1);
  };
}

std::string conv_transpose_kernel(const Graph&, const Node&, const Dispatch&) { return "f32_conv_transpose_nhwc"; }

int64_t conv_transpose_macs(const Graph& g, const Node& n) {
  const kern::ConvTransposeGeometry c = geometry(g, n);
  return static_cast<int64_t>(c.N * c.IH * c.IW * c.C * c.Kg() * c.KH * c.KW);
}

}  // namespace

const OpRuntime kConvTransposeRuntime = {pack_conv_transpose, plan_conv_transpose, conv_transpose_kernel,
                                         conv_transpose_macs};

}  // namespace q8::rt
