// Slice, Transpose and ChannelShuffle: strided copies of float or uint8 tensors
// (kern::strided_copy). A Slice of a 4-D tensor works in whatever layout its input has
// (ShuffleNet's channel split stays NHWC); a Transpose reorders C-order axes, or is a view where
// NHWC already holds the order wanted; a ChannelShuffle (made by rt::graph_for_shapes) permutes
// each pixel's channels on an NHWC tensor (kern::channel_shuffle), so the Concat before it and the
// Slices and Convs after it stay NHWC, and moves whole planes of a C-order one.
#include "ir/shape_inference.h"
#include "kernels/f32_misc.h"
#include "runtime/ops/ops.h"

namespace q8::rt {

using ir::Graph;
using ir::Node;
using ir::Shape;

namespace {

// The copy's axes with those of size 1 dropped and each one merged into the next where the source
// steps over the pair as over one axis (stride_k = stride_k+1 * dim_k+1): the same elements in the
// same order, in fewer and longer rows. ShuffleNet's Transpose [1,2,58,28,28] -> [1,58,2,28,28]
// copies 116 rows of 784 elements instead of 3248 of 28.
void merge_axes(std::vector<int64_t>& dims, std::vector<int64_t>& strides) {
  std::vector<int64_t> d, s;
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] == 1) continue;
    if (!d.empty() && s.back() == strides[k] * dims[k]) {
      d.back() *= dims[k];
      s.back() = strides[k];
    } else {
      d.push_back(dims[k]);
      s.push_back(strides[k]);
    }
  }
  if (d.empty()) d = {1}, s = {1};
  dims = std::move(d);
  strides = std::move(s);
}

// A step copying `out_dims` from the input buffer at element `base` with the given strides.
void add_copy_step(Plan::Builder& pb, const Node& n, int x, int y, std::vector<int64_t> out_dims,
                   std::vector<int64_t> in_strides, int64_t base) {
  if (out_dims.size() > 8) fail(pb.g, n, "rank above 8 is not supported");
  merge_axes(out_dims, in_strides);
  const size_t elem = ir::dtype_size(pb.g.values[n.outputs[0]].dtype);
  size_t rows = 1;
  for (size_t k = 0; k + 1 < out_dims.size(); ++k) rows *= static_cast<size_t>(out_dims[k]);
  Step& s = pb.add_step(n.name, rows, 1, {x}, {y});
  s.fn = [&A = pb.addresses(), x, y, out_dims, in_strides, base, elem](size_t r0, size_t r1) {
    kern::strided_copy(out_dims.size(), out_dims.data(), in_strides.data(), elem,
                       A.u8(x) + base * static_cast<int64_t>(elem), A.u8(y), r0, r1);
  };
}

void plan_slice(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const int v = n.inputs[0];
  const Shape& xs = shape_of(g, v);
  ir::SliceSpec s = ir::resolve_slice(g, n, xs);
  Shape in_dims = xs;
  const Layout l = xs.size() == 4 && !g.values[v].constant ? pb.native[v] : Layout::Plain;
  if (l == Layout::NHWC)  // the same slice over the axes as they lie in memory: N, H, W, C
    for (auto* a : {&s.start, &s.step, &s.out, &in_dims}) *a = {(*a)[0], (*a)[2], (*a)[3], (*a)[1]};
  const std::vector<int64_t> st = ir::c_order_strides(in_dims);
  std::vector<int64_t> in_strides(st.size());
  int64_t base = 0;
  for (size_t k = 0; k < st.size(); ++k) base += s.start[k] * st[k], in_strides[k] = s.step[k] * st[k];
  const int x = pb.get(v, l);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], l, y);
  add_copy_step(pb, n, x, y, s.out, in_strides, base);
}

// The Transposes around a channels-last block (ConvNeXt's, to NHWC and back) move no data: a
// 4-D tensor in the engine's NHWC layout holds, in C order, the bytes of its transpose by
// (0,2,3,1), and a tensor in C order those of its transpose by (0,3,1,2) in NHWC.
enum class TransposeView { None, ToNhwc, ToNchw };
TransposeView transpose_view(const Graph& g, const Node& n) {
  const int v = n.inputs[0];
  const Shape& xs = shape_of(g, v);
  // Layout conversions move float32 or uint8 elements only.
  const ir::DType t = g.values[v].dtype;
  if (xs.size() != 4 || g.values[v].constant || (t != ir::DType::Float32 && t != ir::DType::Uint8))
    return TransposeView::None;
  const std::vector<int64_t> perm = ir::transpose_perm(g, n, xs.size());
  if (perm == std::vector<int64_t>{0, 2, 3, 1}) return TransposeView::ToNhwc;
  if (perm == std::vector<int64_t>{0, 3, 1, 2}) return TransposeView::ToNchw;
  return TransposeView::None;
}

void plan_transpose(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const int v = n.inputs[0];
  switch (transpose_view(g, n)) {
    case TransposeView::ToNhwc: pb.define(n.outputs[0], Layout::Plain, pb.get(v, Layout::NHWC)); return;
    case TransposeView::ToNchw: pb.define(n.outputs[0], Layout::NHWC, pb.get(v, Layout::Plain)); return;
    case TransposeView::None: break;
  }
  const Shape& xs = shape_of(g, v);
  const std::vector<int64_t> perm = ir::transpose_perm(g, n, xs.size());
  const std::vector<int64_t> st = ir::c_order_strides(xs);
  std::vector<int64_t> in_strides(perm.size());
  for (size_t k = 0; k < perm.size(); ++k) in_strides[k] = st[perm[k]];
  const int x = pb.get(v, Layout::Plain);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::Plain, y);
  add_copy_step(pb, n, x, y, shape_of(g, n.outputs[0]), in_strides, 0);
}

// Output channel i * g + j is input channel j * C/g + i: on NHWC, per pixel; in C order, the strided
// copy of [N, C/g, g, H*W] whose source steps are (C*H*W, H*W, C/g*H*W, 1), in rows of a plane.
void plan_channel_shuffle(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const int v = n.inputs[0];
  const Shape& xs = shape_of(g, v);  // [N,C,H,W] (its shape rule)
  const int64_t N = xs[0], C = xs[1], HW = xs[2] * xs[3], group = n.attr_int("group", 1), per_group = C / group;
  const Layout l = g.values[v].constant ? Layout::Plain : pb.native[v];
  const int x = pb.get(v, l);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], l, y);
  if (l == Layout::Plain) {
    add_copy_step(pb, n, x, y, {N, per_group, group, HW}, {C * HW, HW, per_group * HW, 1}, 0);
    return;
  }
  const size_t elem = ir::dtype_size(g.values[v].dtype);
  Step& s = pb.add_step(n.name, static_cast<size_t>(N * HW), 1, {x}, {y});
  s.fn = [&A = pb.addresses(), x, y, group = static_cast<size_t>(group), per_group = static_cast<size_t>(per_group),
          elem](size_t p0, size_t p1) { kern::channel_shuffle(group, per_group, elem, A.u8(x), A.u8(y), p0, p1); };
}

std::string copy_kernel(const Graph&, const Node&, const Dispatch&) { return "strided_copy"; }

// Named for the NHWC case, the one ShuffleNet's convolution outputs take; a C-order input runs
// strided_copy.
std::string channel_shuffle_kernel(const Graph&, const Node&, const Dispatch&) { return "channel_shuffle"; }

std::string transpose_kernel(const Graph& g, const Node& n, const Dispatch&) {
  return transpose_view(g, n) == TransposeView::None ? "strided_copy" : "view (no copy)";
}

}  // namespace

const OpRuntime kSliceRuntime = {nullptr, plan_slice, copy_kernel, nullptr};
const OpRuntime kTransposeRuntime = {nullptr, plan_transpose, transpose_kernel, nullptr};
const OpRuntime kChannelShuffleRuntime = {nullptr, plan_channel_shuffle, channel_shuffle_kernel, nullptr};

}  // namespace q8::rt
