// The state behind q8::Model, for the engine's own files (api.cpp, analyze.cpp).
#pragma once

#include <vector>

#include "ir/graph.h"
#include "q8/q8.h"

namespace q8 {
namespace detail {

struct ModelImpl {
  ir::Graph source;  // simplified, standard ONNX ops (QDQ when quantized): what save() writes
  ir::Graph graph;   // the runtime form: lowered and fused; shapes not yet inferred
  std::vector<TensorInfo> inputs, outputs;
  bool quantized = false;
};

}  // namespace detail
}  // namespace q8
