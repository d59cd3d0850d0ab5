// Element-wise activations (Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu, Elu, Erf, Sqrt, Exp,
// Silu), in whatever layout the input has: one row per op below gives the kernel's function and
// its attribute defaults, and every op runs kern::F32Kernels::unary.
#include <string>

#include "kernels/f32.h"
#include "runtime/ops/ops.h"

namespace q8::rt {

using ir::Graph;
using ir::Node;
using ir::Op;

namespace {

struct UnaryRow {
  Op op;
  kern::UnaryKind kind;
  float alpha, beta;  // ONNX's defaults of the "alpha" and "beta" attributes (where the op has them)
};

constexpr UnaryRow kUnaryRows[] = {
    {Op::Sigmoid, kern::UnaryKind::Sigmoid, 0.f, 0.f},
    {Op::Tanh, kern::UnaryKind::Tanh, 0.f, 0.f},
    {Op::HardSigmoid, kern::UnaryKind::HardSigmoid, 0.2f, 0.5f},
    {Op::HardSwish, kern::UnaryKind::HardSwish, 0.f, 0.f},
    {Op::LeakyRelu, kern::UnaryKind::LeakyRelu, 0.01f, 0.f},
    {Op::Elu, kern::UnaryKind::Elu, 1.f, 0.f},
    {Op::Erf, kern::UnaryKind::Erf, 0.f, 0.f},
    {Op::Sqrt, kern::UnaryKind::Sqrt, 0.f, 0.f},
    {Op::Exp, kern::UnaryKind::Exp, 0.f, 0.f},
    {Op::Silu, kern::UnaryKind::Silu, 0.f, 0.f},
};

kern::UnaryParams unary_params(const Graph& g, const Node& n) {
  for (const UnaryRow& r : kUnaryRows)
    if (r.op == n.op) return {r.kind, n.attr_float("alpha", r.alpha), n.attr_float("beta", r.beta)};
  fail(g, n, "internal: not an element-wise activation");
}

void plan_unary(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const int v = n.inputs[0];
  const Layout l = g.values[v].constant ? Layout::Plain : pb.native[v];
  const int x = pb.get(v, l);
  const size_t count = numel(shape_of(g, v));
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], l, y);
  const kern::UnaryParams p = unary_params(g, n);
  const kern::F32Kernels* k = pb.d.f32;
  Step& s = pb.add_step(n.name, count, 64, {x}, {y});
  s.fn = [&A = pb.addresses(), k, x, y, p](size_t i0, size_t i1) {
    k->unary(i1 - i0, A.f32(x) + i0, A.f32(y) + i0, p);
  };
}

std::string unary_kernel(const Graph&, const Node&, const Dispatch& d) { return d.f32->unary.name; }

}  // namespace

const OpRuntime kUnaryRuntime = {nullptr, plan_unary, unary_kernel, nullptr};

}  // namespace q8::rt
