// int8 non-GEMM kernels at the reference models' layer shapes, for every table this CPU runs:
// depthwise 3x3 at MobileNetV2's layers (MAC/s counts the 9 multiply-adds per output element;
// bytes/s counts input read once plus output written; dwconv3x3_f32 runs the fp32 table's
// depthwise at the same shapes, for comparison), global average pool at the heads of
// MobileNetV2 and ResNet, max pool / add / quantize at a few typical sizes, EfficientNet-B0's
// squeeze-excitation multiply (rows times one row of channel scales), and the table lookup of an
// int8 activation (Sigmoid, HardSwish...) at EfficientNet-B0's largest and at a 28x28 size. One thread.
//
// Buffers are 64-byte aligned, as the engine's (bench/aligned_vector.h).
//
//   q8_bench_qu8_ops --benchmark_filter=dwconv
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench/aligned_vector.h"
#include "kernels/f32.h"
#include "kernels/qu8.h"
#include "tests/kernels/cpu_support.h"

namespace {

using q8::kern::ConvGeometry;
using q8::kern::F32Kernels;
using q8::kern::PoolGeometry;
using q8::kern::QU8Kernels;

std::vector<std::pair<std::string, const QU8Kernels*>> tables() {
  std::vector<std::pair<std::string, const QU8Kernels*>> r;
  const std::pair<const char*, const QU8Kernels* (*)()> all[] = {
      {"scalar", q8::kern::qu8_kernels_scalar},   {"avx2", q8::kern::qu8_kernels_avx2},
      {"avx512", q8::kern::qu8_kernels_avx512},   {"avx512vnni", q8::kern::qu8_kernels_avx512vnni},
      {"avxvnni", q8::kern::qu8_kernels_avxvnni}, {"neon", q8::kern::qu8_kernels_neon},
  };
  for (const auto& [name, get] : all)
    if (q8_test::cpu_supports(name) && get()) r.emplace_back(name, get());
  return r;
}

AlignedVector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  AlignedVector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(rng());
  return v;
}

// Depthwise ks x ks (3 or 5), stride s, PyTorch's symmetric pad ks / 2.
ConvGeometry dw_geometry(size_t hw, size_t C, size_t s, size_t ks) {
  ConvGeometry g;
  g.IH = g.IW = hw;
  g.C = g.K = g.groups = C;
  g.KH = g.KW = ks;
  g.SH = g.SW = s;
  g.PT = g.PL = g.PB = g.PR = ks / 2;
  g.OH = g.OW = (hw + 2 * (ks / 2) - ks) / s + 1;
  return g;
}

void bm_dwconv(benchmark::State& state, const QU8Kernels* k, size_t hw, size_t C, size_t s, size_t ks) {
  const ConvGeometry g = dw_geometry(hw, C, s, ks);
  const auto in = random_bytes(hw * hw * C, 1);
  AlignedVector<int8_t> w(C * ks * ks);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>(int(i * 37 % 255) - 127);
  AlignedVector<int32_t> bias(C, 1000);
  AlignedVector<float> mult(C, 1.0f / 4096.0f);
  AlignedVector<uint8_t> packed(q8::kern::qu8_dwconv_packed_bytes(g));
  q8::kern::qu8_dwconv_pack(g, w.data(), bias.data(), mult.data(), 3, packed.data());
  const AlignedVector<uint8_t> zero(C, 3);
  AlignedVector<uint8_t> out(g.out_pixels() * C);
  q8::kern::QU8Requant rq{0, 0, 255};  // a ReLU6 output, as MobileNetV2's depthwise layers have
  for (auto _ : state) {
    k->dwconv(g, in.data(), packed.data(), zero.data(), out.data(), 0, g.out_pixels(), rq);
    benchmark::DoNotOptimize(out.data());
  }
  const double macs = double(g.out_pixels()) * C * ks * ks;
  state.counters["MAC/s"] = benchmark::Counter(macs, benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(in.size() + out.size()));
}

// The fp32 depthwise at the same geometry (ReLU6-style clamp, as MobileNetV2's layers have).
void bm_dwconv_f32(benchmark::State& state, const F32Kernels* k, size_t hw, size_t C, size_t s, size_t ks) {
  const ConvGeometry g = dw_geometry(hw, C, s, ks);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  AlignedVector<float> in(hw * hw * C), w(C * ks * ks), bias(C);
  for (auto& v : in) v = d(rng);
  for (auto& v : w) v = d(rng);
  for (auto& v : bias) v = d(rng);
  AlignedVector<float> packed(q8::kern::f32_dwconv_packed_floats(g));
  q8::kern::f32_dwconv_pack(g, w.data(), bias.data(), packed.data());
  const AlignedVector<float> zero(C, 0.0f);
  AlignedVector<float> out(g.out_pixels() * C);
  for (auto _ : state) {
    k->dwconv(g, in.data(), packed.data(), zero.data(), out.data(), 0, g.out_pixels(), 0.0f, 6.0f);
    benchmark::DoNotOptimize(out.data());
  }
  const double macs = double(g.out_pixels()) * C * ks * ks;
  state.counters["MAC/s"] = benchmark::Counter(macs, benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t((in.size() + out.size()) * sizeof(float)));
}

void bm_global_avgpool(benchmark::State& state, const QU8Kernels* k, size_t HW, size_t C) {
  const auto in = random_bytes(HW * C, 2);
  AlignedVector<uint8_t> out(C);
  q8::kern::QU8PoolParams p;
  p.in_zero_point = 7;
  p.in_over_out = 0.8f;
  for (auto _ : state) {
    k->global_avgpool(HW, C, in.data(), out.data(), 0, 1, p);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(in.size()));
}

void bm_maxpool(benchmark::State& state, const QU8Kernels* k, size_t hw, size_t C) {
  PoolGeometry g;
  g.IH = g.IW = hw;
  g.C = C;
  g.KH = g.KW = 3;
  g.SH = g.SW = 2;
  g.PT = g.PL = g.PB = g.PR = 1;
  g.OH = g.OW = (hw + 2 - 3) / 2 + 1;
  const auto in = random_bytes(hw * hw * C, 3);
  AlignedVector<uint8_t> out(g.OH * g.OW * C);
  for (auto _ : state) {
    k->maxpool(g, in.data(), out.data(), 0, g.OH * g.OW);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(in.size() + out.size()));
}

void bm_add(benchmark::State& state, const QU8Kernels* k, size_t n) {
  const auto a = random_bytes(n, 4), b = random_bytes(n, 5);
  AlignedVector<uint8_t> out(n);
  q8::kern::QU8AddParams p;
  p.a_zero_point = 120, p.b_zero_point = 130, p.a_multiplier = 0.7f, p.b_multiplier = 1.3f;
  p.out.out_zero_point = 128;
  for (auto _ : state) {
    k->add(n, a.data(), b.data(), out.data(), p);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(3 * n));
}

// A squeeze-excitation scale: rows of n channels times one row of n (stride 0), as EfficientNet runs it.
void bm_mul_rows(benchmark::State& state, const QU8Kernels* k, size_t rows, size_t n) {
  const auto a = random_bytes(rows * n, 4), b = random_bytes(n, 5);
  AlignedVector<uint8_t> out(rows * n);
  q8::kern::QU8MulParams p;
  p.a_zero_point = 120, p.b_zero_point = 3, p.multiplier = 0.01f;
  p.out.out_zero_point = 128;
  for (auto _ : state) {
    k->mul_rows(rows, n, a.data(), n, b.data(), 0, out.data(), p);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(2 * rows * n));
}

void bm_lookup(benchmark::State& state, decltype(QU8Kernels::lookup) lookup, size_t n) {
  const auto x = random_bytes(n, 7), table = random_bytes(256, 8);
  AlignedVector<uint8_t> out(n);
  for (auto _ : state) {
    lookup(n, x.data(), out.data(), table.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(2 * n));
}

void bm_quantize(benchmark::State& state, const QU8Kernels* k, size_t n) {
  AlignedVector<float> x(n);
  std::mt19937 rng(6);
  std::normal_distribution<float> d;
  for (auto& v : x) v = d(rng);
  AlignedVector<uint8_t> q(n);
  for (auto _ : state) {
    k->quantize(n, x.data(), q.data(), 0.02f, 128);
    benchmark::DoNotOptimize(q.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(5 * n));
}

// The model input: float NCHW quantized straight into uint8 NHWC (the engine's first step).
void bm_quantize_to_nhwc(benchmark::State& state, const QU8Kernels* k, size_t C, size_t HW) {
  AlignedVector<float> x(C * HW);
  std::mt19937 rng(6);
  std::normal_distribution<float> d;
  for (auto& v : x) v = d(rng);
  AlignedVector<uint8_t> q(C * HW);
  for (auto _ : state) {
    q8::kern::qu8_quantize_nchw_to_nhwc(*k, C, HW, x.data(), q.data(), 0.02f, 128, 0, HW);
    benchmark::DoNotOptimize(q.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(5 * C * HW));
}

// EfficientNet-B0's largest activation (1.2 MB: in and out stream through L3 here) and a 28x28
// one (150 KB, in L2), where the lookup's own instructions count.
const std::pair<const char*, size_t> kLookupShapes[] = {{"112x112x96", 112 * 112 * 96}, {"28x28x192", 28 * 28 * 192}};

// EfficientNet-B0's squeeze-excitation multiplies at two of its stages: pixels per side, channels.
struct SeShape {
  const char* name;
  size_t hw, c;
};
const SeShape kSqueezeExcitationShapes[] = {{"28x28x240", 28, 240}, {"56x56x144", 56, 144}};

void register_all() {
  struct Dw {
    size_t hw, c, s, ks = 3;
  };
  // MobileNetV2 (224x224 input): every depthwise layer's shape (input side, channels, stride);
  // then MobileNetV3's and MNASNet's 3x3 ones whose channels are not a multiple of 16, and
  // ShuffleNetV2's (58, 116, 232 channels: not even multiples of 8).
  const Dw dws[] = {{112, 32, 1},
                    {112, 96, 2},
                    {56, 144, 1},
                    {56, 144, 2},
                    {28, 192, 1},
                    {28, 192, 2},
                    {14, 384, 1},
                    {14, 576, 1},
                    {14, 576, 2},
                    {7, 960, 1},
                    {56, 72, 1},
                    {14, 200, 1},
                    {56, 58, 2},
                    {28, 58, 1},
                    {28, 116, 2},
                    {14, 116, 1},
                    {14, 232, 2},
                    {7, 232, 1},
                    // 5x5: MNASNet's and MobileNetV3-Large's 28x28x120, EfficientNet-B0's.
                    {28, 120, 1, 5},
                    {56, 144, 2, 5},
                    {28, 240, 2, 5},
                    {14, 480, 1, 5},
                    {14, 672, 1, 5},
                    {7, 1152, 1, 5}};
  const std::pair<const char*, const F32Kernels* (*)()> f32_tables[] = {
      {"scalar", q8::kern::f32_kernels_scalar},
      {"avx2", q8::kern::f32_kernels_avx2},
      {"avx512", q8::kern::f32_kernels_avx512},
      {"neon", q8::kern::f32_kernels_neon},
  };
  // "dwconv3x3/avx2/56x56x144/s2" and "dwconv3x3_f32/...": the int8 and fp32 runs of one shape
  // differ only in the suffix of the first part.
  auto dw_name = [](const char* suffix, const std::string& isa, const Dw& d) {
    const std::string hw = std::to_string(d.hw), ks = std::to_string(d.ks);
    return "dwconv" + ks + "x" + ks + suffix + "/" + isa + "/" + hw + "x" + hw + "x" + std::to_string(d.c) + "/s" +
           std::to_string(d.s);
  };
  for (const auto& [isa, get] : f32_tables) {
    const F32Kernels* k = get();
    if (!q8_test::cpu_supports(isa) || !k) continue;
    for (const Dw& d : dws)
      benchmark::RegisterBenchmark(dw_name("_f32", isa, d).c_str(), bm_dwconv_f32, k, d.hw, d.c, d.s, d.ks);
  }
#if defined(Q8_ARCH_X86)
  // The VBMI lookup, which the engine puts in the AVX-512 family's tables where the CPU has VBMI.
  if (q8_test::cpu_supports("avx512vbmi")) {
    using q8::kern::qu8_lookup__avx512vbmi;
    for (const auto& [shape, n] : kLookupShapes)
      benchmark::RegisterBenchmark(("lookup/avx512vbmi/" + std::string(shape)).c_str(), bm_lookup,
                                   decltype(QU8Kernels::lookup) Q8_KERNEL(qu8_lookup__avx512vbmi), n);
  }
#endif
  for (const auto& [isa, k] : tables()) {
    for (const Dw& d : dws)
      benchmark::RegisterBenchmark(dw_name("", isa, d).c_str(), bm_dwconv, k, d.hw, d.c, d.s, d.ks);
    // ResNets' and MobileNets' heads, and MobileNetV3-Small's first squeeze-excitation (16 channels).
    for (const auto& [hw, C] : {std::pair<size_t, size_t>{7, 512}, {7, 1280}, {7, 2048}, {56, 16}})
      benchmark::RegisterBenchmark(
          ("global_avgpool/" + isa + "/" + std::to_string(hw) + "x" + std::to_string(hw) + "x" + std::to_string(C))
              .c_str(),
          bm_global_avgpool, k, hw * hw, C);
    benchmark::RegisterBenchmark(("maxpool3x3s2/" + isa + "/112x112x64").c_str(), bm_maxpool, k, 112, 64);
    // ShuffleNetV2's: fewer channels than a ymm holds.
    benchmark::RegisterBenchmark(("maxpool3x3s2/" + isa + "/112x112x24").c_str(), bm_maxpool, k, 112, 24);
    benchmark::RegisterBenchmark(("add/" + isa + "/56x56x24").c_str(), bm_add, k, 56 * 56 * 24);
    for (const auto& [shape, hw, c] : kSqueezeExcitationShapes)
      benchmark::RegisterBenchmark(("mul_rows/" + isa + "/" + shape + "_by_channel").c_str(), bm_mul_rows, k, hw * hw,
                                   c);
    for (const auto& [shape, n] : kLookupShapes)
      benchmark::RegisterBenchmark(("lookup/" + isa + "/" + shape).c_str(), bm_lookup, k->lookup, n);
    benchmark::RegisterBenchmark(("quantize/" + isa + "/224x224x3").c_str(), bm_quantize, k, 224 * 224 * 3);
    benchmark::RegisterBenchmark(("quantize_to_nhwc/" + isa + "/3x224x224").c_str(), bm_quantize_to_nhwc, k, 3,
                                 224 * 224);
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
