// int8 GEMM (qu8_gemm_run) and convolution through the indirect GEMM (qu8_conv_run) at the layer
// shapes of the reference models, on one thread, for every table this CPU can run. Reports GMAC/s
// (multiply-accumulates of the layer itself: the first layer counts 7*7*3, not the padded 7*7*4)
// ceiling% = the share of 232 GMAC/s, one Zen 4 core's zmm vpdpbusd rate (BASELINES.md), and
// peak% = the share of this machine's own vpdpbusd rate, measured at start-up. On the avx2 table,
// exact% = the share of this machine's exact AVX2 ceiling: independent vpmaddwd (int16 x int16,
// 16 MACs) each followed by a vpaddd, the cheapest exact int8 product AVX2 has (the saturating
// vpmaddubsw + vpmaddwd(ones) + vpaddd rate is printed beside it for comparison, not used). On the
// avxvnni table, ymm% = the share of this machine's rate of independent VEX ymm vpdpbusd.
//
// qu8_tile/<isa>/kc<K> runs one full tile again and again (the micro-kernel alone).
//
//   q8_bench_kernels --benchmark_filter=avx512vnni
//   q8_bench_kernels --benchmark_filter=avxvnni
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench/aligned_vector.h"
#include "kernels/conv_rows.h"
#include "kernels/qu8.h"
#include "tests/kernels/cpu_support.h"

namespace {

using q8::kern::ConvGeometry;
using q8::kern::QU8Kernels;

constexpr double kCeilingGmacs = 232.0;

std::vector<uint8_t> random_bytes(size_t n, std::mt19937& rng, int lo = 0, int hi = 255) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<uint8_t> v(n);
  for (uint8_t& x : v) x = static_cast<uint8_t>(d(rng));
  return v;
}

#if defined(__x86_64__)
// One timed run of `loop(iters)` over kLoopIters iterations of macs_per_iter MACs, in GMAC/s. The
// peaks below keep the fastest of kLoopRuns such short runs, so a core shared with other work
// still shows its own rate (a few long runs measured a fraction of it).
constexpr long kLoopIters = 100000;
constexpr int kLoopRuns = 200;
template <class Loop>
double loop_gmacs(double macs_per_iter, Loop&& loop) {
  const auto t0 = std::chrono::steady_clock::now();
  loop(kLoopIters);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return double(kLoopIters) * macs_per_iter / s * 1e-9;
}
// The fastest of kLoopRuns runs of one loop.
template <class Loop>
double best_loop_gmacs(double macs_per_iter, Loop&& loop) {
  double best = 0.0;
  for (int rep = 0; rep < kLoopRuns; ++rep) best = std::max(best, loop_gmacs(macs_per_iter, loop));
  return best;
}
#endif

// This machine's own zmm vpdpbusd rate (GMAC/s), measured once with 16 independent accumulators;
// 0 where the CPU lacks AVX-512 VNNI. BASELINES.md's 232 GMAC/s is one Zen 4 core (one zmm
// vpdpbusd per cycle); Zen 5 retires two per cycle, so "peak%" says how close a kernel is to the
// machine it runs on (best_loop_gmacs: the fastest of many short runs).
double measured_peak_gmacs() {
#if defined(__x86_64__)
  if (!q8_test::cpu_supports("avx512vnni")) return 0.0;
  return best_loop_gmacs(16.0 * 64.0, [](long iters) {
    __asm__ volatile(
        "1:\n"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n vpdpbusd %%zmm30, %%zmm31, %%zmm1\n"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm2\n vpdpbusd %%zmm30, %%zmm31, %%zmm3\n"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n vpdpbusd %%zmm30, %%zmm31, %%zmm5\n"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm6\n vpdpbusd %%zmm30, %%zmm31, %%zmm7\n"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm8\n vpdpbusd %%zmm30, %%zmm31, %%zmm9\n"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm10\n vpdpbusd %%zmm30, %%zmm31, %%zmm11\n"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm12\n vpdpbusd %%zmm30, %%zmm31, %%zmm13\n"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm14\n vpdpbusd %%zmm30, %%zmm31, %%zmm15\n"
        "dec %0\n jnz 1b\n"
        : "+r"(iters)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
          "xmm13", "xmm14", "xmm15", "cc");
  });
#else
  return 0.0;
#endif
}

// This machine's rate of independent VEX-encoded ymm vpdpbusd (AVX-VNNI, GMAC/s), 14 accumulators;
// 0 where the CPU lacks AVX-VNNI. The ceiling of the avxvnni table's kernels.
double measured_ymm_peak_gmacs() {
#if defined(__x86_64__)
  if (!q8_test::cpu_supports("avxvnni")) return 0.0;
  // %{vex%}: the assembler's {vex} prefix (braces escaped in extended asm), the AVX-VNNI encoding.
  return best_loop_gmacs(14.0 * 32.0, [](long iters) {
    __asm__ volatile(
        "1:\n"
        "%{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm0\n %{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm1\n"
        "%{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm2\n %{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm3\n"
        "%{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm4\n %{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm5\n"
        "%{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm6\n %{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm7\n"
        "%{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm8\n %{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm9\n"
        "%{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm10\n %{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm11\n"
        "%{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm12\n %{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm13\n"
        "dec %0\n jnz 1b\n"
        : "+r"(iters)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
          "xmm13", "cc");
  });
#else
  return 0.0;
#endif
}

// AVX2 loops of independent instructions (GMAC/s): exact = vpmaddwd + vpaddd (16 MACs each);
// saturating = vpmaddubsw + vpmaddwd(ones) + vpaddd (32 MACs, wrong when a pair saturates).
// (Zen 3 at 3.24 GHz: about 80 and 100 GMAC/s. Its two multiply pipes take two vpmaddwd or two
// vpmaddubsw per cycle, shared, and a vpaddd per multiply competes for the same four pipes.)
struct Avx2Rates {
  double exact = 0.0, saturating = 0.0;
};
Avx2Rates measured_avx2_gmacs() {
  Avx2Rates best;
#if defined(__x86_64__)
  if (!q8_test::cpu_supports("avx2")) return best;
  for (int rep = 0; rep < kLoopRuns; ++rep) {  // the two loops alternate, so both see the same load
    best.exact = std::max(best.exact, loop_gmacs(6.0 * 16.0, [](long iters) {
                            __asm__ volatile(
                                "1:\n"
                                "vpmaddwd %%ymm15, %%ymm14, %%ymm8\n vpaddd %%ymm8, %%ymm0, %%ymm0\n"
                                "vpmaddwd %%ymm15, %%ymm14, %%ymm9\n vpaddd %%ymm9, %%ymm1, %%ymm1\n"
                                "vpmaddwd %%ymm15, %%ymm14, %%ymm10\n vpaddd %%ymm10, %%ymm2, %%ymm2\n"
                                "vpmaddwd %%ymm15, %%ymm14, %%ymm11\n vpaddd %%ymm11, %%ymm3, %%ymm3\n"
                                "vpmaddwd %%ymm15, %%ymm14, %%ymm12\n vpaddd %%ymm12, %%ymm4, %%ymm4\n"
                                "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n vpaddd %%ymm13, %%ymm5, %%ymm5\n"
                                "dec %0\n jnz 1b\n"
                                : "+r"(iters)
                                :
                                : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm8", "xmm9", "xmm10", "xmm11",
                                  "xmm12", "xmm13", "cc");
                          }));
    best.saturating = std::max(
        best.saturating, loop_gmacs(6.0 * 32.0, [](long iters) {
          __asm__ volatile(
              "1:\n"
              "vpmaddubsw %%ymm15, %%ymm14, %%ymm8\n vpmaddwd %%ymm13, %%ymm8, %%ymm8\n vpaddd %%ymm8, %%ymm0, %%ymm0\n"
              "vpmaddubsw %%ymm15, %%ymm14, %%ymm9\n vpmaddwd %%ymm13, %%ymm9, %%ymm9\n vpaddd %%ymm9, %%ymm1, %%ymm1\n"
              "vpmaddubsw %%ymm15, %%ymm14, %%ymm10\n vpmaddwd %%ymm13, %%ymm10, %%ymm10\n vpaddd %%ymm10, %%ymm2, "
              "%%ymm2\n"
              "vpmaddubsw %%ymm15, %%ymm14, %%ymm11\n vpmaddwd %%ymm13, %%ymm11, %%ymm11\n vpaddd %%ymm11, %%ymm3, "
              "%%ymm3\n"
              "vpmaddubsw %%ymm15, %%ymm14, %%ymm12\n vpmaddwd %%ymm13, %%ymm12, %%ymm12\n vpaddd %%ymm12, %%ymm4, "
              "%%ymm4\n"
              "vpmaddubsw %%ymm15, %%ymm14, %%ymm6\n vpmaddwd %%ymm13, %%ymm6, %%ymm6\n vpaddd %%ymm6, %%ymm5, %%ymm5\n"
              "dec %0\n jnz 1b\n"
              : "+r"(iters)
              :
              : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
                "cc");
        }));
  }
#endif
  return best;
}

double g_peak_gmacs = 0.0;
double g_avx2_exact_gmacs = 0.0;
double g_ymm_peak_gmacs = 0.0;

void set_counters(benchmark::State& state, double macs, const QU8Kernels& k) {
  state.counters["GMAC/s"] = benchmark::Counter(macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["ceiling%"] =
      benchmark::Counter(macs * 1e-9 / kCeilingGmacs * 100.0, benchmark::Counter::kIsIterationInvariantRate);
  if (g_peak_gmacs > 0)
    state.counters["peak%"] =
        benchmark::Counter(macs * 1e-9 / g_peak_gmacs * 100.0, benchmark::Counter::kIsIterationInvariantRate);
  if (g_avx2_exact_gmacs > 0 && std::string(k.isa) == "avx2")
    state.counters["exact%"] =
        benchmark::Counter(macs * 1e-9 / g_avx2_exact_gmacs * 100.0, benchmark::Counter::kIsIterationInvariantRate);
  if (g_ymm_peak_gmacs > 0 && std::string(k.isa) == "avxvnni")
    state.counters["ymm%"] =
        benchmark::Counter(macs * 1e-9 / g_ymm_peak_gmacs * 100.0, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(k.isa);
}

// out[M][N] = A[M][K] * B[K][N] through qu8_gemm_run.
void bench_gemm(benchmark::State& state, const QU8Kernels* k, size_t M, size_t N, size_t K) {
  std::mt19937 rng(1);
  std::vector<uint8_t> a = random_bytes(M * K + 64, rng);  // + read slack
  std::vector<uint8_t> b = random_bytes(K * N, rng, 1, 255);
  std::vector<int32_t> bias(N, 100);
  std::vector<float> mult(N, 1e-4f);
  AlignedVector<uint8_t> packed(q8::kern::qu8_gemm_packed_bytes(K, N, k->nr, k->kr, k->weight_bytes));
  uint8_t* pk = packed.data();
  q8::kern::qu8_gemm_pack(K, N, k->nr, k->kr, k->weight_bytes, reinterpret_cast<const int8_t*>(b.data()), N, 1,
                          bias.data(), mult.data(), 128, pk);
  std::vector<uint8_t> out(M * N);
  const q8::kern::QU8Requant p{128, 0, 255};
  for (auto _ : state) {
    q8::kern::qu8_gemm_run(*k, N, K, a.data(), K, pk, out.data(), N, 0, M, p);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, double(M) * double(N) * double(K), *k);
}

// The float-output dense (a classifier) out[M][N] = (float)acc * scale through
// qu8_gemm_dequantize_run: every panel on one thread, B as ONNX's Gemm holds it, [N][K].
void bench_dense_dequantize(benchmark::State& state, const QU8Kernels* k, size_t M, size_t N, size_t K) {
  std::mt19937 rng(3);
  std::vector<uint8_t> a = random_bytes(M * K + 64, rng);  // + read slack
  std::vector<uint8_t> b = random_bytes(N * K, rng, 1, 255);
  std::vector<int32_t> bias(N, 100);
  std::vector<float> scale(N, 1e-4f);
  AlignedVector<uint8_t> packed(q8::kern::qu8_gemm_packed_bytes(K, N, k->nr, k->kr, k->weight_bytes));
  uint8_t* pk = packed.data();
  q8::kern::qu8_gemm_pack(K, N, k->nr, k->kr, k->weight_bytes, reinterpret_cast<const int8_t*>(b.data()), 1, K,
                          bias.data(), scale.data(), 128, pk);
  std::vector<float> out(M * N);
  for (auto _ : state) {
    q8::kern::qu8_gemm_dequantize_run(*k, N, K, a.data(), K, pk, out.data(), N, 0, M);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, double(M) * double(N) * double(K), *k);
  state.counters["GB/s"] =
      benchmark::Counter(double(q8::kern::qu8_gemm_packed_bytes(K, N, k->nr, k->kr, k->weight_bytes)),
                         benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// What a batch-1 dense layer cannot beat: one pass over as many bytes as its packed int8 weights
// (N x K), 16-byte loads summed into independent lanes (no ISA flags needed), on one thread.
void bench_stream_read(benchmark::State& state, size_t bytes) {
  using V = long long __attribute__((vector_size(16)));
  std::vector<V> buf(bytes / sizeof(V));
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = V{static_cast<long long>(i), 1};
  for (auto _ : state) {
    V s0{}, s1{}, s2{}, s3{};
    for (size_t i = 0; i + 4 <= buf.size(); i += 4) {
      s0 += buf[i];
      s1 += buf[i + 1];
      s2 += buf[i + 2];
      s3 += buf[i + 3];
    }
    V s = s0 + s1 + s2 + s3;
    benchmark::DoNotOptimize(s);
  }
  state.counters["GB/s"] = benchmark::Counter(
      double(buf.size() * sizeof(V)), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// KxK convolution, NHWC, one group, through the indirection buffer and qu8_conv_run.
void bench_conv(benchmark::State& state, const QU8Kernels* k, size_t H, size_t W, size_t C, size_t Kout, size_t R,
                size_t stride, size_t pad) {
  ConvGeometry g;
  g.IH = H;
  g.IW = W;
  g.C = C;
  g.K = Kout;
  g.KH = g.KW = R;
  g.SH = g.SW = stride;
  g.PT = g.PL = g.PB = g.PR = pad;
  g.OH = (H + 2 * pad - R) / stride + 1;
  g.OW = (W + 2 * pad - R) / stride + 1;
  std::mt19937 rng(2);
  std::vector<uint8_t> in = random_bytes(H * W * C + 64, rng);
  std::vector<uint8_t> zero(C + 64, 128);
  std::vector<uint8_t> w = random_bytes(Kout * C * R * R, rng, 1, 255);
  std::vector<int32_t> bias(Kout, 100);
  std::vector<float> mult(Kout, 1e-4f);
  AlignedVector<uint8_t> packed(q8::kern::qu8_conv_packed_bytes(g, k->nr, k->kr, k->weight_bytes));
  uint8_t* pk = packed.data();
  q8::kern::qu8_conv_pack(g, k->nr, k->kr, k->weight_bytes, reinterpret_cast<const int8_t*>(w.data()), bias.data(),
                          mult.data(), 128, pk);
  std::vector<const uint8_t*> ind(g.out_pixels() * g.taps());
  q8::kern::qu8_conv_indirection_init(g, 0, in.data(), zero.data(), ind.data());
  std::vector<uint8_t> out(g.out_pixels() * Kout);
  const q8::kern::QU8Requant p{128, 0, 255};
  for (auto _ : state) {
    q8::kern::qu8_conv_run(*k, g, 0, ind.data(), pk, out.data(), 0, g.out_pixels(), p);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, double(g.out_pixels()) * double(Kout) * double(C * R * R), *k);
}

// The same convolution as an igemm over kernel rows (conv_rows.h: what the engine runs for
// C <= 3), edge rows gathered every run as the engine does.
void bench_conv_rows(benchmark::State& state, const QU8Kernels* k, size_t H, size_t W, size_t C, size_t Kout, size_t R,
                     size_t stride, size_t pad) {
  ConvGeometry g;
  g.IH = H;
  g.IW = W;
  g.C = C;
  g.K = Kout;
  g.KH = g.KW = R;
  g.SH = g.SW = stride;
  g.PT = g.PL = g.PB = g.PR = pad;
  g.OH = (H + 2 * pad - R) / stride + 1;
  g.OW = (W + 2 * pad - R) / stride + 1;
  const ConvGeometry r = q8::kern::conv_rows_geometry(g);
  std::mt19937 rng(2);
  std::vector<uint8_t> in = random_bytes(H * W * C + 64, rng);
  std::vector<uint8_t> zero(r.C + 64, 128);
  std::vector<uint8_t> w = random_bytes(Kout * C * R * R, rng, 1, 255);
  std::vector<int32_t> bias(Kout, 100);
  std::vector<float> mult(Kout, 1e-4f);
  AlignedVector<uint8_t> packed(q8::kern::qu8_conv_packed_bytes(r, k->nr, k->kr, k->weight_bytes));
  uint8_t* pk = packed.data();
  q8::kern::qu8_conv_rows_pack(g, k->nr, k->kr, k->weight_bytes, reinterpret_cast<const int8_t*>(w.data()), bias.data(),
                               mult.data(), 128, pk);
  std::vector<uint8_t> edges(q8::kern::conv_rows_edge_elements<uint8_t>(g) + 1);
  std::vector<const uint8_t*> ind(r.out_pixels() * r.taps());
  q8::kern::conv_rows_indirection_init<uint8_t>(g, in.data(), zero.data(), edges.data(), ind.data());
  std::vector<uint8_t> out(g.out_pixels() * Kout);
  const q8::kern::QU8Requant p{128, 0, 255};
  for (auto _ : state) {
    q8::kern::conv_rows_gather_edges<uint8_t>(g, in.data(), 128, edges.data(), 0, g.out_pixels());
    q8::kern::qu8_conv_run(*k, r, 0, ind.data(), pk, out.data(), 0, g.out_pixels(), p);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, double(g.out_pixels()) * double(Kout) * double(C * R * R), *k);
}

struct GemmShape {
  const char* name;
  size_t M, N, K;
};
struct ConvShape {
  const char* name;
  size_t H, W, C, K, R, stride, pad;
};

const GemmShape kGemm[] = {
    {"3136x64x576", 3136, 64, 576},
    {"784x128x1152", 784, 128, 1152},
    {"196x256x2304", 196, 256, 2304},
    {"12544x128x576", 12544, 128, 576},
    {"49x512x4608", 49, 512, 4608},
    {"1x1000x512", 1, 1000, 512},
    {"alexnet_fc1_1x4096x9216", 1, 4096, 9216},
    {"alexnet_fc2_1x4096x4096", 1, 4096, 4096},
    // MobileNetV2's first 1x1 expansions: few input channels, so each tile's fixed cost counts.
    {"mbv2_expand_12544x96x16", 12544, 96, 16},
    {"mbv2_expand_3136x144x24", 3136, 144, 24},
    // ConvNeXt-Tiny's MLPs (MatMul over every pixel: QuantizedDense with many rows), stages 1 and 4.
    {"convnext_3136x384x96", 3136, 384, 96},
    {"convnext_3136x96x384", 3136, 96, 384},
    {"convnext_49x3072x768", 49, 3072, 768},
    {"convnext_49x768x3072", 49, 768, 3072},
};
// Classifiers at batch 1 (float output): resnet18, mobilenet_v2, resnet50, alexnet (its last and,
// for the shape, its first dense layer).
const GemmShape kDense[] = {
    {"r18_1x1000x512", 1, 1000, 512},           {"mnv2_1x1000x1280", 1, 1000, 1280},
    {"r50_1x1000x2048", 1, 1000, 2048},         {"alexnet_1x1000x4096", 1, 1000, 4096},
    {"alexnet_fc1_1x4096x9216", 1, 4096, 9216},
};
const ConvShape kConv[] = {
    {"seed_conv2_112x112_64to128_3x3", 112, 112, 64, 128, 3, 1, 1},
    {"r18_56x56_64to64_3x3", 56, 56, 64, 64, 3, 1, 1},
    {"r18_28x28_128to128_3x3", 28, 28, 128, 128, 3, 1, 1},
    {"r18_14x14_256to256_3x3", 14, 14, 256, 256, 3, 1, 1},
    {"r18_7x7_512to512_3x3", 7, 7, 512, 512, 3, 1, 1},
    {"r18_conv1_224x224_3to64_7x7s2", 224, 224, 3, 64, 7, 2, 3},
};
// First layers (3 input channels): the engine runs these over kernel rows; both ways are measured.
const ConvShape kFirstConv[] = {
    {"r18_conv1_224x224_3to64_7x7s2", 224, 224, 3, 64, 7, 2, 3},
    {"alexnet_conv1_224x224_3to64_11x11s4", 224, 224, 3, 64, 11, 4, 2},
    {"mv2_conv1_224x224_3to32_3x3s2", 224, 224, 3, 32, 3, 2, 1},
};

}  // namespace

int main(int argc, char** argv) {
  struct Table {
    const char* isa;
    const QU8Kernels* k;
  };
  const Table tables[] = {
      {"amx", q8::kern::qu8_kernels_amx()},  // ceiling% and peak% stay vpdpbusd's, for comparison
      {"avx512vnni", q8::kern::qu8_kernels_avx512vnni()},
      {"avx512vnni_6x64", q8::kern::qu8_kernels_avx512vnni_6x64()},
      {"avxvnni", q8::kern::qu8_kernels_avxvnni()},
      {"avx512", q8::kern::qu8_kernels_avx512()},
      {"avx2", q8::kern::qu8_kernels_avx2()},
      {"avx2_w8", q8::kern::qu8_kernels_avx2_w8()},  // the avx2 table's dense layers
      {"neoni8mm", q8::kern::qu8_kernels_neoni8mm()},
      {"neondot", q8::kern::qu8_kernels_neondot()},
      {"neon", q8::kern::qu8_kernels_neon()},
      {"scalar", q8::kern::qu8_kernels_scalar()},
  };
  for (const Table& t : tables) {
    if (!t.k || !q8_test::cpu_supports(t.isa)) continue;
    const std::string isa = t.isa;
    for (const GemmShape& s : kGemm)
      benchmark::RegisterBenchmark(("qu8_gemm/" + isa + "/" + s.name).c_str(), bench_gemm, t.k, s.M, s.N, s.K)
          ->Unit(benchmark::kMicrosecond);
    // One full tile (the table's mr rows by nr channels) again and again, its data in L1 up to
    // kc 576 and in L2 at 2304: the micro-kernel without the memory traffic of the layer shapes
    // above. The time column is one tile's: a fixed part (bias, requantization, stores, the call)
    // and kc / kr steps, so its change across kc separates the two; on a short reduction (a 1x1
    // convolution of 64 channels) the fixed part can be half of it.
    for (size_t kc : {16, 64, 256, 576, 2304})
      benchmark::RegisterBenchmark(("qu8_tile/" + isa + "/kc" + std::to_string(kc)).c_str(), bench_gemm, t.k, t.k->mr,
                                   t.k->nr, kc)
          ->Unit(benchmark::kNanosecond);
    for (const GemmShape& s : kDense)
      benchmark::RegisterBenchmark(("qu8_gemm_dequantize/" + isa + "/" + s.name).c_str(), bench_dense_dequantize, t.k,
                                   s.M, s.N, s.K)
          ->Unit(benchmark::kMicrosecond);
    for (const ConvShape& s : kConv)
      benchmark::RegisterBenchmark(("qu8_conv/" + isa + "/" + s.name).c_str(), bench_conv, t.k, s.H, s.W, s.C, s.K, s.R,
                                   s.stride, s.pad)
          ->Unit(benchmark::kMicrosecond);
    for (const ConvShape& s : kFirstConv) {
      benchmark::RegisterBenchmark(("qu8_conv/" + isa + "/" + s.name + "/per_tap").c_str(), bench_conv, t.k, s.H, s.W,
                                   s.C, s.K, s.R, s.stride, s.pad)
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("qu8_conv/" + isa + "/" + s.name + "/kernel_rows").c_str(), bench_conv_rows, t.k,
                                   s.H, s.W, s.C, s.K, s.R, s.stride, s.pad)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  for (const GemmShape& s : kDense)
    benchmark::RegisterBenchmark((std::string("stream_read/") + s.name).c_str(), bench_stream_read, s.N * s.K)
        ->Unit(benchmark::kMicrosecond);
  g_peak_gmacs = measured_peak_gmacs();
  if (g_peak_gmacs > 0) benchmark::AddCustomContext("vpdpbusd_zmm_peak_GMAC/s", std::to_string(g_peak_gmacs));
  g_ymm_peak_gmacs = measured_ymm_peak_gmacs();
  if (g_ymm_peak_gmacs > 0) benchmark::AddCustomContext("vpdpbusd_ymm_peak_GMAC/s", std::to_string(g_ymm_peak_gmacs));
  const Avx2Rates avx2 = measured_avx2_gmacs();
  g_avx2_exact_gmacs = avx2.exact;
  if (avx2.exact > 0) {
    benchmark::AddCustomContext("avx2_exact_vpmaddwd_peak_GMAC/s", std::to_string(avx2.exact));
    benchmark::AddCustomContext("avx2_saturating_vpmaddubsw_peak_GMAC/s", std::to_string(avx2.saturating));
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
