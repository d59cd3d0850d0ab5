// Whole-model fp32 latency at batch 1 through q8::Session, on the embedded model and, where
// ../shared is present, the reference models. Items/s is inferences per second.
#include <benchmark/benchmark.h>

#include <fstream>
#include <random>
#include <string>

#include "q8/q8.h"

namespace {

void run_model(benchmark::State& state, const std::string& path) {
  if (!std::ifstream(path).good()) {
    state.SkipWithError(("model not found: " + path).c_str());
    return;
  }
  q8::Model model = q8::Model::load(path);
  std::vector<q8::Tensor> inputs;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (const auto& t : model.inputs()) {
    std::vector<int64_t> s = t.shape;
    if (!s.empty() && s[0] < 0) s[0] = 1;
    q8::Tensor x(s);
    for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = normal(rng);
    inputs.push_back(std::move(x));
  }
  q8::Session session(model, {static_cast<int>(state.range(0))});
  std::vector<q8::Tensor> outputs;
  session.run(inputs, outputs);
  for (auto _ : state) session.run(inputs, outputs);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(q8::active_isa());
}

const std::string kSrc = Q8_SOURCE_DIR;

}  // namespace

BENCHMARK_CAPTURE(run_model, fashion_cnn_fp32, kSrc + "/models/fashion_cnn.onnx")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_model, seed_fp32, kSrc + "/../shared/models/seed.onnx")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_model, resnet18_fp32, kSrc + "/../shared/models/resnet18.onnx")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_model, mobilenet_v2_fp32, kSrc + "/../shared/models/mobilenet_v2.onnx")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
