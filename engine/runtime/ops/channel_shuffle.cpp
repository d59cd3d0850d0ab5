// ChannelShuffle (fuse_channel_shuffle's node): in whatever layout its input has. NHWC permutes
// each pixel's channels (ShuffleNet's halves interleaved), so the Concat before it and the Slices
// and Convs after it stay NHWC; a C-order tensor moves whole planes.
#include "kernels/f32_misc.h"
#include "runtime/ops/ops.h"

namespace q8::rt {

using ir::Graph;
using ir::Node;
using ir::Shape;

namespace {

void plan_channel_shuffle(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const int v = n.inputs[0];
  const Shape& xs = shape_of(g, v);  // [N,C,H,W] (its shape rule)
  const size_t N = static_cast<size_t>(xs[0]), C = static_cast<size_t>(xs[1]), HW = static_cast<size_t>(xs[2] * xs[3]),
               group = static_cast<size_t>(n.attr_int("group", 1));
  const size_t elem = ir::dtype_size(g.values[v].dtype);
  const Layout l = g.values[v].constant ? Layout::Plain : pb.native[v];
  // NHWC: a block of channels per pixel, each one element; C order: per image, each a plane.
  const size_t blocks = l == Layout::NHWC ? N * HW : N, bytes = l == Layout::NHWC ? elem : HW * elem;
  const int x = pb.get(v, l);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], l, y);
  Step& s = pb.add_step(n.name, blocks, 1, {x}, {y});
  s.fn = [&A = pb.addresses(), x, y, group, per_group = C / group, bytes](size_t o0, size_t o1) {
    kern::channel_shuffle(group, per_group, bytes, A.u8(x), A.u8(y), o0, o1);
  };
}

std::string channel_shuffle_kernel(const Graph&, const Node&, const Dispatch&) { return "channel_shuffle"; }

}  // namespace

const OpRuntime kChannelShuffleRuntime = {nullptr, plan_channel_shuffle, channel_shuffle_kernel, nullptr};

}  // namespace q8::rt
