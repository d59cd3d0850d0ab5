// A graph made ready to run: weights packed once, and a plan for the current input shapes that
// is re-made only when the shapes change. Sessions, the quantizer's calibration and `analyze`
// all run graphs through one Runner each, so plan-then-run is written once.
#pragma once

#include <memory>
#include <vector>

#include "ir/graph.h"
#include "runtime/dispatch.h"
#include "runtime/plan.h"
#include "runtime/thread_pool.h"

namespace q8::rt {

// The graph a plan runs for these graph-input shapes (Runner::prepare plans it; Model::describe
// lists it): `g` with its shapes inferred, then the rewrite that needs them. ShuffleNet's channel
// shuffle, Reshape [N,C,H,W] -> [N,g,C/g,H,W], Transpose(0,2,1,3,4), Reshape back to [N,C,H,W],
// becomes one ChannelShuffle node, which keeps NHWC tensors NHWC (exported models compute those
// targets from Shape, so the pattern shows only at known shapes). The last Reshape's node becomes
// the ChannelShuffle, named after the Transpose; the other two are left unread
// (Graph::unread_nodes: not planned), so node indices, which the packed weights go by, stay as
// they were.
ir::Graph graph_for_shapes(const ir::Graph& g, const std::vector<ir::Shape>& input_shapes);

class Runner {
 public:
  // `g` is lowered for the runtime (passes' lower_for_runtime) and must outlive the Runner.
  Runner(const ir::Graph& g, const Dispatch& d);

  // Plans for these graph-input shapes unless the current plan has them already; returns true
  // when it made a new plan (output sizes may then differ).
  bool prepare(const std::vector<ir::Shape>& input_shapes);
  bool prepared() const { return plan_ != nullptr; }
  // The graph with shapes inferred for the last prepare(), and its plan.
  const ir::Graph& planned() const { return *planned_; }
  const Plan& plan() const { return *plan_; }
  // Elements of graph output i at the planned shapes.
  size_t output_numel(size_t i) const;

  // Runs the current plan: plain C-order float inputs and outputs sized by output_numel().
  void run(ThreadPool& pool, const std::vector<const float*>& inputs, const std::vector<float*>& outputs,
           double* step_ms = nullptr);

 private:
  const ir::Graph& graph_;
  const Dispatch& dispatch_;
  PackedWeights weights_;
  std::vector<ir::Shape> shapes_;
  std::unique_ptr<ir::Graph> planned_;
  std::unique_ptr<Plan> plan_;
};

}  // namespace q8::rt
