// Gemm and MatMul in fp32: a packed GEMM when B is a constant matrix, else the general strided product.
#include "runtime/ops/ops.h"

#include <algorithm>

#include "ir/shape_inference.h"
#include "kernels/f32.h"
#include "kernels/f32_misc.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {
// Gemm runs on packed weights when B is a constant matrix and A needs no transpose; the bias C,
// when present, must then be a constant broadcast along rows (shape [N], [1,N] or a scalar).
bool gemm_packed_path(const Graph& g, const Node& n) {
  // Decided from constants and attributes only: weights are packed before shapes are known.
  if (n.op == Op::MatMul) {
    const ConstTensor* b = const_input(g, n, 1);
    return b && b->dims.size() == 2;
  }
  if (n.attr_int("transA", 0) != 0) return false;
  const ConstTensor* b = const_input(g, n, 1);
  if (!b || b->dims.size() != 2) return false;
  if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
    const ConstTensor* c = const_input(g, n, 2);
    if (!c) return false;
    const int64_t N = n.attr_int("transB", 0) ? b->dims[0] : b->dims[1];
    if (c->dims.size() > 2 || !ir::is_column_term(N, c->dims)) return false;
  }
  return true;
}

AlignedBuffer pack_gemm(const Graph& g, const Node& n, const Dispatch& d) {
  if (!gemm_packed_path(g, n)) return AlignedBuffer();
  const ConstTensor& b = *const_input(g, n, 1);
  const bool tb = n.op == Op::Gemm && n.attr_int("transB", 0) != 0;
  const size_t Kd = static_cast<size_t>(tb ? b.dims[1] : b.dims[0]);
  const size_t N = static_cast<size_t>(tb ? b.dims[0] : b.dims[1]);
  // alpha scales B once here; beta scales the bias: alpha*A*B + beta*C = A*(alpha*B) + (beta*C).
  const float alpha = n.op == Op::Gemm ? n.attr_float("alpha", 1.f) : 1.f;
  const float beta = n.op == Op::Gemm ? n.attr_float("beta", 1.f) : 1.f;
  std::vector<float> scaled(b.data<float>(), b.data<float>() + b.numel());
  for (float& v : scaled) v *= alpha;
  std::vector<float> bias(N, 0.f);
  if (const ConstTensor* c = const_input(g, n, 2))
    for (size_t j = 0; j < N; ++j) bias[j] = beta * c->data<float>()[c->numel() == 1 ? 0 : j];
  AlignedBuffer buf(kern::f32_gemm_packed_floats(Kd, N, d.f32->conv.nr) * sizeof(float));
  kern::f32_gemm_pack(Kd, N, d.f32->conv.nr, scaled.data(), tb ? 1 : N, tb ? Kd : 1, bias.data(), buf.as<float>());
  return buf;
}

void plan_gemm(Plan::Builder& pb, size_t i, const Node& n) {
  const Graph& g = pb.g;
  const Activation act = activation_of(n);
  const Shape& ys = shape_of(g, n.outputs[0]);
  const kern::F32Kernels* k = pb.d.f32;
  if (gemm_packed_path(g, n)) {
    const ConstTensor& b = *const_input(g, n, 1);
    const bool tb = n.op == Op::Gemm && n.attr_int("transB", 0) != 0;
    const size_t Kd = static_cast<size_t>(tb ? b.dims[1] : b.dims[0]);
    const size_t N = static_cast<size_t>(tb ? b.dims[0] : b.dims[1]);
    const size_t M = numel(ys) / N;
    const int a = pb.get(n.inputs[0], Layout::Plain);
    const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
    pb.define(n.outputs[0], Layout::Plain, y);
    const float* packed = pb.w.per_node[i].as<float>();
    const OutputGrid grid(M, k->conv.mr, (N + k->conv.nr - 1) / k->conv.nr, M * Kd * sizeof(float),
                          M * N * sizeof(float), pb.w.per_node[i].size());
    Step& s = pb.add_step(n.name, grid.work(), grid.mr, {a}, {y});
    s.fn = [&A = pb.addresses(), k, a, y, packed, N, Kd, act, grid](size_t i0, size_t i1) {
      grid.split(i0, i1, [&](size_t m0, size_t m1, size_t n0, size_t n1) {
        kern::f32_gemm_run(*k, N, Kd, A.f32(a), Kd, packed, A.f32(y), N, m0, m1, act.lo, act.hi, n0, n1);
      });
    };
    return;
  }
  // General product: alpha * op(A) op(B) (+ beta * C), batched with broadcasting over leading axes.
  Shape as = shape_of(g, n.inputs[0]), bs = shape_of(g, n.inputs[1]);
  kern::MatMulGeometry mg;
  if (n.op == Op::Gemm) {
    const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
    mg.M = ta ? as[1] : as[0];
    mg.K = ta ? as[0] : as[1];
    mg.N = tb ? bs[0] : bs[1];
    mg.a_rs = ta ? 1 : as[1];
    mg.a_cs = ta ? as[1] : 1;
    mg.b_rs = tb ? 1 : bs[1];
    mg.b_cs = tb ? bs[1] : 1;
    mg.alpha = n.attr_float("alpha", 1.f);
  } else {
    if (as.size() == 1) as.insert(as.begin(), 1);
    if (bs.size() == 1) bs.push_back(1);
    mg.M = as[as.size() - 2];
    mg.K = as.back();
    mg.N = bs.back();
    mg.a_rs = mg.K, mg.a_cs = 1, mg.b_rs = mg.N, mg.b_cs = 1;
    const size_t ab = numel(Shape(as.begin(), as.end() - 2)), bb = numel(Shape(bs.begin(), bs.end() - 2));
    mg.batch = numel(ys) / (mg.M * mg.N);
    // Each operand's batch axes either match the output's or are all 1 (broadcast whole).
    if ((ab != mg.batch && ab != 1) || (bb != mg.batch && bb != 1))
      fail(g, n, "batch broadcasting between " + ir::shape_str(as) + " and " + ir::shape_str(bs) + " is not supported");
    mg.a_batch_stride = ab == 1 ? 0 : mg.M * mg.K;
    mg.b_batch_stride = bb == 1 ? 0 : mg.K * mg.N;
  }
  const int a = pb.get(n.inputs[0], Layout::Plain), b = pb.get(n.inputs[1], Layout::Plain);
  int c = -1;
  std::vector<int64_t> cdims;
  float beta = 0.f;
  if (n.op == Op::Gemm && n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
    c = pb.get(n.inputs[2], Layout::Plain);
    const Shape& cs = shape_of(g, n.inputs[2]);
    cdims.assign(2 - std::min<size_t>(2, cs.size()), 1);
    cdims.insert(cdims.end(), cs.begin(), cs.end());
    beta = n.attr_float("beta", 1.f);
  }
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::Plain, y);
  Step& s = pb.add_step(n.name, 1, 1, {a, b, c}, {y});
  const std::vector<int64_t> ydims = {static_cast<int64_t>(mg.M), static_cast<int64_t>(mg.N)};
  s.fn = [&A = pb.addresses(), k, mg, a, b, c, y, cdims, ydims, beta, act](size_t, size_t) {
    float* out = A.f32(y);
    kern::f32_matmul_strided(mg, A.f32(a), A.f32(b), out);
    if (c >= 0)
      kern::f32_broadcast_add(2, ydims.data(), ydims.data(), out, cdims.data(), A.f32(c), beta, out, act.lo, act.hi);
    else if (act.lo > -kInf || act.hi < kInf)
      k->clamp(mg.batch * mg.M * mg.N, out, out, act.lo, act.hi);
  };
}

std::string gemm_kernel(const Graph& g, const Node& n, const Dispatch& d) {
  return gemm_packed_path(g, n) ? d.f32->gemm.name : "f32_matmul_strided";
}

int64_t gemm_macs(const Graph& g, const Node& n) {
  const Shape& a = shape_of(g, n.inputs[0]);
  const Shape& y = shape_of(g, n.outputs[0]);
  const bool ta = n.op == Op::Gemm && n.attr_int("transA", 0);
  const int64_t K = a.empty() ? 0 : (ta ? a[0] : a.back());
  return ir::shape_numel(y) * K;
}

}  // namespace

const OpRuntime kGemmRuntime = {pack_gemm, plan_gemm, gemm_kernel, gemm_macs};

}  // namespace q8::rt
