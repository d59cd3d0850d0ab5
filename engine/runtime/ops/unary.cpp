// Element-wise activations (Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu, Elu, Erf, Sqrt, Exp,
// Silu, Gelu), in whatever layout the input has: one row per op below gives the kernel's function and
// its attribute defaults, and every op runs kern::F32Kernels::unary; on uint8 tensors (an int8
// graph) it runs kern::QU8Kernels::lookup through a table built when the plan is.
#include <algorithm>
#include <array>
#include <memory>
#include <string>

#include "kernels/f32.h"
#include "kernels/qu8.h"
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
    {Op::Gelu, kern::UnaryKind::Gelu, 0.f, 0.f},
};

// The params of activation `op` whose attributes are n's `alpha_key`/`beta_key` (n is the
// activation itself, or the Conv it is fused into).
kern::UnaryParams params_of(const Graph& g, const Node& n, Op op, const char* alpha_key, const char* beta_key) {
  for (const UnaryRow& r : kUnaryRows)
    if (r.op == op) return {r.kind, n.attr_float(alpha_key, r.alpha), n.attr_float(beta_key, r.beta)};
  fail(g, n, std::string("internal: ") + ir::op_name(op) + " is not an element-wise activation");
}

kern::UnaryParams unary_params(const Graph& g, const Node& n) { return params_of(g, n, n.op, "alpha", "beta"); }

// The op in int8: each of the 256 input codes is dequantized, goes through the fp32 kernel and is
// quantized at the output's scale (round half to even, clamped to the fused Relu/Clip's range
// "qmin"/"qmax"). Every table's dequantize, unary and quantize give the same bits, so the table
// is the same on every CPU. A gated node (passes.h, fuse_quantized_gate: x * f(x)) first makes
// f's table at the gate's quantization, then runs each code and its gate through the table's
// QuantizedMul kernel: the bytes the Mul step would have written.
std::shared_ptr<const std::array<uint8_t, 256>> lookup_table(const Dispatch& d, const Graph& g, const Node& n,
                                                             const kern::UnaryParams& p) {
  const ir::Value& in = g.values[n.inputs[0]];
  const ir::Value& out = g.values[n.outputs[0]];
  const bool gated = n.attr_int("gate", 0) != 0;
  const float f_scale = gated ? n.attr_float("gate_scale", 0.f) : out.scale;
  const int32_t f_zero_point = gated ? static_cast<int32_t>(n.attr_int("gate_zero_point", 0)) : out.zero_point;
  const int64_t f_min = n.attr_int(gated ? "gate_qmin" : "qmin", 0),
                f_max = n.attr_int(gated ? "gate_qmax" : "qmax", 255);
  uint8_t codes[256];
  for (int i = 0; i < 256; ++i) codes[i] = static_cast<uint8_t>(i);
  float xs[256], ys[256];
  d.qu8->dequantize(256, codes, xs, in.scale, in.zero_point);
  d.f32->unary(256, xs, ys, p);
  auto table = std::make_shared<std::array<uint8_t, 256>>();
  d.qu8->quantize(256, ys, table->data(), f_scale, f_zero_point);
  for (uint8_t& b : *table) b = static_cast<uint8_t>(std::min<int64_t>(std::max<int64_t>(b, f_min), f_max));
  if (!gated) return table;
  kern::QU8MulParams mp;
  mp.a_zero_point = in.zero_point;
  mp.b_zero_point = f_zero_point;
  mp.multiplier = checked_multiplier(g, n, static_cast<double>(in.scale) * f_scale / out.scale, "s_x * s_gate / s_out");
  mp.out = requant_of(g, n);
  auto gated_table = std::make_shared<std::array<uint8_t, 256>>();
  d.qu8->mul_rows(1, 256, codes, 0, table->data(), 0, gated_table->data(), mp);
  return gated_table;
}

void plan_unary(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const int v = n.inputs[0];
  const ElementwiseIo io = plan_elementwise_io(pb, n);
  const int x = io.x, y = io.y;
  const kern::UnaryParams p = unary_params(g, n);
  Step& s = pb.add_step(n.name, io.count, 64, {x}, {y});
  if (pb.is_u8(v)) {
    const std::shared_ptr<const std::array<uint8_t, 256>> table = lookup_table(pb.d, g, n, p);
    const kern::QU8Kernels* q = pb.d.qu8;
    s.fn = [&A = pb.addresses(), q, x, y, table](size_t i0, size_t i1) {
      q->lookup(i1 - i0, A.u8(x) + i0, A.u8(y) + i0, table->data());
    };
    return;
  }
  const kern::F32Kernels* k = pb.d.f32;
  s.fn = [&A = pb.addresses(), k, x, y, p](size_t i0, size_t i1) {
    k->unary(i1 - i0, A.f32(x) + i0, A.f32(y) + i0, p);
  };
}

std::string unary_kernel(const Graph& g, const Node& n, const Dispatch& d) {
  return g.values[n.inputs[0]].dtype == ir::DType::Uint8 ? d.qu8->lookup.name : d.f32->unary.name;
}

}  // namespace

FusedUnary fused_unary_of(const Graph& g, const Node& n) {
  if (!n.has_attr("act_unary")) return {};
  const int64_t op = n.attr_int("act_unary", 0);
  if (op < 0 || op >= static_cast<int64_t>(ir::kOpCount)) fail(g, n, "internal: act_unary is not an op");
  return {true, params_of(g, n, static_cast<Op>(op), "act_unary_alpha", "act_unary_beta")};
}

const OpRuntime kUnaryRuntime = {nullptr, plan_unary, unary_kernel, nullptr};

}  // namespace q8::rt
