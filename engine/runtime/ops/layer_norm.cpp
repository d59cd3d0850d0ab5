// LayerNormalization in fp32 over the axes from "axis" on, as rows of a C-order tensor (the
// portable kernel); the optional Mean and InvStdDev outputs hold one value per row.
#include "runtime/ops/ops.h"

#include "kernels/f32_misc.h"

namespace q8::rt {

using ir::Graph;
using ir::Node;
using ir::Shape;

namespace {

void plan_layer_norm(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const Shape& xs = shape_of(g, n.inputs[0]);
  const size_t axis = static_cast<size_t>(n.attr_int("axis", -1));  // non-negative after shape inference
  size_t rows = 1, len = 1;
  for (size_t a = 0; a < xs.size(); ++a) (a < axis ? rows : len) *= static_cast<size_t>(xs[a]);
  const float eps = n.attr_float("epsilon", 1e-5f);
  const int x = pb.get(n.inputs[0], Layout::Plain), scale = pb.get(n.inputs[1], Layout::Plain);
  const bool has_bias = n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue;
  const int bias = has_bias ? pb.get(n.inputs[2], Layout::Plain) : -1;
  std::vector<int> outs;
  for (int v : n.outputs) {
    outs.push_back(pb.new_buf(pb.bytes_of(v)));
    pb.define(v, Layout::Plain, outs.back());
  }
  outs.resize(3, -1);
  Step& s = pb.add_step(n.name, rows, 1, {x, scale, bias}, outs);
  s.fn = [&A = pb.addresses(), x, scale, bias, outs, len, eps](size_t r0, size_t r1) {
    kern::f32_layer_norm(len, A.f32(x), A.f32(scale), bias >= 0 ? A.f32(bias) : nullptr, eps, A.f32(outs[0]),
                         outs[1] >= 0 ? A.f32(outs[1]) : nullptr, outs[2] >= 0 ? A.f32(outs[2]) : nullptr, r0, r1);
  };
}

std::string layer_norm_kernel(const Graph&, const Node&, const Dispatch&) { return "f32_layer_norm"; }

}  // namespace

const OpRuntime kLayerNormRuntime = {nullptr, plan_layer_norm, layer_norm_kernel, nullptr};

}  // namespace q8::rt
