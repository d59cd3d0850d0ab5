// libFuzzer target: arbitrary bytes as an ONNX model.
//
// Every input must either import or be refused with q8::Error. What imports is pushed further:
// the load-time passes and shape inference on a copy of the graph, then Model::load_from_memory
// and one Session::run on a zero input of the declared shape (dynamic dims = 1) when that input
// is small, so the fuzzer reaches the planner and the kernels, not just the parser.
// Any other exception, a sanitizer report, a leak or a timeout is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "ir/graph.h"
#include "onnx/onnx_importer.h"
#include "passes/passes.h"
#include "q8/q8.h"

namespace {

// Small caps keep each execution fast; the real limits are tested elsewhere.
constexpr int64_t kMaxRunElements = int64_t{1} << 16;  // per input, for the Session::run step

q8::onnx::ImportLimits fuzz_limits() {
  q8::onnx::ImportLimits lim;
  lim.max_file_bytes = int64_t{4} << 20;
  lim.max_nodes = 2000;
  lim.max_tensor_bytes = int64_t{16} << 20;
  return lim;
}

bool small_input(const std::vector<int64_t>& shape, std::vector<int64_t>& concrete) {
  int64_t n = 1;
  concrete.clear();
  for (int64_t d : shape) {
    int64_t c = d < 0 ? 1 : d;
    if (__builtin_mul_overflow(n, c, &n) || n > kMaxRunElements) return false;
    concrete.push_back(c);
  }
  return true;
}

}  // namespace

// The plan's working-memory cap (engine/runtime/plan.cpp) well under libFuzzer's -malloc_limit_mb, so
// a model whose intermediates are huge is refused by q8 rather than reported as an OOM.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("Q8_MAX_WORKSPACE_MB", "256", 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const q8::onnx::ImportLimits lim = fuzz_limits();
  if (static_cast<int64_t>(size) > lim.max_file_bytes) return 0;
  try {
    q8::ir::Graph g = q8::onnx::import_model(data, size, "fuzz.onnx", lim);
    q8::ir::optimize(g);
    q8::ir::infer_shapes(g, q8::ir::input_shapes_for_batch(g, 1));
  } catch (const q8::Error&) {
    return 0;  // refused: fine
  }
  // It imported and its shapes check out: load it through the public API and run it once.
  try {
    q8::Model model = q8::Model::load_from_memory(data, size, "fuzz.onnx");
    std::vector<q8::Tensor> inputs;
    for (const q8::TensorInfo& in : model.inputs()) {
      std::vector<int64_t> shape;
      if (!small_input(in.shape, shape)) return 0;
      inputs.emplace_back(shape);
    }
    // Output extents can be far larger than the input (padding, Gemm widths): cap what a run may
    // produce by the declared output shapes where known.
    for (const q8::TensorInfo& out : model.outputs()) {
      std::vector<int64_t> shape;
      if (!small_input(out.shape, shape)) return 0;
    }
    q8::Session session(model, q8::SessionOptions(1));
    std::vector<q8::Tensor> outputs = session.run(inputs);
    if (outputs.size() != model.outputs().size()) __builtin_trap();
  } catch (const q8::Error&) {
  }
  return 0;
}
