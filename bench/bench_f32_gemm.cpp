// fp32 convolution (f32_conv_run: the indirect GEMM over packed panels) and the batch-1 fully
// connected layer (f32_gemm_run) at ResNet layer shapes, one thread, for every SIMD table this CPU
// runs. Reports GFLOP/s (2 per multiply-add of the layer) and the layer's weight bytes, so the
// layers whose weights exceed L2 (resnet18 layer3/layer4, resnet50's last stage) stand apart from
// the small ones (layer1/layer2); the first layers of common CNNs per tap and over kernel rows; the
// residual 1x1 layers with the residual added in the tiles and by a pass per block; and the two
// orders of a 1x1 layer's tiles (order/*), each pair in one binary:
//
//   q8_bench_f32_gemm --benchmark_filter=avx2 --benchmark_repetitions=5
//   q8_bench_f32_gemm --benchmark_filter='order/|residual' --benchmark_repetitions=6
//       --benchmark_enable_random_interleaving=true   (one command line)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench/aligned_vector.h"
#include "kernels/conv_rows.h"
#include "kernels/f32.h"
#include "tests/kernels/cpu_support.h"

namespace {

using q8::kern::ConvGeometry;
using q8::kern::F32Kernels;

using Floats = AlignedVector<float>;  // aligned as the engine's buffers (aligned_vector.h)

Floats random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  Floats v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

void set_counters(benchmark::State& state, double macs, double weight_bytes) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weights_KiB"] = weight_bytes / 1024.0;
}

// How a convolution's residual (a tensor like the output, added before the clamp: ResNet's last 1x1
// convolution of a block) is added: not at all, by the tiles as the engine does, or by the table's
// Add over each block of 256 KiB of input rows right after the tiles wrote it unclamped (the
// engine's order before the tiles took the residual), to compare the two in one binary.
enum class Residual { kNone, kInTile, kPassPerBlock };

// A KxK convolution, stride 1, "same" padding, on an HxW NHWC input (batch 1, one group).
void bm_conv(benchmark::State& state, const F32Kernels* k, size_t hw, size_t C, size_t K, size_t R, Residual residual) {
  ConvGeometry g;
  g.IH = g.IW = g.OH = g.OW = hw;
  g.C = C;
  g.K = K;
  g.KH = g.KW = R;
  g.PT = g.PL = g.PB = g.PR = R / 2;
  const Floats in = random_floats(hw * hw * C, 1), w = random_floats(K * C * R * R, 2), bias = random_floats(K, 3);
  const Floats zero(C, 0.f);
  Floats packed(q8::kern::f32_conv_packed_floats(g, k->conv.nr));
  q8::kern::f32_conv_pack(g, k->conv.nr, w.data(), bias.data(), packed.data());
  std::vector<const float*> indirection(g.out_pixels() * g.taps());
  q8::kern::conv_indirection_init(g, 0, in.data(), zero.data(), indirection.data());
  Floats out(g.out_pixels() * K);
  const Floats res = random_floats(residual == Residual::kNone ? 0 : g.out_pixels() * K, 4);
  const q8::kern::F32BinaryFn add = k->binary[static_cast<size_t>(q8::kern::BinaryOp::Add)].fn;
  q8::kern::F32Epilogue epilogue;
  if (residual == Residual::kInTile) epilogue = {res.data(), add, nullptr, {}};
  const size_t P = g.out_pixels(), block = std::max<size_t>(1, (256 << 10) / (C * R * R * sizeof(float)));
  for (auto _ : state) {
    if (residual == Residual::kPassPerBlock) {
      for (size_t b0 = 0; b0 < P; b0 += block) {
        const size_t b1 = std::min(P, b0 + block);
        q8::kern::f32_conv_run(k->conv, g, 0, indirection.data(), packed.data(), out.data(), b0, b1, -3.4e38f, 3.4e38f);
        add((b1 - b0) * K, out.data() + b0 * K, res.data() + b0 * K, out.data() + b0 * K, 0.f, 3.4e38f);
      }
    } else {
      q8::kern::f32_conv_run(k->conv, g, 0, indirection.data(), packed.data(), out.data(), 0, P, 0.f, 3.4e38f, 0,
                             q8::kern::kAllPanels, epilogue);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, double(g.out_pixels()) * double(K) * double(C * R * R), double(K * C * R * R) * sizeof(float));
}

// A first layer (few input channels, stride, padding) on the tile the engine picks, per tap or
// over kernel rows (kernels/conv_rows.h: what the engine runs for C <= 3), edge rows gathered
// every run as the engine does.
void bm_first_conv(benchmark::State& state, const F32Kernels* k, size_t hw, size_t C, size_t K, size_t R, size_t stride,
                   size_t pad, bool rows) {
  ConvGeometry g;
  g.IH = g.IW = hw;
  g.C = C;
  g.K = K;
  g.KH = g.KW = R;
  g.SH = g.SW = stride;
  g.PT = g.PL = g.PB = g.PR = pad;
  g.OH = g.OW = (hw + 2 * pad - R) / stride + 1;
  const q8::kern::F32ConvKernel& kc = q8::kern::f32_conv_kernel_for(*k, K);
  const ConvGeometry r = rows ? q8::kern::conv_rows_geometry(g) : g;
  const Floats in = random_floats(hw * hw * C, 1), w = random_floats(K * C * R * R, 2), bias = random_floats(K, 3);
  const Floats zero(r.C, 0.f);
  Floats packed(q8::kern::f32_conv_packed_floats(r, kc.nr));
  Floats edges(rows ? q8::kern::conv_rows_edge_elements<float>(g) + 1 : 1);
  std::vector<const float*> indirection(g.out_pixels() * r.taps());
  if (rows) {
    q8::kern::f32_conv_rows_pack(g, kc.nr, w.data(), bias.data(), packed.data());
    q8::kern::conv_rows_indirection_init<float>(g, in.data(), zero.data(), edges.data(), indirection.data());
  } else {
    q8::kern::f32_conv_pack(g, kc.nr, w.data(), bias.data(), packed.data());
    q8::kern::conv_indirection_init(g, 0, in.data(), zero.data(), indirection.data());
  }
  Floats out(g.out_pixels() * K);
  for (auto _ : state) {
    if (rows) q8::kern::conv_rows_gather_edges<float>(g, in.data(), 0.f, edges.data(), 0, g.out_pixels());
    q8::kern::f32_conv_run(kc, r, 0, indirection.data(), packed.data(), out.data(), 0, g.out_pixels(), 0.f, 3.4e38f);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, double(g.out_pixels()) * double(K) * double(C * R * R), double(K * C * R * R) * sizeof(float));
}

// The two orders f32_conv_run can walk a 1x1 convolution's tiles in within a pixel block of
// 256 KiB of input rows (kernels/f32_pack.cpp): panel by panel, or tile by tile over every panel
// (which the engine takes when the panels' weights are small). The tiles are driven here
// directly, so one binary measures both; run with --benchmark_enable_random_interleaving.
void bm_1x1_order(benchmark::State& state, const F32Kernels* k, size_t hw, size_t C, size_t K, bool tiles_outer) {
  ConvGeometry g;
  g.IH = g.IW = g.OH = g.OW = hw;
  g.C = C;
  g.K = K;
  const q8::kern::F32ConvKernel& kc = k->conv;
  const Floats in = random_floats(hw * hw * C, 1), w = random_floats(K * C, 2), bias = random_floats(K, 3);
  const Floats zero(C, 0.f);
  Floats packed(q8::kern::f32_conv_packed_floats(g, kc.nr));
  q8::kern::f32_conv_pack(g, kc.nr, w.data(), bias.data(), packed.data());
  std::vector<const float*> indirection(g.out_pixels());
  q8::kern::conv_indirection_init(g, 0, in.data(), zero.data(), indirection.data());
  Floats out(g.out_pixels() * K);
  const size_t P = g.out_pixels(), panels = (K + kc.nr - 1) / kc.nr, panel_floats = kc.nr + C * kc.nr;
  const size_t block = std::max(kc.mr, (256 << 10) / (C * sizeof(float)) / kc.mr * kc.mr);
  auto tile = [&](size_t p, size_t b1, size_t n) {
    kc.igemm(std::min(kc.mr, b1 - p), std::min(kc.nr, K - n * kc.nr), C, 1, indirection.data() + p,
             packed.data() + n * panel_floats, out.data() + p * K + n * kc.nr, K, nullptr, 0.f, 3.4e38f);
  };
  for (auto _ : state) {
    for (size_t b0 = 0; b0 < P; b0 += block) {
      const size_t b1 = std::min(P, b0 + block);
      if (tiles_outer) {
        for (size_t p = b0; p < b1; p += kc.mr)
          for (size_t n = 0; n < panels; ++n) tile(p, b1, n);
      } else {
        for (size_t n = 0; n < panels; ++n)
          for (size_t p = b0; p < b1; p += kc.mr) tile(p, b1, n);
      }
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, double(P) * double(K) * double(C), double(K * C) * sizeof(float));
}

// out[M][N] = A[M][Kd] * B + bias: the fully connected layer at batch M.
void bm_gemm(benchmark::State& state, const F32Kernels* k, size_t M, size_t Kd, size_t N) {
  const Floats a = random_floats(M * Kd, 1), b = random_floats(Kd * N, 2), bias = random_floats(N, 3);
  Floats packed(q8::kern::f32_gemm_packed_floats(Kd, N, k->conv.nr));
  q8::kern::f32_gemm_pack(Kd, N, k->conv.nr, b.data(), N, 1, bias.data(), packed.data());
  Floats out(M * N);
  for (auto _ : state) {
    q8::kern::f32_gemm_run(*k, N, Kd, a.data(), Kd, packed.data(), out.data(), N, 0, M, -3.4e38f, 3.4e38f);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, double(M) * double(Kd) * double(N), double(Kd * N) * sizeof(float));
}

void register_all() {
  struct Conv {
    const char* name;
    size_t hw, C, K, R;
    Residual residual = Residual::kNone;
  };
  const Conv convs[] = {
      {"r18_layer1_3x3", 56, 64, 64, 3},
      {"r18_layer2_3x3", 28, 128, 128, 3},
      {"r18_layer3_3x3", 14, 256, 256, 3},
      {"r18_layer4_3x3", 7, 512, 512, 3},
      {"r50_stage1_1x1_64to256", 56, 64, 256, 1},
      {"r50_stage1_1x1_64to256_residual", 56, 64, 256, 1, Residual::kInTile},
      {"r50_stage1_1x1_64to256_residual_pass", 56, 64, 256, 1, Residual::kPassPerBlock},
      {"r50_stage1_1x1_256to64", 56, 256, 64, 1},
      {"r50_stage2_1x1_128to512_residual", 28, 128, 512, 1, Residual::kInTile},
      {"r50_stage2_1x1_128to512_residual_pass", 28, 128, 512, 1, Residual::kPassPerBlock},
      {"mbv2_1x1_56x56_144to24_residual", 56, 144, 24, 1, Residual::kInTile},
      {"mbv2_1x1_56x56_144to24_residual_pass", 56, 144, 24, 1, Residual::kPassPerBlock},
      {"r50_stage3_1x1_256to1024", 14, 256, 1024, 1},
      {"r50_stage4_1x1_2048to512", 7, 2048, 512, 1},
      {"r50_stage4_3x3_512", 7, 512, 512, 3},
      {"r50_stage4_1x1_512to2048", 7, 512, 2048, 1},
      // Mobile projections whose channels are not a multiple of the tile's: the last panel's
      // vectors without a channel are skipped.
      {"mnasnet_1x1_28x28_120to40", 28, 120, 40, 1},
      {"effnet_1x1_14x14_480to80", 14, 480, 80, 1},
      {"effnet_1x1_14x14_672to112", 14, 672, 112, 1},
  };
  struct FirstConv {
    const char* name;
    size_t hw, C, K, R, stride, pad;
  };
  const FirstConv first_convs[] = {
      {"first_7x7s2_3to64", 224, 3, 64, 7, 2, 3},     // ResNet, GoogLeNet
      {"first_11x11s4_3to64", 224, 3, 64, 11, 4, 2},  // AlexNet
      {"first_3x3s2_3to32", 224, 3, 32, 3, 2, 1},     // MobileNetV2, EfficientNet, RegNet
      {"first_3x3s2_3to16", 224, 3, 16, 3, 2, 1},     // MobileNetV3
  };
  struct Gemm {
    const char* name;
    size_t M, Kd, N;
  };
  struct Pointwise {
    const char* name;
    size_t hw, C, K;
  };
  const Pointwise orders[] = {
      {"r50_stage1_1x1_64to256", 56, 64, 256},     {"r50_stage2_1x1_128to512", 28, 128, 512},
      {"r50_stage3_1x1_256to1024", 14, 256, 1024}, {"mbv2_1x1_112x112_16to96", 112, 16, 96},
      {"mbv2_1x1_56x56_24to144", 56, 24, 144},     {"mbv2_1x1_14x14_96to576", 14, 96, 576},
  };
  const Gemm gemms[] = {{"fc_1x512to1000", 1, 512, 1000}, {"fc_1x2048to1000", 1, 2048, 1000}};
  const std::pair<const char*, const F32Kernels* (*)()> tables[] = {
      {"avx2", q8::kern::f32_kernels_avx2},
      {"avx512", q8::kern::f32_kernels_avx512},
      {"avx512_6x64", q8::kern::f32_kernels_avx512_6x64},
      {"neon", q8::kern::f32_kernels_neon},
  };
  for (const auto& [isa, get] : tables) {
    if (!q8_test::cpu_supports(isa) || !get()) continue;
    for (const Conv& c : convs)
      benchmark::RegisterBenchmark((std::string("conv/") + isa + "/" + c.name).c_str(), bm_conv, get(), c.hw, c.C, c.K,
                                   c.R, c.residual)
          ->Unit(benchmark::kMicrosecond);
    for (const FirstConv& c : first_convs)
      for (bool rows : {false, true})
        benchmark::RegisterBenchmark(
            (std::string("conv/") + isa + "/" + c.name + (rows ? "/kernel_rows" : "/per_tap")).c_str(), bm_first_conv,
            get(), c.hw, c.C, c.K, c.R, c.stride, c.pad, rows)
            ->Unit(benchmark::kMicrosecond);
    for (const Pointwise& c : orders)
      for (bool tiles_outer : {false, true})
        benchmark::RegisterBenchmark(
            (std::string("order/") + isa + "/" + c.name + (tiles_outer ? "/tiles_outer" : "/panels_outer")).c_str(),
            bm_1x1_order, get(), c.hw, c.C, c.K, tiles_outer)
            ->Unit(benchmark::kMicrosecond);
    for (const Gemm& m : gemms)
      benchmark::RegisterBenchmark((std::string("gemm/") + isa + "/" + m.name).c_str(), bm_gemm, get(), m.M, m.Kd, m.N)
          ->Unit(benchmark::kMicrosecond);
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
