// Add, Sub, Mul, Div and Pow in fp32 (with a fused Relu/Clip), in one of three forms chosen from
// the shapes: element by element, a row broadcast, or the general broadcast.
#include "runtime/ops/ops.h"

#include <algorithm>

#include "ir/shape_inference.h"
#include "kernels/f32.h"
#include "kernels/f32_misc.h"

namespace q8::rt {

using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

kern::BinaryOp binary_op(const Graph& g, const Node& n) {
  if (n.op == Op::Add) return kern::BinaryOp::Add;
  if (n.op == Op::Sub) return kern::BinaryOp::Sub;
  if (n.op == Op::Mul) return kern::BinaryOp::Mul;
  if (n.op == Op::Div) return kern::BinaryOp::Div;
  if (n.op == Op::Pow) return kern::BinaryOp::Pow;
  fail(g, n, "internal: not a binary op");
}

// s padded with leading 1s to rank r.
Shape padded(const Shape& s, size_t r) {
  Shape p(r - s.size(), 1);
  p.insert(p.end(), s.begin(), s.end());
  return p;
}

// How a node runs. Rows: the full-shape operand `big` is rows of n values, and the other one is a
// row of n values, the same for every row of a group (groups of `group_rows` rows, the small
// operand advancing `small_group_stride` values per group). A constant scalar (x * 0.5) becomes
// a row of n copies made at plan time (`scalar_row`), so it runs as a row broadcast too.
struct BinaryForm {
  enum Kind { SameShape, Rows, Broadcast } kind = Broadcast;
  Layout layout = Layout::Plain;
  bool big_is_a = true, scalar_row = false;
  size_t n = 0, group_rows = 0, small_group_stride = 0;
};

BinaryForm binary_form(const Plan::Builder* pb, const Graph& g, const Node& n) {
  const Shape& ys = shape_of(g, n.outputs[0]);
  const Shape &as = shape_of(g, n.inputs[0]), &bs = shape_of(g, n.inputs[1]);
  BinaryForm f;
  if (n.op == Op::Pow) return f;  // the portable kernel only
  if (as == ys && bs == ys) {
    f.kind = BinaryForm::SameShape;
    return f;
  }
  if (as != ys && bs != ys) return f;
  f.big_is_a = as == ys;
  const Shape small = padded(f.big_is_a ? bs : as, ys.size());
  const size_t total = numel(ys);
  if (numel(small) == 1 && g.values[f.big_is_a ? n.inputs[1] : n.inputs[0]].constant && !ys.empty()) {
    // Rows along the big operand's own layout (its innermost extent, or C on NHWC); `pb` is null
    // when only the kernel's name is asked for, which does not depend on the layout.
    f.kind = BinaryForm::Rows;
    f.scalar_row = true;
    const int big = f.big_is_a ? n.inputs[0] : n.inputs[1];
    f.layout = pb && ys.size() == 4 && pb->native[big] == Layout::NHWC ? Layout::NHWC : Layout::Plain;
    f.n = static_cast<size_t>(f.layout == Layout::NHWC ? ys[1] : ys.back());
    f.group_rows = total / f.n;
    return f;
  }
  // A per-channel term of a 4-D tensor ([C], [1,C,1,1]; [N,C,1,1] as in squeeze-excitation, one
  // row per image): on NHWC a row of C values over every pixel of an image.
  if (ir::is_per_channel_term(ys, small)) {
    f.kind = BinaryForm::Rows;
    f.layout = Layout::NHWC;
    f.n = static_cast<size_t>(ys[1]);
    f.group_rows = static_cast<size_t>(ys[2] * ys[3]);
    f.small_group_stride = small[0] == 1 ? 0 : f.n;
    return f;
  }
  // A term over the trailing axes (leading 1s, then ys's own dims) on C order: a row per outer index.
  size_t lead = 0;
  while (lead < small.size() && small[lead] == 1) ++lead;
  if (!std::equal(small.begin() + lead, small.end(), ys.begin() + lead)) return f;
  f.kind = BinaryForm::Rows;
  f.n = numel(small);
  f.group_rows = total / f.n;
  return f;
}

void plan_binary(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const Activation act = activation_of(n);
  const Shape& ys = shape_of(g, n.outputs[0]);
  const int va = n.inputs[0], vb = n.inputs[1];
  const kern::F32Kernels* k = pb.d.f32;
  const size_t total = numel(ys);
  const kern::BinaryOp op = binary_op(g, n);
  const size_t ki = static_cast<size_t>(op);
  const BinaryForm f = binary_form(&pb, g, n);
  if (f.kind == BinaryForm::SameShape) {
    // Same shape: work in the layout the first operand already has.
    const Layout l = g.values[va].constant ? pb.native[vb] : pb.native[va];
    const int a = pb.get(va, l), b = pb.get(vb, l);
    const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
    pb.define(n.outputs[0], l, y);
    Step& s = pb.add_step(n.name, total, 64, {a, b}, {y});
    s.fn = [&A = pb.addresses(), fn = k->binary[ki], a, b, y, act](size_t i0, size_t i1) {
      fn(i1 - i0, A.f32(a) + i0, A.f32(b) + i0, A.f32(y) + i0, act.lo, act.hi);
    };
    return;
  }
  if (f.kind == BinaryForm::Rows) {
    const int big = pb.get(f.big_is_a ? va : vb, f.layout);
    int small = -1;
    if (f.scalar_row) {
      const float value = g.values[f.big_is_a ? vb : va].constant->data<float>()[0];
      AlignedBuffer& row = pb.own(f.n * sizeof(float));
      std::fill(row.as<float>(), row.as<float>() + f.n, value);
      small = pb.fixed_buf(row.data(), f.n * sizeof(float));
    } else {
      small = pb.get(f.big_is_a ? vb : va, Layout::Plain);
    }
    const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
    pb.define(n.outputs[0], f.layout, y);
    Step& s = pb.add_step(n.name, total / f.n, 1, {big, small}, {y});
    s.fn = [&A = pb.addresses(), fn = k->binary_rows[ki], big, small, y, f, act](size_t r0, size_t r1) {
      const size_t N = f.n;
      // Rows [r0, r1), split at group boundaries (each group reads its own small row).
      for (size_t r = r0; r < r1;) {
        const size_t group = r / f.group_rows, end = std::min(r1, (group + 1) * f.group_rows);
        const float* rows = A.f32(big) + r * N;
        const float* row = A.f32(small) + group * f.small_group_stride;
        if (f.big_is_a)
          fn(end - r, N, rows, N, row, 0, A.f32(y) + r * N, act.lo, act.hi);
        else
          fn(end - r, N, row, 0, rows, N, A.f32(y) + r * N, act.lo, act.hi);
        r = end;
      }
    };
    return;
  }
  if (ys.size() > 8) fail(g, n, "broadcasting above rank 8 is not supported");
  const int a = pb.get(va, Layout::Plain), b = pb.get(vb, Layout::Plain);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::Plain, y);
  Step& s = pb.add_step(n.name, 1, 1, {a, b}, {y});
  s.fn = [&A = pb.addresses(), op, a, b, y, yd = std::vector<int64_t>(ys), ad = padded(shape_of(g, va), ys.size()),
          bd = padded(shape_of(g, vb), ys.size()), act](size_t, size_t) {
    kern::f32_broadcast_binary(op, yd.size(), yd.data(), ad.data(), A.f32(a), bd.data(), A.f32(b), A.f32(y), act.lo,
                               act.hi);
  };
}

std::string binary_kernel(const Graph& g, const Node& n, const Dispatch& d) {
  const size_t ki = static_cast<size_t>(binary_op(g, n));
  switch (binary_form(nullptr, g, n).kind) {
    case BinaryForm::SameShape: return d.f32->binary[ki].name;
    case BinaryForm::Rows: return d.f32->binary_rows[ki].name;
    case BinaryForm::Broadcast: break;
  }
  return "f32_broadcast_binary";
}

}  // namespace

const OpRuntime kBinaryRuntime = {nullptr, plan_binary, binary_kernel, nullptr};

}  // namespace q8::rt
