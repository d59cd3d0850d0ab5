// QuantizedMul: two uint8 tensors, each with its own scale, multiplied and requantized to the
// output's (ONNX Runtime's QLinearMul). Same shape element by element; a per-channel term (
// squeeze-excitation's s[N,C,1,1]) as a row broadcast on NHWC, one row per image.
#include "runtime/ops/ops.h"

#include <algorithm>

#include "kernels/qu8.h"

namespace q8::rt {

using ir::Graph;
using ir::Node;
using ir::Shape;

namespace {

void plan_qmul(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const int va = n.inputs[0], vb = n.inputs[1];
  const ir::Value &A = g.values[va], &B = g.values[vb], &Y = g.values[n.outputs[0]];
  kern::QU8MulParams mp;
  mp.a_zero_point = A.zero_point;
  mp.b_zero_point = B.zero_point;
  mp.multiplier = checked_multiplier(g, n, static_cast<double>(A.scale) * B.scale / Y.scale, "s_a * s_b / s_out");
  mp.out = requant_of(g, n);
  const kern::QU8Kernels* k = pb.d.qu8;
  const Shape &as = shape_of(g, va), &bs = shape_of(g, vb), &ys = shape_of(g, n.outputs[0]);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  if (as == bs) {
    const Layout l = pb.native[va];
    const int a = pb.get(va, l), b = pb.get(vb, l);
    pb.define(n.outputs[0], l, y);
    Step& s = pb.add_step(n.name, pb.bytes_of(n.outputs[0]), 64, {a, b}, {y});
    s.fn = [&Ad = pb.addresses(), k, a, b, y, mp](size_t i0, size_t i1) {
      k->mul_rows(1, i1 - i0, Ad.u8(a) + i0, 0, Ad.u8(b) + i0, 0, Ad.u8(y) + i0, mp);
    };
    return;
  }
  // A per-channel term (the shape rule allows nothing else): rows of C channels, one group of
  // H*W rows per image, the term advancing C values per image when it has one row per image.
  const bool big_is_a = as == ys;
  const Shape& small = big_is_a ? bs : as;
  const int big = pb.get(big_is_a ? va : vb, Layout::NHWC), term = pb.get(big_is_a ? vb : va, Layout::Plain);
  pb.define(n.outputs[0], Layout::NHWC, y);
  const size_t C = static_cast<size_t>(ys[1]), HW = static_cast<size_t>(ys[2] * ys[3]);
  const size_t term_stride = small.size() == 4 && small[0] == ys[0] && ys[0] > 1 ? C : 0;
  Step& s = pb.add_step(n.name, numel(ys) / C, 1, {big, term}, {y});
  s.fn = [&Ad = pb.addresses(), k, big, term, y, C, HW, term_stride, big_is_a, mp](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1;) {
      const size_t image = r / HW, end = std::min(r1, (image + 1) * HW);
      const uint8_t* rows = Ad.u8(big) + r * C;
      const uint8_t* row = Ad.u8(term) + image * term_stride;
      if (big_is_a)
        k->mul_rows(end - r, C, rows, C, row, 0, Ad.u8(y) + r * C, mp);
      else
        k->mul_rows(end - r, C, row, 0, rows, C, Ad.u8(y) + r * C, mp);
      r = end;
    }
  };
}

std::string qmul_kernel(const Graph&, const Node&, const Dispatch& d) { return d.qu8->mul_rows.name; }

}  // namespace

const OpRuntime kQuantizedMulRuntime = {nullptr, plan_qmul, qmul_kernel, nullptr};

}  // namespace q8::rt
