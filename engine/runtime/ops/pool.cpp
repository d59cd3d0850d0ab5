// MaxPool, AveragePool and GlobalAveragePool, on fp32 or uint8 (NHWC).
#include "runtime/ops/ops.h"

#include "kernels/f32.h"
#include "kernels/qu8.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

void plan_pool(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const Shape& xs = shape_of(g, n.inputs[0]);
  const Shape& ys = shape_of(g, n.outputs[0]);
  const bool u8 = pb.is_u8(n.inputs[0]);
  const int x = pb.get(n.inputs[0], Layout::NHWC);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::NHWC, y);
  const kern::F32Kernels* k = pb.d.f32;
  const kern::QU8Kernels* q = pb.d.qu8;
  const kern::QU8PoolParams pp = u8 ? qu8_pool_params(g, n) : kern::QU8PoolParams{};
  if (n.op == Op::GlobalAveragePool) {
    const size_t HW = xs[2] * xs[3], C = xs[1];
    Step& s = pb.add_step(n.name, xs[0], 1, {x}, {y});
    s.fn = [&A = pb.addresses(), k, q, x, y, HW, C, u8, pp](size_t n0, size_t n1) {
      if (u8)
        q->global_avgpool(HW, C, A.u8(x), A.u8(y), n0, n1, pp);
      else
        k->global_avgpool(HW, C, A.f32(x), A.f32(y), n0, n1);
    };
    return;
  }
  kern::PoolGeometry pg;
  pg.N = xs[0], pg.C = xs[1], pg.IH = xs[2], pg.IW = xs[3], pg.OH = ys[2], pg.OW = ys[3];
  const auto ks = n.attr_ints("kernel_shape"), st = n.attr_ints("strides", {1, 1}),
             dl = n.attr_ints("dilations", {1, 1}), pd = n.attr_ints("pads", {0, 0, 0, 0});
  pg.KH = ks[0], pg.KW = ks[1], pg.SH = st[0], pg.SW = st[1], pg.DH = dl[0], pg.DW = dl[1];
  pg.PT = pd[0], pg.PL = pd[1], pg.PB = pd[2], pg.PR = pd[3];
  pg.count_include_pad = n.attr_int("count_include_pad", 0) != 0;
  const bool is_max = n.op == Op::MaxPool;
  Step& s = pb.add_step(n.name, pg.N * pg.OH * pg.OW, 1, {x}, {y});
  s.fn = [&A = pb.addresses(), k, q, pg, x, y, is_max, u8, pp](size_t p0, size_t p1) {
    if (u8) {
      if (is_max)
        q->maxpool(pg, A.u8(x), A.u8(y), p0, p1);
      else
        q->avgpool(pg, A.u8(x), A.u8(y), p0, p1, pp);
    } else {
      (is_max ? k->maxpool : k->avgpool)(pg, A.f32(x), A.f32(y), p0, p1);
    }
  };
}

std::string pool_kernel(const Graph& g, const Node& n, const Dispatch& d) {
  const bool u8 = g.values[n.inputs[0]].dtype == ir::DType::Uint8;
  switch (n.op) {
    case Op::MaxPool: return u8 ? d.qu8->maxpool.name : d.f32->maxpool.name;
    case Op::AveragePool: return u8 ? d.qu8->avgpool.name : d.f32->avgpool.name;
    case Op::GlobalAveragePool: return u8 ? d.qu8->global_avgpool.name : d.f32->global_avgpool.name;
    default: fail(g, n, "internal: not a pool");
  }
}

}  // namespace

kern::QU8PoolParams qu8_pool_params(const Graph& g, const Node& n) {
  const ir::Value &X = g.values[n.inputs[0]], &Y = g.values[n.outputs[0]];
  if (n.op == Op::MaxPool && (X.scale != Y.scale || X.zero_point != Y.zero_point))
    fail(g, n, "uint8 MaxPool needs the same quantization on its input and output");
  kern::QU8PoolParams pp;
  pp.in_zero_point = X.zero_point;
  pp.in_over_out = checked_multiplier(g, n, static_cast<double>(X.scale) / Y.scale, "s_in / s_out");
  pp.out.out_zero_point = Y.zero_point;
  return pp;
}

const OpRuntime kPoolRuntime = {nullptr, plan_pool, pool_kernel, nullptr};

}  // namespace q8::rt
