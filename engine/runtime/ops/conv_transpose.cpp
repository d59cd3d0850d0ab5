// ConvTranspose (fp32) on NHWC tensors: weights packed once per tap as [Cg][Kg] blocks after
// which the bias follows; each output pixel gathers the taps whose input pixel exists
// (kern::f32_conv_transpose_nhwc), in a fixed order, so threads and ISAs give the same bits.
// QuantizedConvTranspose (uint8 activations, int8 weights): one indirect GEMM per output phase
// on the table's igemm kernels (kern::qu8_conv_transpose_run).
#include "runtime/ops/ops.h"

#include <algorithm>
#include <cstring>

#include "ir/shape_inference.h"
#include "kernels/qu8_conv_transpose.h"
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

AlignedBuffer pack_qconv_transpose(const Graph& g, const Node& n, const Dispatch& d) {
  const kern::QU8Kernels& q = *d.qu8;
  // The packing depends on the weights, strides and dilations only (not on the input's size).
  kern::ConvTransposeGeometry c = weight_geometry(g, n);
  const auto st = n.attr_ints("strides", {1, 1}), dl = n.attr_ints("dilations", {1, 1});
  c.SH = st[0], c.SW = st[1], c.DH = dl[0], c.DW = dl[1];
  const ConstTensor* b = const_input(g, n, 2);
  const std::vector<float> m = requant_multipliers(g, n);
  const uint8_t za = static_cast<uint8_t>(g.values[n.inputs[0]].zero_point);
  AlignedBuffer buf(kern::qu8_conv_transpose_packed_bytes(c, q.nr, q.kr, q.weight_bytes));
  kern::qu8_conv_transpose_pack(c, q.nr, q.kr, q.weight_bytes, const_input(g, n, 1)->data<int8_t>(),
                                b ? b->data<int32_t>() : nullptr, m.data(), za, buf.data());
  return buf;
}

void plan_qconv_transpose(Plan::Builder& pb, size_t i, const Node& n) {
  const Graph& g = pb.g;
  const kern::ConvTransposeGeometry c = geometry(g, n);
  const kern::QU8Requant rq = requant_of(g, n);
  const int x = pb.get(n.inputs[0], Layout::NHWC);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::NHWC, y);
  // With several phases the igemm writes pixels phase by phase into this arena buffer, and each
  // step range copies its own rows to the output (qu8_conv_transpose.h).
  const size_t phases = kern::qu8_conv_transpose_phases(c);
  const int scratch = phases > 1 ? pb.new_buf(pb.bytes_of(n.outputs[0])) : -1;
  const void* packed = pb.w.per_node[i].data();
  // Taps outside the input read the input zero point: (z_a - z_a) * w = 0 (qu8.h's algebra).
  AlignedBuffer& owned = pb.own(c.C + kBufferSlack);
  std::memset(owned.data(), g.values[n.inputs[0]].zero_point, c.C + kBufferSlack);
  const uint8_t* zero = owned.data();
  const kern::QU8Kernels* k = pb.d.qu8;
  Step& s = pb.add_step(n.name, c.N * c.OH * c.OW, k->mr, {x}, {y, scratch});
  Step* sp = &s;
  // Counted as if every output pixel read every tap: a bound on the phases' indirection.
  kern::ConvGeometry bound;
  bound.N = c.N, bound.OH = c.OH, bound.OW = c.OW, bound.KH = c.KH, bound.KW = c.KW, bound.groups = c.groups;
  pb.count_indirection(bound);
  s.bind = [&A = pb.addresses(), sp, c, x, zero] {
    sp->indirection.resize(kern::qu8_conv_transpose_indirection_size(c));
    kern::qu8_conv_transpose_indirection_init(c, A.u8(x), zero,
                                              reinterpret_cast<const uint8_t**>(sp->indirection.data()));
  };
  s.fn = [&A = pb.addresses(), sp, k, c, y, scratch, packed, rq](size_t p0, size_t p1) {
    kern::qu8_conv_transpose_run(*k, c, reinterpret_cast<const uint8_t* const*>(sp->indirection.data()), packed,
                                 scratch >= 0 ? A.u8(scratch) : nullptr, A.u8(y), p0, p1, rq);
  };
}

std::string qconv_transpose_kernel(const Graph&, const Node&, const Dispatch& d) { return d.qu8->igemm.name; }

// The multiply-accumulates actually computed: each output pixel's phase taps (qu8_conv_transpose.h).
int64_t qconv_transpose_macs(const Graph& g, const Node& n) {
  const kern::ConvTransposeGeometry c = geometry(g, n);
  int64_t macs = 0;
  for (size_t ph = 0; ph < kern::qu8_conv_transpose_phases(c); ++ph)
    macs += static_cast<int64_t>(kern::qu8_conv_transpose_phase_pixels(c, ph) *
                                 kern::qu8_conv_transpose_phase_taps(c, ph) * c.Cg() * c.K);
  return macs;
}

}  // namespace

const OpRuntime kQuantizedConvTransposeRuntime = {pack_qconv_transpose, plan_qconv_transpose, qconv_transpose_kernel,
                                                  qconv_transpose_macs};

const OpRuntime kConvTransposeRuntime = {pack_conv_transpose, plan_conv_transpose, conv_transpose_kernel,
                                         conv_transpose_macs};

}  // namespace q8::rt
