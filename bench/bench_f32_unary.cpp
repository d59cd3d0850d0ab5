// fp32 element-wise activations (F32Kernels::unary) and Softmax (its exp through the table), for every table this
// CPU runs: ns per element on 16384 floats (64 KiB in, 64 KiB out: L2-resident), inputs drawn
// from each function's interesting range. One thread.
//
//   q8_bench_f32_unary --benchmark_filter=Exp
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/f32.h"
#include "kernels/f32_misc.h"
#include "tests/kernels/cpu_support.h"

namespace {

using q8::kern::F32Kernels;
using q8::kern::UnaryKind;
using q8::kern::UnaryParams;

constexpr size_t kElements = 16384;

std::vector<float> random_floats(float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(kElements);
  for (float& f : v) f = dist(rng);
  return v;
}

void bm_unary(benchmark::State& state, const F32Kernels* k, UnaryParams p, float lo, float hi) {
  const std::vector<float> x = random_floats(lo, hi, 1);
  std::vector<float> out(kElements);
  for (auto _ : state) {
    k->unary(kElements, x.data(), out.data(), p);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["ns/elem"] = benchmark::Counter(static_cast<double>(state.iterations() * kElements),
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void bm_softmax(benchmark::State& state, const F32Kernels* k, size_t len) {
  const std::vector<float> x = random_floats(-10.f, 10.f, 2);
  std::vector<float> out(kElements);
  const size_t rows = kElements / len;
  for (auto _ : state) {
    q8::kern::f32_softmax(*k, len, 1, x.data(), out.data(), 0, rows, false);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["ns/elem"] = benchmark::Counter(static_cast<double>(state.iterations() * rows * len),
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void register_all() {
  struct Case {
    const char* name;
    UnaryParams p;
    float lo, hi;
  };
  const Case cases[] = {
      {"Sigmoid", {UnaryKind::Sigmoid, 0.f, 0.f}, -10.f, 10.f},
      {"Tanh", {UnaryKind::Tanh, 0.f, 0.f}, -5.f, 5.f},
      {"HardSigmoid", {UnaryKind::HardSigmoid, 0.2f, 0.5f}, -5.f, 5.f},
      {"HardSwish", {UnaryKind::HardSwish, 0.f, 0.f}, -5.f, 5.f},
      {"LeakyRelu", {UnaryKind::LeakyRelu, 0.1f, 0.f}, -5.f, 5.f},
      {"Elu", {UnaryKind::Elu, 1.f, 0.f}, -5.f, 5.f},
      {"Erf", {UnaryKind::Erf, 0.f, 0.f}, -4.f, 4.f},
      {"Sqrt", {UnaryKind::Sqrt, 0.f, 0.f}, 0.f, 100.f},
      {"Exp", {UnaryKind::Exp, 0.f, 0.f}, -20.f, 20.f},
      {"Silu", {UnaryKind::Silu, 0.f, 0.f}, -10.f, 10.f},
  };
  const std::pair<const char*, const F32Kernels* (*)()> all[] = {
      {"scalar", q8::kern::f32_kernels_scalar},
      {"avx2", q8::kern::f32_kernels_avx2},
      {"avx512", q8::kern::f32_kernels_avx512},
      {"neon", q8::kern::f32_kernels_neon},
  };
  for (const auto& [isa, get] : all) {
    if (!q8_test::cpu_supports(isa) || !get()) continue;
    for (const Case& c : cases)
      benchmark::RegisterBenchmark((std::string(c.name) + "/" + isa).c_str(), bm_unary, get(), c.p, c.lo, c.hi);
    benchmark::RegisterBenchmark((std::string("Softmax_rows_of_1000/") + isa).c_str(), bm_softmax, get(), size_t{1000});
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
