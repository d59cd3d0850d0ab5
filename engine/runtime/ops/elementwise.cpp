// Single-input element-wise ops, in whatever layout the input has: Relu and Clip (a clamp),
// Identity and Dropout (a copy), QuantizeLinear and DequantizeLinear.
#include "runtime/ops/ops.h"

#include <cstring>

#include "kernels/f32.h"
#include "kernels/qu8.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

// A float 4-D NCHW tensor (typically the model input) quantized for int8 ops, which read NHWC:
// quantized straight into NHWC in one pass, instead of quantizing then converting the layout. Not
// when a dense layer reads it (ConvNeXt's Linear over the channels of an [N, H, W, C] tensor): it
// reads the rows as they are, and NHWC would cost a conversion there and another back. Another
// reader that wants NCHW (rare: a Flatten) gets the usual conversion back.
bool plan_quantize_to_nhwc(Plan::Builder& pb, const Node& n) {
  const Graph& g = pb.g;
  const int v = n.inputs[0];
  const Shape& s = shape_of(g, v);
  if (g.values[v].constant || pb.native[v] != Layout::Plain || s.size() != 4 || Plan::Builder::layouts_agree(s))
    return false;
  for (int c : pb.consumers.readers(g, n.outputs[0]))
    if (g.nodes[c].op == Op::QuantizedDense || g.nodes[c].op == Op::QuantizedDenseFloat) return false;
  const int x = pb.get(v, Layout::Plain);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::NHWC, y);
  const ir::Value& qv = g.values[n.outputs[0]];
  const float scale = qv.scale;
  const int32_t zp = qv.zero_point;
  const size_t C = static_cast<size_t>(s[1]), HW = static_cast<size_t>(s[2] * s[3]);
  Step& st = pb.add_step(n.name, static_cast<size_t>(s[0]) * HW, 64, {x}, {y});
  st.fn = [&A = pb.addresses(), q = pb.d.qu8, x, y, C, HW, scale, zp](size_t p0, size_t p1) {
    kern::qu8_quantize_nchw_to_nhwc(*q, C, HW, A.f32(x), A.u8(y), scale, zp, p0, p1);
  };
  return true;
}

void plan_elementwise(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const int v = n.inputs[0];
  if (n.op == Op::QuantizeLinear && plan_quantize_to_nhwc(pb, n)) return;
  const ElementwiseIo io = plan_elementwise_io(pb, n);
  const int x = io.x, y = io.y;
  const kern::F32Kernels* k = pb.d.f32;
  const kern::QU8Kernels* q = pb.d.qu8;
  Step& s = pb.add_step(n.name, io.count, 64, {x}, {y});
  if (n.op == Op::QuantizeLinear || n.op == Op::DequantizeLinear) {
    const ir::Value& qv = g.values[n.op == Op::QuantizeLinear ? n.outputs[0] : v];
    const float scale = qv.scale;
    const int32_t zp = qv.zero_point;
    if (n.op == Op::QuantizeLinear)
      s.fn = [&A = pb.addresses(), q, x, y, scale, zp](size_t i0, size_t i1) {
        q->quantize(i1 - i0, A.f32(x) + i0, A.u8(y) + i0, scale, zp);
      };
    else
      s.fn = [&A = pb.addresses(), q, x, y, scale, zp](size_t i0, size_t i1) {
        q->dequantize(i1 - i0, A.u8(x) + i0, A.f32(y) + i0, scale, zp);
      };
    return;
  }
  if (pb.is_u8(v)) {  // a uint8 Identity/Dropout: a copy
    s.fn = [&A = pb.addresses(), x, y](size_t i0, size_t i1) { std::memcpy(A.u8(y) + i0, A.u8(x) + i0, i1 - i0); };
    return;
  }
  float lo = 0.f, hi = kInf;
  if (n.op == Op::Clip) lo = n.attr_float("min", -kInf), hi = n.attr_float("max", kInf);
  if (n.op == Op::Identity || n.op == Op::Dropout) lo = -kInf, hi = kInf;
  s.fn = [&A = pb.addresses(), k, x, y, lo, hi](size_t i0, size_t i1) {
    k->clamp(i1 - i0, A.f32(x) + i0, A.f32(y) + i0, lo, hi);
  };
}

std::string clamp_kernel(const Graph&, const Node&, const Dispatch& d) { return d.f32->clamp.name; }
std::string copy_kernel(const Graph& g, const Node& n, const Dispatch& d) {
  return g.values[n.inputs[0]].dtype == ir::DType::Uint8 ? "memcpy" : d.f32->clamp.name;
}
std::string quantize_kernel(const Graph&, const Node&, const Dispatch& d) { return d.qu8->quantize.name; }
std::string dequantize_kernel(const Graph&, const Node&, const Dispatch& d) { return d.qu8->dequantize.name; }

}  // namespace

ElementwiseIo plan_elementwise_io(Plan::Builder& pb, const Node& n) {
  const int v = n.inputs[0];
  const Layout l = pb.g.values[v].constant ? Layout::Plain : pb.native[v];
  const int x = pb.get(v, l);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], l, y);
  return {x, y, numel(shape_of(pb.g, v))};
}

const OpRuntime kClampRuntime = {nullptr, plan_elementwise, clamp_kernel, nullptr};
const OpRuntime kCopyRuntime = {nullptr, plan_elementwise, copy_kernel, nullptr};
const OpRuntime kQuantizeRuntime = {nullptr, plan_elementwise, quantize_kernel, nullptr};
const OpRuntime kDequantizeRuntime = {nullptr, plan_elementwise, dequantize_kernel, nullptr};

}  // namespace q8::rt
