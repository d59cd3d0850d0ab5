// QuantizedDense: a uint8 [M][Kd] activation times int8 weights [N][Kd], the int8 GEMM.
#include "runtime/ops/ops.h"

#include "kernels/qu8.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {
AlignedBuffer pack_qdense(const Graph& g, const Node& n, const Dispatch& d) {
  const ConstTensor& w = *const_input(g, n, 1);  // [N][Kd]
  const ConstTensor* b = const_input(g, n, 2);
  const size_t N = static_cast<size_t>(w.dims[0]), Kd = static_cast<size_t>(w.dims[1]);
  const std::vector<float> m = requant_multipliers(g, n);
  AlignedBuffer buf(kern::qu8_gemm_packed_bytes(Kd, N, d.qu8->nr, d.qu8->kr));
  kern::qu8_gemm_pack(Kd, N, d.qu8->nr, d.qu8->kr, w.data<int8_t>(), 1, Kd, b ? b->data<int32_t>() : nullptr, m.data(),
                      static_cast<uint8_t>(g.values[n.inputs[0]].zero_point), buf.data());
  return buf;
}

void plan_qdense(Plan::Builder& pb, size_t i, const Node& n) {
  const Graph& g = pb.g;
  const ConstTensor& wt = *const_input(g, n, 1);
  const size_t N = static_cast<size_t>(wt.dims[0]), Kd = static_cast<size_t>(wt.dims[1]);
  const size_t M = numel(shape_of(g, n.outputs[0])) / N;
  const kern::QU8Requant rq = requant_of(g, n);
  const int a = pb.get(n.inputs[0], Layout::Plain);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::Plain, y);
  const void* packed = pb.w.per_node[i].data();
  const kern::QU8Kernels* k = pb.d.qu8;
  Step& s = pb.add_step(n.name, M, k->mr, {a}, {y});
  s.fn = [&A = pb.addresses(), k, a, y, packed, M, N, Kd, rq](size_t m0, size_t m1) {
    kern::qu8_gemm_run(*k, N, Kd, A.u8(a), Kd, packed, A.u8(y), N, m0, m1, rq);
  };
}

std::string qdense_kernel(const Graph&, const Node&, const Dispatch& d) { return d.qu8->gemm.name; }

int64_t qdense_macs(const Graph& g, const Node& n) {
  return ir::shape_numel(shape_of(g, n.outputs[0])) * g.values[n.inputs[1]].constant->dims[1];
}

}  // namespace

const OpRuntime kQuantizedDenseRuntime = {pack_qdense, plan_qdense, qdense_kernel, qdense_macs};

}  // namespace q8::rt
