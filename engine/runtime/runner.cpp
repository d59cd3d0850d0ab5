#include "runtime/runner.h"

#include "ir/shape_inference.h"

namespace q8::rt {

namespace {

void fuse_channel_shuffle(ir::Graph& g) {
  using ir::Node;
  using ir::Op;
  const std::vector<int> made_by = g.producers();
  const ir::ConsumerIndex readers(g);
  // The node of kind `op` producing value v, when node `by` is v's only reader; else null.
  auto sole_producer = [&](int v, int by, Op op) -> Node* {
    const int p = v == ir::kNoValue ? -1 : made_by[v];
    if (p < 0 || g.nodes[p].op != op || readers.sole_reader(g, v) != by) return nullptr;
    return &g.nodes[p];
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& back = g.nodes[i];
    if (back.op != Op::Reshape || g.values[back.outputs[0]].is_const()) continue;
    Node* t = sole_producer(back.inputs[0], static_cast<int>(i), Op::Transpose);
    if (!t) continue;
    Node* split = sole_producer(t->inputs[0], made_by[t->outputs[0]], Op::Reshape);
    if (!split) continue;
    const int x = split->inputs[0];
    const ir::Shape &xs = g.values[x].shape, &ss = g.values[split->outputs[0]].shape;
    if (xs.size() != 4 || ss.size() != 5 || g.values[back.outputs[0]].shape != xs) continue;
    if (ir::transpose_perm(g, *t, 5) != std::vector<int64_t>{0, 2, 1, 3, 4}) continue;
    if (ss != ir::Shape{xs[0], ss[1], ss[2], xs[2], xs[3]} || ss[1] * ss[2] != xs[1]) continue;
    back.op = Op::ChannelShuffle;
    back.name = t->name;
    back.inputs = {x};
    back.attrs.clear();
    back.attrs["group"] = ir::Attribute{ir::Attribute::Kind::Int, ss[1], 0.f, {}, {}, {}, {}};
  }
}

}  // namespace

ir::Graph graph_for_shapes(const ir::Graph& g, const std::vector<ir::Shape>& input_shapes) {
  ir::Graph shaped = g;
  ir::infer_shapes(shaped, input_shapes);
  fuse_channel_shuffle(shaped);
  return shaped;
}

Runner::Runner(const ir::Graph& g, const Dispatch& d) : graph_(g), dispatch_(d), weights_(pack_weights(g, d)) {}

bool Runner::prepare(const std::vector<ir::Shape>& input_shapes) {
  if (plan_ && shapes_ == input_shapes) return false;
  auto planned = std::make_unique<ir::Graph>(graph_for_shapes(graph_, input_shapes));
  plan_.reset();  // the old plan's arena goes before the new one is allocated
  plan_ = std::make_unique<Plan>(*planned, weights_, dispatch_);
  planned_ = std::move(planned);
  shapes_ = input_shapes;
  return true;
}

size_t Runner::output_numel(size_t i) const {
  return static_cast<size_t>(ir::shape_numel(planned_->values[planned_->outputs[i]].shape));
}

void Runner::run(ThreadPool& pool, const std::vector<const float*>& inputs, const std::vector<float*>& outputs,
                 double* step_ms) {
  plan_->run(pool, inputs, outputs, step_ms);
}

}  // namespace q8::rt
