// Load time against node count: chains of N nodes (Relu, Identity, Conv+Relu pairs) loaded from
// memory through q8::Model::load_from_memory, and the int8 quantizer on the Conv+Relu chain.
// The passes are linear in the graph's size, so time per node (ns/node) stays flat as N grows;
// a pass that rescans the graph per node would grow it N-fold.
#include <benchmark/benchmark.h>

#include <string>

#include "q8/q8.h"
#include "tests/onnx_model_builder.h"

namespace {

enum Chain { kRelu, kIdentity, kConvRelu };

std::string chain_model(Chain kind, int n) {
  q8test::OnnxModelBuilder b;
  b.input("t0", {1, 4, 1, 1});
  b.init_f("w", {4, 4, 1, 1}, std::vector<float>(16, 0.25f));
  for (int i = 0; i < n; ++i) {
    const std::string in = "t" + std::to_string(i), out = "t" + std::to_string(i + 1), name = "n" + std::to_string(i);
    const char* op = kind == kRelu ? "Relu" : kind == kIdentity ? "Identity" : (i % 2 ? "Relu" : "Conv");
    if (op == std::string("Conv"))
      b.node(op, {in, "w"}, {out}, name);
    else
      b.node(op, {in}, {out}, name);
  }
  b.output("t" + std::to_string(n));
  return b.bytes();
}

void load_chain(benchmark::State& state, Chain kind) {
  const int n = static_cast<int>(state.range(0));
  const std::string bytes = chain_model(kind, n);
  for (auto _ : state) benchmark::DoNotOptimize(q8::Model::load_from_memory(bytes.data(), bytes.size(), "chain.onnx"));
  state.counters["ns/node"] = benchmark::Counter(
      static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void quantize_chain(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::string bytes = chain_model(kConvRelu, n);
  const q8::Model model = q8::Model::load_from_memory(bytes.data(), bytes.size(), "chain.onnx");
  const q8::Tensor calib({2, 4, 1, 1}, {1, -1, 0.5f, 2, -0.5f, 1, 3, -2});
  for (auto _ : state) benchmark::DoNotOptimize(q8::quantize(model, {calib}));
  state.counters["ns/node"] = benchmark::Counter(
      static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

}  // namespace

BENCHMARK_CAPTURE(load_chain, relu, kRelu)->RangeMultiplier(10)->Range(1000, 100000)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_chain, identity, kIdentity)
    ->RangeMultiplier(10)
    ->Range(1000, 100000)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_chain, conv_relu, kConvRelu)
    ->RangeMultiplier(10)
    ->Range(1000, 100000)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(quantize_chain)->RangeMultiplier(10)->Range(1000, 100000)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
