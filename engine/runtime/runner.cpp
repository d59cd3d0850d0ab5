#include "runtime/runner.h"

#include "ir/shape_inference.h"

namespace q8::rt {

Runner::Runner(const ir::Graph& g, const Dispatch& d) : graph_(g), dispatch_(d), weights_(pack_weights(g, d)) {}

bool Runner::prepare(const std::vector<ir::Shape>& input_shapes) {
  if (plan_ && shapes_ == input_shapes) return false;
  auto planned = std::make_unique<ir::Graph>(graph_);
  ir::infer_shapes(*planned, input_shapes);
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
