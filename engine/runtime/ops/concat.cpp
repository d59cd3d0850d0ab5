// Concat: inputs joined along one axis, as rows (kern::concat_rows). Channels of NHWC tensors
// join pixel by pixel, so a channel concat of convolution outputs (Inception, DenseNet, UNet)
// needs no layout change; every other case joins C-order tensors.
#include "runtime/ops/ops.h"

#include "kernels/f32_misc.h"

namespace q8::rt {

using ir::Graph;
using ir::Node;
using ir::Shape;

namespace {

void plan_concat(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const Shape& ys = shape_of(g, n.outputs[0]);
  const size_t axis = static_cast<size_t>(n.attr_int("axis", 0));  // non-negative after shape inference
  const size_t elem = ir::dtype_size(g.values[n.outputs[0]].dtype);
  // NHWC when joining channels of 4-D tensors whose first input a kernel wrote as NHWC.
  const int v0 = n.inputs[0];
  const Layout l = ys.size() == 4 && axis == 1 && !g.values[v0].constant ? pb.native[v0] : Layout::Plain;
  size_t rows = 1, inner = 1;  // rows: the extent before the joined axis; inner: after it
  if (l == Layout::NHWC) {
    rows = static_cast<size_t>(ys[0] * ys[2] * ys[3]);
  } else {
    for (size_t a = 0; a < axis; ++a) rows *= static_cast<size_t>(ys[a]);
    for (size_t a = axis + 1; a < ys.size(); ++a) inner *= static_cast<size_t>(ys[a]);
  }
  std::vector<int> in;
  std::vector<size_t> row_bytes;
  for (int v : n.inputs) {
    in.push_back(pb.get(v, l));
    row_bytes.push_back(static_cast<size_t>(shape_of(g, v)[axis]) * inner * elem);
  }
  const size_t out_row = static_cast<size_t>(ys[axis]) * inner * elem;
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], l, y);
  Step& s = pb.add_step(n.name, rows, 1, in, {y});
  // The input addresses, gathered when the plan binds (run() must not allocate).
  auto ptrs = std::make_shared<std::vector<const uint8_t*>>(in.size());
  s.bind = [&A = pb.addresses(), ptrs, in] {
    for (size_t i = 0; i < in.size(); ++i) (*ptrs)[i] = A.u8(in[i]);
  };
  s.fn = [&A = pb.addresses(), ptrs, row_bytes, y, out_row](size_t r0, size_t r1) {
    kern::concat_rows(r0, r1, ptrs->size(), ptrs->data(), row_bytes.data(), A.u8(y), out_row);
  };
}

std::string concat_kernel(const Graph&, const Node&, const Dispatch&) { return "concat_rows"; }

}  // namespace

const OpRuntime kConcatRuntime = {nullptr, plan_concat, concat_kernel, nullptr};

}  // namespace q8::rt
