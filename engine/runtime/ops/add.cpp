// Add in fp32 (with a fused Relu/Clip): same-shape, per-channel (a bias on NHWC) or broadcast.
#include "runtime/ops/ops.h"

#include "kernels/f32.h"
#include "kernels/f32_misc.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

// A broadcast operand that is one value per channel of a 4-D output ([C], [1,C,1,1], ...).
bool per_channel(const Shape& ys, const Shape& s) {
  if (ys.size() != 4 || s.size() > 4 || numel(s) != static_cast<size_t>(ys[1])) return false;
  Shape full(4 - s.size(), 1);
  full.insert(full.end(), s.begin(), s.end());
  return full[0] == 1 && full[1] == ys[1] && full[2] == 1 && full[3] == 1;
}

// Which of the three ways an Add runs, from the shapes: element by element, a per-channel row
// broadcast on NHWC, or the general broadcast.
enum class AddForm { SameShape, PerChannel, Broadcast };
AddForm add_form(const Graph& g, const Node& n) {
  const Shape& ys = shape_of(g, n.outputs[0]);
  const Shape &as = shape_of(g, n.inputs[0]), &bs = shape_of(g, n.inputs[1]);
  if (as == ys && bs == ys) return AddForm::SameShape;
  if ((as == ys && per_channel(ys, bs)) || (bs == ys && per_channel(ys, as))) return AddForm::PerChannel;
  return AddForm::Broadcast;
}

void plan_add(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const Activation act = activation_of(n);
  const Shape& ys = shape_of(g, n.outputs[0]);
  const int va = n.inputs[0], vb = n.inputs[1];
  const Shape &as = shape_of(g, va), &bs = shape_of(g, vb);
  const kern::F32Kernels* k = pb.d.f32;
  const size_t total = numel(ys);
  const AddForm form = add_form(g, n);
  if (form == AddForm::SameShape) {
    // Same shape: work in the layout the first operand already has.
    const Layout l = g.values[va].constant ? pb.native[vb] : pb.native[va];
    const int a = pb.get(va, l), b = pb.get(vb, l);
    const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
    pb.define(n.outputs[0], l, y);
    Step& s = pb.add_step(n.name, total, 64, {a, b}, {y});
    s.fn = [&A = pb.addresses(), k, a, b, y, act](size_t i0, size_t i1) {
      k->add(i1 - i0, A.f32(a) + i0, A.f32(b) + i0, A.f32(y) + i0, act.lo, act.hi);
    };
    return;
  }
  if (form == AddForm::PerChannel) {
    // A per-channel term on NHWC is a row broadcast: C contiguous values added to every pixel.
    const int big = pb.get(as == ys ? va : vb, Layout::NHWC), small = pb.get(as == ys ? vb : va, Layout::Plain);
    const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
    pb.define(n.outputs[0], Layout::NHWC, y);
    const size_t C = ys[1], rows = total / C;
    Step& s = pb.add_step(n.name, rows, 1, {big, small}, {y});
    s.fn = [&A = pb.addresses(), k, big, small, y, C, act](size_t r0, size_t r1) {
      k->add_row(r1 - r0, C, A.f32(big) + r0 * C, A.f32(small), A.f32(y) + r0 * C, act.lo, act.hi);
    };
    return;
  }
  if (ys.size() > 8) fail(g, n, "broadcasting above rank 8 is not supported");
  const int a = pb.get(va, Layout::Plain), b = pb.get(vb, Layout::Plain);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::Plain, y);
  auto padded = [&](const Shape& s) {
    std::vector<int64_t> r(ys.size() - s.size(), 1);
    r.insert(r.end(), s.begin(), s.end());
    return r;
  };
  Step& s = pb.add_step(n.name, 1, 1, {a, b}, {y});
  s.fn = [&A = pb.addresses(), a, b, y, yd = std::vector<int64_t>(ys), ad = padded(as), bd = padded(bs), act](size_t,
                                                                                                              size_t) {
    kern::f32_broadcast_add(yd.size(), yd.data(), ad.data(), A.f32(a), bd.data(), A.f32(b), 1.f, A.f32(y), act.lo,
                            act.hi);
  };
}

std::string add_kernel(const Graph& g, const Node& n, const Dispatch& d) {
  switch (add_form(g, n)) {
    case AddForm::SameShape: return d.f32->add.name;
    case AddForm::PerChannel: return d.f32->add_row.name;
    case AddForm::Broadcast: break;
  }
  return "f32_broadcast_add";
}

}  // namespace

const OpRuntime kAddRuntime = {nullptr, plan_add, add_kernel, nullptr};

}  // namespace q8::rt
