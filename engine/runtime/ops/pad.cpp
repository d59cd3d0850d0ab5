// Pad (constant mode) on fp32 or uint8.
#include "runtime/ops/ops.h"

#include <algorithm>
#include <cmath>

#include "kernels/f32_misc.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

// Constant Pad, in the input's own layout (an NHWC tensor is padded as NHWC). On uint8 the
// padding value is quantized with the tensor's own scale and zero point.
void plan_pad(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const int v = n.inputs[0];
  const Shape& xs = shape_of(g, v);
  const Shape& ys = shape_of(g, n.outputs[0]);
  const size_t r = xs.size();
  if (r > 8) fail(g, n, "padding above rank 8 is not supported");
  const ConstTensor* pads = const_input(g, n, 1);
  std::vector<int64_t> begin(r), in_dims(xs), out_dims(ys);
  for (size_t a = 0; a < r; ++a) begin[a] = pads->as_int64(static_cast<int64_t>(a));
  const Layout l = r == 4 && !g.values[v].constant ? pb.native[v] : Layout::Plain;
  if (l == Layout::NHWC) {  // [N,C,H,W] -> [N,H,W,C]
    auto nhwc = [](std::vector<int64_t> d) { return std::vector<int64_t>{d[0], d[2], d[3], d[1]}; };
    begin = nhwc(begin), in_dims = nhwc(in_dims), out_dims = nhwc(out_dims);
  }
  const ConstTensor* cv = n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue ? const_input(g, n, 2) : nullptr;
  const float value = cv ? static_cast<float>(cv->as_double(0)) : 0.f;
  const bool u8 = pb.is_u8(v);
  uint8_t qvalue = 0;
  if (u8) {
    const ir::Value& X = g.values[v];
    const double q = std::nearbyint(value / X.scale) + X.zero_point;
    qvalue = static_cast<uint8_t>(std::min(std::max(q, 0.0), 255.0));
  }
  const int x = pb.get(v, l);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], l, y);
  Step& s = pb.add_step(n.name, 1, 1, {x}, {y});
  s.fn = [&A = pb.addresses(), x, y, r, begin, in_dims, out_dims, value, qvalue, u8](size_t, size_t) {
    if (u8)
      kern::u8_pad(r, in_dims.data(), begin.data(), out_dims.data(), A.u8(x), qvalue, A.u8(y));
    else
      kern::f32_pad(r, in_dims.data(), begin.data(), out_dims.data(), A.f32(x), value, A.f32(y));
  };
}

std::string pad_kernel(const Graph& g, const Node& n, const Dispatch&) {
  return g.values[n.inputs[0]].dtype == ir::DType::Uint8 ? "u8_pad" : "f32_pad";
}

}  // namespace

const OpRuntime kPadRuntime = {nullptr, plan_pad, pad_kernel, nullptr};

}  // namespace q8::rt
