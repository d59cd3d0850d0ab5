// QuantizedAdd: two uint8 tensors of one shape, each with its own scale, requantized to the output's.
#include "runtime/ops/ops.h"

#include "kernels/qu8.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

void plan_qadd(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const int va = n.inputs[0], vb = n.inputs[1];
  const ir::Value &A = g.values[va], &B = g.values[vb], &Y = g.values[n.outputs[0]];
  kern::QU8AddParams ap;
  ap.a_zero_point = A.zero_point;
  ap.b_zero_point = B.zero_point;
  ap.a_multiplier = checked_multiplier(g, n, static_cast<double>(A.scale) / Y.scale, "s_a / s_out");
  ap.b_multiplier = checked_multiplier(g, n, static_cast<double>(B.scale) / Y.scale, "s_b / s_out");
  ap.out = requant_of(g, n);
  const Layout l = pb.native[va];
  const int a = pb.get(va, l), b = pb.get(vb, l);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], l, y);
  const kern::QU8Kernels* k = pb.d.qu8;
  Step& s = pb.add_step(n.name, pb.bytes_of(n.outputs[0]), 64, {a, b}, {y});
  s.fn = [&A = pb.addresses(), k, a, b, y, ap](size_t i0, size_t i1) {
    k->add(i1 - i0, A.u8(a) + i0, A.u8(b) + i0, A.u8(y) + i0, ap);
  };
}

std::string qadd_kernel(const Graph&, const Node&, const Dispatch& d) { return d.qu8->add.name; }

}  // namespace

const OpRuntime kQuantizedAddRuntime = {nullptr, plan_qadd, qadd_kernel, nullptr};

}  // namespace q8::rt
