// BatchNormalization that no Conv absorbed: a per-channel affine map, x * scale + shift, in fp32.
#include "runtime/ops/ops.h"

#include <cmath>

#include "kernels/f32_misc.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

AlignedBuffer pack_batch_norm(const Graph& g, const Node& n, const Dispatch&) {
  // y = (x - mean) / sqrt(var + eps) * gamma + beta = x * scale + shift
  const int64_t C = const_input(g, n, 1)->numel();
  const std::vector<float> scale = ir::batch_norm_scale(n, *const_input(g, n, 1), *const_input(g, n, 4));
  AlignedBuffer buf(2 * C * sizeof(float));
  float* ss = buf.as<float>();
  for (int64_t c = 0; c < C; ++c) {
    ss[c] = scale[c];
    ss[C + c] = const_input(g, n, 2)->data<float>()[c] - const_input(g, n, 3)->data<float>()[c] * scale[c];
  }
  return buf;
}

void plan_batch_norm(Plan::Builder& pb, size_t i, const Node& n) {
  const Graph& g = pb.g;
  const Shape& xs = shape_of(g, n.inputs[0]);
  const float* ss = pb.w.per_node[i].as<float>();
  // On the layout its input has: DenseNet's, after each Concat of NHWC convolution outputs and
  // before the next convolution, would otherwise convert the growing tensor to NCHW and back.
  // NHWC is `pixels` blocks of C channels of 1 value; C order, N blocks of C channels of H*W.
  const Layout l = xs.size() == 4 && pb.native[n.inputs[0]] == Layout::NHWC ? Layout::NHWC : Layout::Plain;
  const int x = pb.get(n.inputs[0], l);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], l, y);
  const size_t C = xs[1], total = numel(xs);
  const size_t outer = l == Layout::NHWC ? (C ? total / C : 0) : static_cast<size_t>(xs[0]);
  const size_t inner = outer && C ? total / (outer * C) : 0;
  Step& s = pb.add_step(n.name, outer, 1, {x}, {y});
  s.fn = [&A = pb.addresses(), x, y, C, inner, ss](size_t n0, size_t n1) {
    kern::f32_channel_affine(n1 - n0, C, inner, A.f32(x) + n0 * C * inner, ss, ss + C, A.f32(y) + n0 * C * inner);
  };
}

std::string batch_norm_kernel(const Graph&, const Node&, const Dispatch&) { return "f32_channel_affine"; }

}  // namespace

const OpRuntime kBatchNormRuntime = {pack_batch_norm, plan_batch_norm, batch_norm_kernel, nullptr};

}  // namespace q8::rt
