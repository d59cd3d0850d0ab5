// QuantizedDense: a uint8 [M][Kd] activation times int8 weights [N][Kd], the int8 GEMM; and
// QuantizedDenseFloat, the same product with a float32 result (gemm_dequantize). Both run on the
// table dense_kernels() picks by the layer's rows and pack their weights with its GEMM packing;
// threads split them by OutputGrid (a classifier at batch 1 by output channels: each reads its
// share of the weights, which is all the work there is).
#include "runtime/ops/ops.h"

#include "kernels/qu8.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

// The table a dense layer runs on. Over a few rows (a classifier at batch 1) it reads each weight
// once, so its time is the weights' bytes and it takes the table's variant over int8 weights
// (kern::dense_table: AVX2's own weights are int16). Over many rows every weight serves them all,
// the time is the arithmetic, and the table's own tile, which widens nothing in its loop, is
// 1.4-1.5x faster on AVX2 (ConvNeXt-Tiny's MLPs, 49 and 3136 rows). Measured on an AMD Zen 3 (the
// q8_bench_kernels shapes at 2-16 rows): int8 weights ahead up to 4 rows at K = 512 (0.5 MB) and
// up to 8 at K = 4096 (16 MB); int16 ahead from 8 and from 16. The rows are the product's at batch
// 1, recorded on the node once (passes.h, mark_dense_rows), so packing and planning agree.
constexpr int64_t kStreamingRows = 4;
const kern::QU8Kernels& dense_kernels(const Node& n, const Dispatch& d) {
  return n.attr_int("rows", 1) > kStreamingRows ? *d.qu8 : kern::dense_table(*d.qu8);
}

AlignedBuffer pack_qdense(const Graph& g, const Node& n, const Dispatch& d) {
  const ConstTensor& w = *const_input(g, n, 1);  // [N][Kd]
  const ConstTensor* b = const_input(g, n, 2);
  const size_t N = static_cast<size_t>(w.dims[0]), Kd = static_cast<size_t>(w.dims[1]);
  const std::vector<float> m = requant_multipliers(g, n);
  const kern::QU8Kernels& k = dense_kernels(n, d);
  AlignedBuffer buf(kern::qu8_gemm_packed_bytes(Kd, N, k.nr, k.kr, k.weight_bytes));
  kern::qu8_gemm_pack(Kd, N, k.nr, k.kr, k.weight_bytes, w.data<int8_t>(), 1, Kd, b ? b->data<int32_t>() : nullptr,
                      m.data(), static_cast<uint8_t>(g.values[n.inputs[0]].zero_point), buf.data());
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
  const kern::QU8Kernels* k = &dense_kernels(n, pb.d);
  const OutputGrid grid(M, k->mr, (N + k->nr - 1) / k->nr, M * Kd, M * N, pb.w.per_node[i].size());
  Step& s = pb.add_step(n.name, grid.work(), grid.mr, {a}, {y});
  s.fn = [&A = pb.addresses(), k, a, y, packed, N, Kd, rq, grid](size_t i0, size_t i1) {
    grid.split(i0, i1, [&](size_t m0, size_t m1, size_t n0, size_t n1) {
      kern::qu8_gemm_run(*k, N, Kd, A.u8(a), Kd, packed, A.u8(y), N, m0, m1, rq, n0, n1);
    });
  };
}

std::string qdense_kernel(const Graph&, const Node& n, const Dispatch& d) { return dense_kernels(n, d).gemm.name; }

int64_t qdense_macs(const Graph& g, const Node& n) {
  return ir::shape_numel(shape_of(g, n.outputs[0])) * g.values[n.inputs[1]].constant->dims[1];
}

void plan_qdense_float(Plan::Builder& pb, size_t i, const Node& n) {
  const ConstTensor& wt = *const_input(pb.g, n, 1);
  const size_t N = static_cast<size_t>(wt.dims[0]), Kd = static_cast<size_t>(wt.dims[1]);
  plan_gemm_dequantize(pb, i, n, numel(shape_of(pb.g, n.outputs[0])) / N, N, Kd, Layout::Plain, dense_kernels(n, pb.d));
}

AlignedBuffer pack_qdense_float(const Graph& g, const Node& n, const Dispatch& d) {
  return pack_gemm_dequantize(g, n, dense_kernels(n, d));
}

std::string qdense_float_kernel(const Graph&, const Node& n, const Dispatch& d) {
  return dense_kernels(n, d).gemm_dequantize.name;
}

}  // namespace

void plan_gemm_dequantize(Plan::Builder& pb, size_t i, const Node& n, size_t M, size_t N, size_t Kd, Layout layout,
                          const kern::QU8Kernels& table) {
  const int a = pb.get(n.inputs[0], layout);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], layout, y);
  const void* packed = pb.w.per_node[i].data();
  const kern::QU8Kernels* k = &table;
  const OutputGrid grid(M, k->mr, (N + k->nr - 1) / k->nr, M * Kd, M * N * sizeof(float), pb.w.per_node[i].size());
  Step& s = pb.add_step(n.name, grid.work(), grid.mr, {a}, {y});
  s.fn = [&A = pb.addresses(), k, a, y, packed, N, Kd, grid](size_t i0, size_t i1) {
    grid.split(i0, i1, [&](size_t m0, size_t m1, size_t n0, size_t n1) {
      kern::qu8_gemm_dequantize_run(*k, N, Kd, A.u8(a), Kd, packed, A.f32(y), N, m0, m1, n0, n1);
    });
  };
}

AlignedBuffer pack_gemm_dequantize(const Graph& g, const Node& n, const kern::QU8Kernels& k) {
  const ConstTensor& w = *const_input(g, n, 1);  // [N][Kd]
  const ConstTensor* b = const_input(g, n, 2);
  const size_t N = static_cast<size_t>(w.dims[0]), Kd = static_cast<size_t>(w.dims[1]);
  const std::vector<float> s_w = n.attr_floats("w_scale");
  if (s_w.size() != N) fail(g, n, "w_scale must hold one scale per output channel");
  const ir::Value& a = g.values[n.inputs[0]];
  std::vector<float> scale(N);
  for (size_t c = 0; c < N; ++c) scale[c] = a.scale * s_w[c];
  AlignedBuffer buf(kern::qu8_gemm_packed_bytes(Kd, N, k.nr, k.kr, k.weight_bytes));
  kern::qu8_gemm_pack(Kd, N, k.nr, k.kr, k.weight_bytes, w.data<int8_t>(), 1, Kd, b ? b->data<int32_t>() : nullptr,
                      scale.data(), static_cast<uint8_t>(a.zero_point), buf.data());
  return buf;
}

const OpRuntime kQuantizedDenseRuntime = {pack_qdense, plan_qdense, qdense_kernel, qdense_macs};
const OpRuntime kQuantizedDenseFloatRuntime = {pack_qdense_float, plan_qdense_float, qdense_float_kernel, qdense_macs};

}  // namespace q8::rt
