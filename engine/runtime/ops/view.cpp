// Flatten and Reshape: a C-order tensor reshaped moves no data; the output shares the buffer.
#include "runtime/ops/ops.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

void plan_view(Plan::Builder& pb, size_t, const Node& n) {
  pb.define(n.outputs[0], Layout::Plain, pb.get(n.inputs[0], Layout::Plain));
}

std::string view_kernel(const Graph&, const Node&, const Dispatch&) { return "view (no copy)"; }

}  // namespace

const OpRuntime kViewRuntime = {nullptr, plan_view, view_kernel, nullptr};

}  // namespace q8::rt
