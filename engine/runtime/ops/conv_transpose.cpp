// ConvTranspose on NHWC tensors, as one indirect GEMM per output phase on the table's igemm
// kernels (kernels/conv_transpose.h): fp32 (kern::f32_conv_transpose_run) and
// QuantizedConvTranspose, uint8 activations and int8 weights (kern::qu8_conv_transpose_run).
// fp32 strides past ir::kConvTransposeMaxPhaseStride gather instead
// (kern::f32_conv_transpose_gather_nhwc).
#include "runtime/ops/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ir/shape_inference.h"
#include "kernels/conv_transpose.h"
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

// Counted as if every output pixel read every tap: a bound on the phases' indirection.
kern::ConvGeometry indirection_bound(const kern::ConvTransposeGeometry& c) {
  kern::ConvGeometry bound;
  bound.N = c.N, bound.OH = c.OH, bound.OW = c.OW, bound.KH = c.KH, bound.KW = c.KW, bound.groups = c.groups;
  return bound;
}

// The geometry whose packing depends on the weights, strides and dilations only (not on the
// input's size, which may be unknown when the weights are packed).
kern::ConvTransposeGeometry packing_geometry(const Graph& g, const Node& n) {
  kern::ConvTransposeGeometry c = weight_geometry(g, n);
  const auto st = n.attr_ints("strides", {1, 1}), dl = n.attr_ints("dilations", {1, 1});
  c.SH = st[0], c.SW = st[1], c.DH = dl[0], c.DW = dl[1];
  return c;
}

AlignedBuffer pack_conv_transpose(const Graph& g, const Node& n, const Dispatch& d) {
  const ConstTensor* b = const_input(g, n, 2);
  const float* w = const_input(g, n, 1)->data<float>();
  const float* bias = b ? b->data<float>() : nullptr;
  if (ir::conv_transpose_phase_strides(n)) {
    const kern::ConvTransposeGeometry c = packing_geometry(g, n);
    const size_t nr = kern::f32_conv_kernel_for(*d.f32, c.Kg()).nr;
    AlignedBuffer buf(kern::f32_conv_transpose_packed_floats(c, nr) * sizeof(float));
    kern::f32_conv_transpose_pack(c, nr, w, bias, buf.as<float>());
    return buf;
  }
  const kern::ConvTransposeGeometry c = weight_geometry(g, n);
  const size_t wn = c.C * c.Kg() * c.KH * c.KW;
  AlignedBuffer buf((wn + c.K) * sizeof(float));
  float* p = buf.as<float>();
  kern::f32_conv_transpose_gather_pack(c, w, p);
  if (bias)
    std::copy(bias, bias + c.K, p + wn);
  else
    std::fill(p + wn, p + wn + c.K, 0.f);
  return buf;
}

void plan_conv_transpose(Plan::Builder& pb, size_t i, const Node& n) {
  const kern::ConvTransposeGeometry c = geometry(pb.g, n);
  const Activation act = activation_of(n);
  const int x = pb.get(n.inputs[0], Layout::NHWC);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::NHWC, y);
  const float* packed = pb.w.per_node[i].as<float>();
  if (!ir::conv_transpose_phase_strides(n)) {
    const float* bias = packed + c.C * c.Kg() * c.KH * c.KW;
    Step& s = pb.add_step(n.name, c.N * c.OH * c.OW, 1, {x}, {y});
    s.fn = [&A = pb.addresses(), c, packed, bias, x, y, act](size_t p0, size_t p1) {
      kern::f32_conv_transpose_gather_nhwc(c, A.f32(x), packed, bias, A.f32(y), p0, p1);
      if (act.lo > -INFINITY || act.hi < INFINITY)
        for (float* v = A.f32(y) + p0 * c.K; v < A.f32(y) + p1 * c.K; ++v) *v = std::min(std::max(*v, act.lo), act.hi);
    };
    return;
  }
  const kern::F32ConvKernel* k = &kern::f32_conv_kernel_for(*pb.d.f32, c.Kg());
  // With several phases the igemm writes pixels phase by phase into this arena buffer, and each
  // step range copies its own rows to the output (conv_transpose.h).
  const int scratch = kern::conv_transpose_phases(c) > 1 ? pb.new_buf(pb.bytes_of(n.outputs[0])) : -1;
  AlignedBuffer& owned = pb.own(c.C * sizeof(float));  // the zero row of taps outside the input
  const float* zero = owned.as<float>();
  Step& s = pb.add_step(n.name, c.N * c.OH * c.OW, k->mr, {x}, {y, scratch});
  Step* sp = &s;
  pb.count_indirection(indirection_bound(c));
  s.bind = [&A = pb.addresses(), sp, c, x, zero] {
    sp->indirection.resize(kern::conv_transpose_indirection_size(c));
    kern::conv_transpose_indirection_init(c, A.f32(x), zero, reinterpret_cast<const float**>(sp->indirection.data()));
  };
  s.fn = [&A = pb.addresses(), sp, k, c, y, scratch, packed, act](size_t p0, size_t p1) {
    kern::f32_conv_transpose_run(*k, c, reinterpret_cast<const float* const*>(sp->indirection.data()), packed,
                                 scratch >= 0 ? A.f32(scratch) : nullptr, A.f32(y), p0, p1, act.lo, act.hi);
  };
}

std::string conv_transpose_kernel(const Graph& g, const Node& n, const Dispatch& d) {
  if (!ir::conv_transpose_phase_strides(n)) return "f32_conv_transpose_gather_nhwc";
  return kern::f32_conv_kernel_for(*d.f32, weight_geometry(g, n).Kg()).igemm.name;
}

// The multiply-accumulates actually computed: each output pixel's phase taps (conv_transpose.h),
// or, gathering, each tap whose input pixel exists.
int64_t conv_transpose_macs(const Graph& g, const Node& n) {
  const kern::ConvTransposeGeometry c = geometry(g, n);
  if (!ir::conv_transpose_phase_strides(n)) return static_cast<int64_t>(c.N * c.IH * c.IW * c.C * c.Kg() * c.KH * c.KW);
  int64_t macs = 0;
  for (size_t ph = 0; ph < kern::conv_transpose_phases(c); ++ph)
    macs += static_cast<int64_t>(kern::conv_transpose_phase_pixels(c, ph) * kern::conv_transpose_phase_taps(c, ph) *
                                 c.Cg() * c.K);
  return macs;
}

AlignedBuffer pack_qconv_transpose(const Graph& g, const Node& n, const Dispatch& d) {
  const kern::QU8Kernels& q = *d.qu8;
  const kern::ConvTransposeGeometry c = packing_geometry(g, n);
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
  const int scratch = kern::conv_transpose_phases(c) > 1 ? pb.new_buf(pb.bytes_of(n.outputs[0])) : -1;
  const void* packed = pb.w.per_node[i].data();
  // Taps outside the input read the input zero point: (z_a - z_a) * w = 0 (qu8.h's algebra).
  AlignedBuffer& owned = pb.own(c.C + kBufferSlack);
  std::memset(owned.data(), g.values[n.inputs[0]].zero_point, c.C + kBufferSlack);
  const uint8_t* zero = owned.data();
  const kern::QU8Kernels* k = pb.d.qu8;
  Step& s = pb.add_step(n.name, c.N * c.OH * c.OW, k->mr, {x}, {y, scratch});
  Step* sp = &s;
  pb.count_indirection(indirection_bound(c));
  s.bind = [&A = pb.addresses(), sp, c, x, zero] {
    sp->indirection.resize(kern::conv_transpose_indirection_size(c));
    kern::conv_transpose_indirection_init(c, A.u8(x), zero, reinterpret_cast<const uint8_t**>(sp->indirection.data()));
  };
  s.fn = [&A = pb.addresses(), sp, k, c, y, scratch, packed, rq](size_t p0, size_t p1) {
    kern::qu8_conv_transpose_run(*k, c, reinterpret_cast<const uint8_t* const*>(sp->indirection.data()), packed,
                                 scratch >= 0 ? A.u8(scratch) : nullptr, A.u8(y), p0, p1, rq);
  };
}

std::string qconv_transpose_kernel(const Graph&, const Node&, const Dispatch& d) { return d.qu8->igemm.name; }

}  // namespace

const OpRuntime kQuantizedConvTransposeRuntime = {pack_qconv_transpose, plan_qconv_transpose, qconv_transpose_kernel,
                                                  conv_transpose_macs};

const OpRuntime kConvTransposeRuntime = {pack_conv_transpose, plan_conv_transpose, conv_transpose_kernel,
                                         conv_transpose_macs};

}  // namespace q8::rt
