// Softmax and LogSoftmax in fp32 along one axis of a C-order tensor (exp through the fp32 table).
#include "runtime/ops/ops.h"

#include "kernels/f32_misc.h"

namespace q8::rt {

using ir::Graph;
using ir::Node;
using ir::Shape;

namespace {

void plan_softmax(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const Shape& xs = shape_of(g, n.inputs[0]);
  const size_t axis = static_cast<size_t>(n.attr_int("axis", -1));  // non-negative after shape inference
  // Before opset 13 the op normalises the axes from `axis` on as one flattened axis.
  const bool flattened = g.opset < 13;
  size_t outer = 1, len = 1, inner = 1;
  for (size_t a = 0; a < xs.size(); ++a) {
    const size_t d = static_cast<size_t>(xs[a]);
    if (a < axis)
      outer *= d;
    else if (a == axis || flattened)
      len *= d;
    else
      inner *= d;
  }
  const int x = pb.get(n.inputs[0], Layout::Plain);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::Plain, y);
  const bool log = n.op == ir::Op::LogSoftmax;
  Step& s = pb.add_step(n.name, outer, 1, {x}, {y});
  s.fn = [&A = pb.addresses(), k = pb.d.f32, x, y, len, inner, log](size_t o0, size_t o1) {
    kern::f32_softmax(*k, len, inner, A.f32(x), A.f32(y), o0, o1, log);
  };
}

std::string softmax_kernel(const Graph&, const Node&, const Dispatch&) { return "f32_softmax"; }

}  // namespace

const OpRuntime kSoftmaxRuntime = {nullptr, plan_softmax, softmax_kernel, nullptr};

}  // namespace q8::rt
