// int8 GEMM and indirect GEMM (micro-kernels and the drivers around them), byte for byte, on every
// table: the testers of qu8_gemm_tester.h (every output byte against a naive formula and against
// the scalar table, guard pages after inputs and outputs). A table this build or CPU lacks is
// skipped, never passed.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cpu_support.h"
#include "kernel_tables.h"
#include "kernels/qu8.h"
#include "qu8_gemm_tester.h"

namespace {

using q8::kern::ConvGeometry;
using q8::kern::QU8Kernels;
using q8_test::ConvTester;
using q8_test::GemmTester;

// ---- Tests, per table -------------------------------------------------------------------------

class QU8Gemm : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!q8_test::cpu_supports(GetParam()))
      GTEST_SKIP() << "this CPU cannot run " << GetParam() << q8_test::why_not(GetParam());
    k_ = q8_test::qu8_table_for(GetParam());
    if (!k_) GTEST_SKIP() << "build lacks " << GetParam();
  }
  const QU8Kernels& k() const { return *k_; }
  size_t mr() const { return k_->mr; }
  size_t nr() const { return k_->nr; }

 private:
  const QU8Kernels* k_ = nullptr;
};

const size_t kSmallK[] = {1, 2, 3, 4, 5, 7, 8, 12, 16, 27, 63, 64, 65};

TEST_P(QU8Gemm, TileEdges) {  // every m <= mr, n up to 2 nr + 1, k below/at/above 4 and beyond
  for (size_t kk : kSmallK)
    for (size_t m = 1; m <= mr(); ++m)
      for (size_t n = 1; n <= 2 * nr() + 1; ++n) {
        GemmTester().m(m).n(n).k(kk).seed(uint32_t(kk * 1000 + m * 100 + n)).test(k());
        if (HasFatalFailure()) return;
      }
}

// Every k from 1 to 41 (each remainder mod 4 and mod 8, after zero, one or two 16-channel steps),
// rows packed tightly (a_stride = k: the bytes read past k are the next row's channels) and the
// last one ending at the guard page, for the gemm and the igemm with taps at the zero row: a read
// past the last K group, or a slack byte meeting a non-zero weight, shows.
TEST_P(QU8Gemm, KGroupTails) {
  for (size_t kk = 1; kk <= 41; ++kk)
    for (size_t m : {size_t(1), size_t(2), size_t(3), mr()})
      for (size_t n : {size_t(1), nr() / 2 + 1, nr()}) {
        const uint32_t seed = uint32_t(kk * 1000 + m * 10 + n);
        GemmTester().m(m).n(n).k(kk).w_range(-128, 127).seed(seed).test(k());
        GemmTester().ks(2).m(m).n(n).k(kk).a_stride(kk).zero_fraction(0.3).seed(seed + 1).test(k());
        if (HasFatalFailure()) return;
      }
}

TEST_P(QU8Gemm, LargeK) {
  for (size_t kk : {96, 127, 128, 129, 255, 576, 1000, 1152, 2304})
    for (size_t n : {nr(), nr() / 2 + 1, 2 * nr() + 3}) {
      GemmTester().m(mr()).n(n).k(kk).seed(uint32_t(kk + n)).test(k());
      GemmTester().m(mr() > 1 ? mr() - 1 : 1).n(n).k(kk).seed(uint32_t(kk * 3 + n)).test(k());
      if (HasFatalFailure()) return;
    }
}

TEST_P(QU8Gemm, ZeroPointsAndClamps) {
  for (int za : {0, 1, 127, 128, 255})
    for (int zo : {0, 1, 100, 128, 255})
      for (size_t kk : {3, 16, 65}) {
        GemmTester t;
        t.m(mr())
            .n(nr() + 1)
            .k(kk)
            .a_zero_point(uint8_t(za))
            .out_zero_point(uint8_t(zo))
            .seed(uint32_t(za * 7 + zo + kk));
        t.test(k());
        t.qmin(uint8_t(zo)).qmax(255).test(k());  // fused ReLU: lo = z_out
        t.qmin(100).qmax(150).test(k());          // narrow clip
        t.qmin(0).qmax(uint8_t(std::max(zo, 6))).test(k());
        if (HasFatalFailure()) return;
      }
}

TEST_P(QU8Gemm, Strides) {
  for (size_t kk : {1, 5, 16, 63})
    for (size_t m = 1; m <= mr(); ++m) {
      GemmTester().m(m).n(nr()).k(kk).a_stride(kk + 7).c_stride(nr() + 5).seed(uint32_t(m + kk)).test(k());
      GemmTester()
          .m(m)
          .n(2 * nr() + 1)
          .k(kk)
          .a_stride(kk * 2 + 3)
          .c_stride(2 * nr() + 9)
          .seed(uint32_t(m * kk))
          .test(k());
      if (HasFatalFailure()) return;
    }
}

TEST_P(QU8Gemm, TransposedB) {
  for (size_t kk : {1, 7, 64, 100}) GemmTester().m(mr()).n(nr() + 3).k(kk).transpose_b(true).test(k());
}

TEST_P(QU8Gemm, Multipliers) {  // 1e-6 .. 2, varying per channel
  const double ranges[][2] = {{1e-6, 1e-5}, {1e-5, 1e-3}, {1e-3, 0.05}, {0.05, 0.5}, {0.5, 2.0}, {1e-6, 2.0}};
  for (const auto& r : ranges)
    for (size_t kk : {1, 4, 27, 300}) {
      GemmTester().m(mr()).n(2 * nr()).k(kk).multiplier_range(r[0], r[1]).seed(uint32_t(kk * 17)).test(k());
      GemmTester()
          .m(mr())
          .n(2 * nr())
          .k(kk)
          .multiplier_range(r[0], r[1])
          .out_zero_point(0)
          .qmin(0)
          .seed(uint32_t(kk * 19))
          .test(k());
      if (HasFatalFailure()) return;
    }
}

// Multipliers so large that most products lie beyond +-2^31 before the clamp: with out_min 0 a
// kernel may leave the low clamp to its saturating packs, and a float that far below converts to
// INT_MIN, so the bytes show whether that still lands on out_min (and the high clamp on out_max).
TEST_P(QU8Gemm, ProductsFarOutsideTheOutputRange) {
  for (int zo : {0, 1, 128, 255})
    for (int qmin : {0, zo}) {
      GemmTester t;
      t.m(mr()).n(2 * nr() + 3).k(37).multiplier_range(1e3, 1e5).out_zero_point(uint8_t(zo)).qmin(uint8_t(qmin));
      t.seed(uint32_t(zo * 3 + qmin)).test(k());
      if (HasFatalFailure()) return;
    }
}

TEST_P(QU8Gemm, NoBias) { GemmTester().m(mr()).n(nr()).k(33).bias(false).test(k()); }

// All activations 255 with all weights -128 or +127 at large k: the exact sums are far beyond
// int16 (a saturating vpmaddubsw would be wrong) and, with z_a = 255, bias' = -z_a * sum w and
// sum a * w are both huge and cancel exactly.
TEST_P(QU8Gemm, ExtremeValues) {
  for (int8_t wv : {int8_t(-128), int8_t(127)})
    for (int za : {0, 128, 255})
      for (size_t kk : {64, 1001, 4096, 16384}) {
        const double acc = 255.0 * 128.0 * double(kk);
        GemmTester t;
        t.m(mr()).n(nr() + 1).k(kk).a_range(255, 255).w_range(wv, wv).a_zero_point(uint8_t(za)).seed(uint32_t(kk));
        t.multiplier_range(100.0 / acc, 127.0 / acc).test(k());  // in range
        t.multiplier_range(0.1, 1.0).test(k());                  // saturates at qmin / qmax
        t.bias(false).multiplier_range(1.0, 1.0).test(k());
        if (HasFatalFailure()) return;
      }
  // Mixed extremes: activations in {0, 255}, weights in {-128, 127}.
  for (size_t kk : {4096, 8191})
    GemmTester().m(mr()).n(nr()).k(kk).a_range(0, 255).w_range(-128, 127).multiplier_range(1e-6, 1e-4).test(k());
}

// Weights of both signs up to -128 against activations 0 and 255 in every lane position of every
// tile width (a kernel may widen or split lanes differently for a full and a partial tile), for
// the GEMM and the indirect GEMM: any saturating int16 step or a lane shuffled out of place shows.
TEST_P(QU8Gemm, ExtremeValuesEveryTileWidth) {
  for (size_t n : {size_t(1), size_t(3), nr() / 2, nr() / 2 + 1, nr() - 1, nr(), nr() + 1})
    for (size_t kk : {4, 7, 64, 1001})
      for (size_t m = 1; m <= mr(); ++m) {
        const uint32_t seed = uint32_t(n * 10000 + kk * 10 + m);
        GemmTester()
            .m(m)
            .n(n)
            .k(kk)
            .a_range(0, 255)
            .w_range(-128, 127)
            .multiplier_range(1e-5, 1e-3)
            .seed(seed)
            .test(k());
        GemmTester()
            .m(m)
            .n(n)
            .k(kk)
            .a_range(200, 255)
            .w_range(-128, -100)
            .a_zero_point(0)
            .multiplier_range(1e-6, 1e-5)
            .seed(seed + 1)
            .test(k());
        GemmTester()
            .ks(3)
            .m(m)
            .n(n)
            .k(kk)
            .a_range(200, 255)
            .w_range(100, 127)
            .zero_fraction(0.2)
            .multiplier_range(1e-6, 1e-5)
            .seed(seed + 2)
            .test(k());
        if (HasFatalFailure()) return;
      }
}

TEST_P(QU8Gemm, WholeRuns) {  // M not a multiple of mr, several panels, through qu8_gemm_run
  for (size_t m : {size_t(1), mr() + 1, 2 * mr() - 1, 3 * mr() + 1, size_t(49), size_t(100)})
    for (size_t n : {size_t(1), nr() - 1, 2 * nr() + 3, size_t(70)})
      for (size_t kk : {3, 64, 150}) {
        GemmTester().m(m).n(n).k(kk).driver(true).seed(uint32_t(m * n + kk)).test(k());
        if (HasFatalFailure()) return;
      }
  GemmTester().m(37).n(19).k(40).a_stride(55).c_stride(31).driver(true).test(k());
}

TEST_P(QU8Gemm, IgemmTiles) {  // the igemm micro-kernel with ks taps, some at the zero row
  for (size_t ks : {1, 2, 3, 9})
    for (size_t kk : {1, 3, 4, 5, 16, 64, 65})
      for (size_t m = 1; m <= mr(); ++m)
        for (size_t n : {size_t(1), nr() / 2 + 1, nr(), nr() + 1, 2 * nr() + 1}) {
          GemmTester()
              .ks(ks)
              .m(m)
              .n(n)
              .k(kk)
              .a_stride(kk + 5)
              .zero_fraction(0.3)
              .seed(uint32_t(ks * 10000 + kk * 100 + m + n))
              .test(k());
          if (HasFatalFailure()) return;
        }
}

TEST_P(QU8Gemm, IgemmZeroPoints) {
  for (int za : {0, 1, 127, 128, 255})
    for (int zo : {0, 128, 255}) {
      GemmTester t;
      t.ks(9)
          .m(mr())
          .n(nr())
          .k(19)
          .zero_fraction(0.4)
          .a_zero_point(uint8_t(za))
          .out_zero_point(uint8_t(zo))
          .seed(uint32_t(za + zo));
      t.test(k());
      t.qmin(uint8_t(zo)).test(k());
      if (HasFatalFailure()) return;
    }
}

TEST_P(QU8Gemm, ConvStridePadDilation) {
  ConvTester().input(1, 9, 10, 16).out_channels(nr() + 5).kernel(3, 3).pads(1, 1, 1, 1).test(k());
  ConvTester().input(1, 11, 9, 8).out_channels(24).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).test(k());
  ConvTester().input(1, 12, 12, 12).out_channels(20).kernel(3, 3).dilation(2, 2).pads(2, 2, 2, 2).test(k());
  ConvTester().input(2, 7, 8, 5).out_channels(33).kernel(2, 3).stride(1, 2).pads(0, 2, 1, 0).test(k());
  ConvTester().input(1, 6, 6, 64).out_channels(64).kernel(1, 1).test(k());
  ConvTester().input(1, 5, 5, 64).out_channels(2 * nr() + 1).kernel(3, 3).pads(1, 1, 1, 1).test(k());
  ConvTester().input(1, 8, 8, 40).out_channels(16).kernel(1, 1).stride(2, 2).test(k());
}

TEST_P(QU8Gemm, ConvZeroPoints) {  // padding taps must read z_a
  for (int za : {0, 1, 127, 128, 255})
    ConvTester()
        .input(1, 6, 7, 7)
        .out_channels(nr() + 2)
        .kernel(3, 3)
        .pads(1, 1, 1, 1)
        .a_zero_point(uint8_t(za))
        .qmin(128)
        .seed(uint32_t(za))
        .test(k());
}

TEST_P(QU8Gemm, ConvGroups) {
  ConvTester().input(1, 7, 7, 12).out_channels(8).kernel(3, 3).pads(1, 1, 1, 1).groups(4).test(k());  // Cg = 3, Kg = 2
  ConvTester().input(1, 6, 6, 32).out_channels(64).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).groups(2).test(k());
  ConvTester().input(2, 5, 5, 10).out_channels(15).kernel(1, 1).groups(5).test(k());
}

TEST_P(QU8Gemm, ConvFirstLayer) {  // 3 input channels: kc = 3 reads one byte of slack per tap
  ConvTester().input(1, 17, 17, 3).out_channels(nr() + 3).kernel(3, 3).pads(1, 1, 1, 1).test(k());
  ConvTester().input(1, 32, 30, 3).out_channels(64).kernel(7, 7).stride(2, 2).pads(3, 3, 3, 3).test(k());
  ConvTester().input(1, 15, 15, 3).out_channels(16).kernel(3, 3).stride(2, 2).test(k());
}

// ---- The float-output dense (QU8Kernels::gemm_dequantize through qu8_gemm_dequantize_run) -----
//
// Every output float, bit for bit, against (1) the formula: the int64 sum bias + sum (a - z_a) w
// wrapped to int32, converted, times the scale, and (2) the scalar table on the same problem.
// Weights are packed with the table's nr, kr and weight_bytes; activation rows end at a guard page
// after the kr - 1 bytes of slack qu8.h allows, the output ends at one, and the floats between
// rows (a wider output stride) and outside the panels asked for must keep their sentinel.

uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

struct DenseCase {
  size_t M, N, Kd, a_stride, out_stride;
  uint8_t za;
  bool extreme;  // a = 255, w = -128, so long sums wrap
  uint32_t seed;
};

// out[m][n] for panels [p0, p1) of `k`'s packing, the rest left as `fill`.
std::vector<float> run_dense(const QU8Kernels& k, const DenseCase& c, const std::vector<uint8_t>& a,
                             const std::vector<int8_t>& w, const std::vector<int32_t>& bias,
                             const std::vector<float>& scale, size_t p0, size_t p1, float fill) {
  std::vector<uint8_t> storage =
      q8_test::packed_storage(q8::kern::qu8_gemm_packed_bytes(c.Kd, c.N, k.nr, k.kr, k.weight_bytes));
  void* packed = q8_test::aligned64(storage);
  q8::kern::qu8_gemm_pack(c.Kd, c.N, k.nr, k.kr, k.weight_bytes, w.data(), 1, c.Kd, bias.data(), scale.data(), c.za,
                          packed);
  q8_test::GuardedBuffer ga((c.M - 1) * c.a_stride + q8_test::round_up(c.Kd, k.kr));
  std::memset(ga.data(), 0xA5, ga.size());  // slack and gaps: any byte, they meet zero weights
  for (size_t m = 0; m < c.M; ++m) std::memcpy(ga.data() + m * c.a_stride, a.data() + m * c.Kd, c.Kd);
  const size_t out_floats = (c.M - 1) * c.out_stride + c.N;
  q8_test::GuardedBuffer go(out_floats * sizeof(float));
  float* out = reinterpret_cast<float*>(go.data());
  for (size_t i = 0; i < out_floats; ++i) out[i] = fill;
  q8::kern::qu8_gemm_dequantize_run(k, c.N, c.Kd, ga.data(), c.a_stride, packed, out, c.out_stride, 0, c.M, p0, p1);
  return std::vector<float>(out, out + out_floats);
}

void test_dense(const QU8Kernels& k, const DenseCase& c) {
  SCOPED_TRACE(::testing::Message() << k.isa << " M " << c.M << " N " << c.N << " K " << c.Kd << " a_stride "
                                    << c.a_stride << " out_stride " << c.out_stride << " za " << int(c.za)
                                    << (c.extreme ? " extreme" : ""));
  std::mt19937 rng(c.seed);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  std::uniform_int_distribution<int32_t> b32(INT32_MIN, INT32_MAX);
  std::vector<uint8_t> a(c.M * c.Kd);
  std::vector<int8_t> w(c.N * c.Kd);
  std::vector<int32_t> bias(c.N);
  for (uint8_t& v : a) v = c.extreme ? 255 : static_cast<uint8_t>(u8(rng));
  for (int8_t& v : w) v = c.extreme ? -128 : static_cast<int8_t>(s8(rng));
  for (int32_t& v : bias) v = c.extreme ? 0 : b32(rng) / 64;
  const std::vector<float> scale = q8_test::multipliers(c.N, 1e-7, 1e-1, rng);
  const float fill = -12345.f;
  const size_t panels = (c.N + k.nr - 1) / k.nr;
  const std::vector<float> got = run_dense(k, c, a, w, bias, scale, 0, panels, fill);
  const QU8Kernels& ks = *q8::kern::qu8_kernels_scalar();
  const std::vector<float> oracle = run_dense(ks, c, a, w, bias, scale, 0, (c.N + ks.nr - 1) / ks.nr, fill);
  for (size_t m = 0; m < c.M; ++m)
    for (size_t n = 0; n < c.out_stride && m * c.out_stride + n < got.size(); ++n) {
      const size_t i = m * c.out_stride + n;
      if (n >= c.N) {
        ASSERT_EQ(float_bits(got[i]), float_bits(fill)) << "wrote between rows: m " << m << " n " << n;
        continue;
      }
      int64_t acc = bias[n];
      for (size_t kk = 0; kk < c.Kd; ++kk) acc += (int64_t{a[m * c.Kd + kk]} - c.za) * w[n * c.Kd + kk];
      const int32_t wrapped = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(acc)));
      const float want = static_cast<float>(wrapped) * scale[n];
      ASSERT_EQ(float_bits(got[i]), float_bits(want)) << "m " << m << " n " << n << ": " << got[i] << " vs " << want;
      ASSERT_EQ(float_bits(got[i]), float_bits(oracle[i])) << "m " << m << " n " << n << " differs from scalar";
    }
  // Two calls over complementary panel ranges (the thread split) give the same floats, and one
  // call alone leaves the other range untouched.
  if (panels >= 2) {
    const size_t half = panels / 2;
    const std::vector<float> lo = run_dense(k, c, a, w, bias, scale, 0, half, fill);
    const std::vector<float> hi = run_dense(k, c, a, w, bias, scale, half, panels, fill);
    for (size_t i = 0; i < got.size(); ++i) {
      const size_t n = i % c.out_stride;
      const bool in_lo = n < half * k.nr;
      ASSERT_EQ(float_bits(in_lo ? lo[i] : hi[i]), float_bits(got[i])) << "index " << i;
      ASSERT_EQ(float_bits(in_lo ? hi[i] : lo[i]), float_bits(n < c.N ? fill : got[i])) << "index " << i;
    }
  }
}

TEST_P(QU8Gemm, DenseDequantizeEdges) {  // rows 1 .. mr + 2, N and K around the tile and the K group
  uint32_t seed = 1;
  for (size_t kd : {size_t{1}, size_t{3}, size_t{4}, size_t{5}, size_t{7}, size_t{8}, size_t{9}, size_t{15}, size_t{16},
                    size_t{17}, size_t{33}, size_t{64}, size_t{65}, size_t{127}})
    for (size_t n : {size_t{1}, nr() - 1, nr(), nr() + 1, 2 * nr() + 3}) {
      if (n == 0) continue;
      for (size_t m : {size_t{1}, size_t{2}, size_t{3}, mr(), mr() + 2}) {
        const uint8_t za = static_cast<uint8_t>((seed * 37) % 256);
        test_dense(k(), {m, n, kd, kd, n, za, false, seed++});
        if (HasFatalFailure()) return;
      }
      test_dense(k(), {2, n, kd, kd + 5, n + 3, 128, false, seed++});
      if (HasFatalFailure()) return;
    }
}

TEST_P(QU8Gemm, DenseDequantizeClassifierShapes) {  // batch 1 and 3 at the shapes of real classifiers
  uint32_t seed = 100;
  for (size_t m : {size_t{1}, size_t{3}})
    for (const auto& [kd, n] : std::vector<std::pair<size_t, size_t>>{{512, 1000}, {1280, 1000}, {2048, 1000}}) {
      test_dense(k(), {m, n, kd, kd, n, 0, false, seed++});
      test_dense(k(), {m, n, kd, kd, n, 255, false, seed++});
      if (HasFatalFailure()) return;
    }
}

TEST_P(QU8Gemm, DenseDequantizeWrapsLikeTheReference) {  // a = 255, w = -128 over 70001 channels wraps int32
  for (size_t m : {size_t{1}, size_t{2}}) test_dense(k(), {m, 37, 70001, 70001, 37, 0, true, 5});
}

// The amx table's gemm_dequantize is the AVX-512 VNNI kernel (AMX tiles gain nothing at a row or
// a few), driven with the amx table's 16-row tiles: it runs on any CPU with VNNI, AMX or not.
TEST(QU8GemmDequantize, AmxTableEntryTakesTheAmxTileRows) {
  if (!q8_test::cpu_supports("avx512vnni")) GTEST_SKIP() << "this CPU cannot run avx512vnni";
  const QU8Kernels* amx = q8::kern::qu8_kernels_amx();
  if (!amx) GTEST_SKIP() << "build lacks amx";
  ASSERT_EQ(amx->mr, 16u);
  for (size_t m : {size_t{9}, size_t{16}, size_t{21}}) test_dense(*amx, {m, 70, 100, 100, 73, 7, false, 9});
}

// The requantizing GEMM split over panels (a batch-1 QuantizedDense's threads) gives the bytes of
// the split over rows, and a panel range writes only its channels.
TEST_P(QU8Gemm, GemmRunPanelsMatchesRunOverRows) {
  std::mt19937 rng(11);
  for (const auto& [M, N, Kd] : std::vector<std::tuple<size_t, size_t, size_t>>{
           {1, 1, 1}, {1, 1000, 517}, {2, 3 * nr() + 1, 65}, {mr(), 2 * nr(), 9}, {mr() + 3, nr() + 5, 40}}) {
    SCOPED_TRACE(::testing::Message() << "M " << M << " N " << N << " K " << Kd);
    std::uniform_int_distribution<int> u8(0, 255), s8(-127, 127), b(-5000, 5000);
    std::vector<uint8_t> a(M * Kd + k().kr);
    std::vector<int8_t> w(N * Kd);
    std::vector<int32_t> bias(N);
    for (uint8_t& v : a) v = static_cast<uint8_t>(u8(rng));
    for (int8_t& v : w) v = static_cast<int8_t>(s8(rng));
    for (int32_t& v : bias) v = b(rng);
    const std::vector<float> mult = q8_test::multipliers(N, 1e-4, 1e-2, rng);
    std::vector<uint8_t> storage =
        q8_test::packed_storage(q8::kern::qu8_gemm_packed_bytes(Kd, N, nr(), k().kr, k().weight_bytes));
    void* packed = q8_test::aligned64(storage);
    q8::kern::qu8_gemm_pack(Kd, N, nr(), k().kr, k().weight_bytes, w.data(), 1, Kd, bias.data(), mult.data(), 100,
                            packed);
    q8::kern::QU8Requant rq;
    rq.out_zero_point = 120;
    rq.out_min = 3;
    std::vector<uint8_t> rows(M * N, 0xEE), panels(M * N, 0xEE);
    q8::kern::qu8_gemm_run(k(), N, Kd, a.data(), Kd, packed, rows.data(), N, 0, M, rq);
    const size_t np = (N + nr() - 1) / nr(), half = np / 2;
    q8::kern::qu8_gemm_run(k(), N, Kd, a.data(), Kd, packed, panels.data(), N, 0, M, rq, 0, half);
    for (size_t i = 0; i < M * N; ++i)
      if (i % N >= half * nr()) {
        ASSERT_EQ(panels[i], 0xEE) << "index " << i << " is outside the panels";
      }
    q8::kern::qu8_gemm_run(k(), N, Kd, a.data(), Kd, packed, panels.data(), N, 0, M, rq, half, np);
    ASSERT_EQ(rows, panels);
  }
}

// The shapes the kernel-row igemm (ConvTester checks it against the per-tap igemm for every case
// with groups == 1 and DW == 1) is meant for, and its edges: few channels, large kernels and
// strides, pads on every side, windows wider than the input, batches.
TEST_P(QU8Gemm, ConvFewChannelsKernelRows) {
  uint32_t seed = 100;
  for (size_t C : {1, 2, 3, 4, 5}) {
    ConvTester().input(1, 30, 28, C).out_channels(64).kernel(7, 7).stride(2, 2).pads(3, 3, 3, 3).seed(seed++).test(k());
    ConvTester()
        .input(1, 35, 37, C)
        .out_channels(nr() + 1)
        .kernel(11, 11)
        .stride(4, 4)
        .pads(2, 2, 2, 2)
        .seed(seed++)
        .test(k());
    ConvTester().input(2, 13, 11, C).out_channels(32).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).seed(seed++).test(k());
    ConvTester()
        .input(1, 12, 14, C)
        .out_channels(9)
        .kernel(5, 3)
        .dilation(2, 3)
        .pads(4, 0, 1, 3)
        .seed(seed++)
        .test(k());
    // Vertical dilation only: still kernel rows (DW = 1).
    ConvTester()
        .input(1, 15, 13, C)
        .out_channels(20)
        .kernel(3, 5)
        .dilation(3, 1)
        .pads(3, 2, 2, 1)
        .seed(seed++)
        .test(k());
    // Rows shorter than 16 bytes.
    ConvTester().input(1, 4, 3, C).out_channels(17).kernel(3, 3).pads(2, 2, 2, 2).seed(seed++).test(k());
    ConvTester().input(3, 9, 6, C).out_channels(5).kernel(6, 6).stride(1, 1).pads(0, 0, 0, 0).seed(seed++).test(k());
    ConvTester().input(1, 70, 66, C).out_channels(24).kernel(7, 7).stride(1, 1).pads(3, 2, 1, 3).seed(seed++).test(k());
  }
  for (int za : {0, 1, 127, 128, 255})
    ConvTester()
        .input(1, 20, 19, 3)
        .out_channels(nr() + 2)
        .kernel(7, 7)
        .stride(2, 2)
        .pads(3, 3, 3, 3)
        .a_zero_point(uint8_t(za))
        .seed(uint32_t(za))
        .test(k());
}

std::string isa_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

INSTANTIATE_TEST_SUITE_P(Tables, QU8Gemm,
                         ::testing::Values("scalar", "avx2", "avx2_w8", "avxvnni", "avx512", "avx512vnni",
                                           "avx512vnni_6x64", "amx", "amx_model", "neon", "neondot", "neoni8mm"),
                         isa_name);

// ---- Packing layout (qu8.h), written out by hand ----------------------------------------------

struct PanelBytes {  // one decoded panel
  std::vector<int32_t> bias;
  std::vector<int8_t> w;
  std::vector<float> m;
};
PanelBytes panel_at(const uint8_t* p, size_t nr, size_t wbytes) {
  PanelBytes d{std::vector<int32_t>(nr), std::vector<int8_t>(wbytes), std::vector<float>(nr)};
  std::memcpy(d.bias.data(), p, nr * sizeof(int32_t));
  std::memcpy(d.w.data(), p + nr * sizeof(int32_t), wbytes);
  std::memcpy(d.m.data(), p + nr * sizeof(int32_t) + wbytes, nr * sizeof(float));
  return d;
}

// Dense 5 x 3, nr = 2: two panels, the second with one real channel; z_a = 2 folds -2 * sum w.
TEST(QU8Pack, GemmLayoutForEachKr) {
  const int8_t w[3][5] = {{1, 2, 3, 4, 5}, {-1, -2, -3, -4, -5}, {6, 7, 8, 9, 10}};  // w[n][k]
  const int32_t bias[3] = {10, 20, 30};
  const float mult[3] = {0.5f, 0.25f, 2.0f};
  // kr = 4 (every c4 table): 2 blocks per panel, lane n's 4 channels contiguous within a block.
  {
    ASSERT_EQ(q8::kern::qu8_gemm_packed_bytes(5, 3, 2, 4, 1), 2u * (8 + 16 + 8));
    std::vector<uint8_t> packed(64, 0xEE);
    q8::kern::qu8_gemm_pack(5, 3, 2, 4, 1, &w[0][0], 1, 5, bias, mult, 2, packed.data());
    const PanelBytes p0 = panel_at(packed.data(), 2, 16), p1 = panel_at(packed.data() + 32, 2, 16);
    EXPECT_EQ(p0.bias, (std::vector<int32_t>{10 - 2 * 15, 20 + 2 * 15}));
    EXPECT_EQ(p0.w, (std::vector<int8_t>{1, 2, 3, 4, -1, -2, -3, -4, 5, 0, 0, 0, -5, 0, 0, 0}));
    EXPECT_EQ(p0.m, (std::vector<float>{0.5f, 0.25f}));
    EXPECT_EQ(p1.bias, (std::vector<int32_t>{30 - 2 * 40, 0}));
    EXPECT_EQ(p1.w, (std::vector<int8_t>{6, 7, 8, 9, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(p1.m, (std::vector<float>{2.0f, 0.0f}));
  }
  // kr = 8 (neoni8mm): one block per panel, lane n's 8 channels contiguous.
  {
    ASSERT_EQ(q8::kern::qu8_gemm_packed_bytes(5, 3, 2, 8, 1), 2u * (8 + 16 + 8));
    std::vector<uint8_t> packed(64, 0xEE);
    q8::kern::qu8_gemm_pack(5, 3, 2, 8, 1, &w[0][0], 1, 5, bias, mult, 2, packed.data());
    const PanelBytes p0 = panel_at(packed.data(), 2, 16), p1 = panel_at(packed.data() + 32, 2, 16);
    EXPECT_EQ(p0.bias, (std::vector<int32_t>{10 - 2 * 15, 20 + 2 * 15}));
    EXPECT_EQ(p0.w, (std::vector<int8_t>{1, 2, 3, 4, 5, 0, 0, 0, -1, -2, -3, -4, -5, 0, 0, 0}));
    EXPECT_EQ(p1.bias, (std::vector<int32_t>{30 - 2 * 40, 0}));
    EXPECT_EQ(p1.w, (std::vector<int8_t>{6, 7, 8, 9, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(p1.m, (std::vector<float>{2.0f, 0.0f}));
  }
  // kr = 4 with int16 weights (avx2): the kr = 4 order, each weight sign-extended to 2 bytes.
  {
    ASSERT_EQ(q8::kern::qu8_gemm_packed_bytes(5, 3, 2, 4, 2), 2u * (8 + 32 + 8));
    std::vector<uint8_t> packed(96, 0xEE);
    q8::kern::qu8_gemm_pack(5, 3, 2, 4, 2, &w[0][0], 1, 5, bias, mult, 2, packed.data());
    const PanelBytes p0 = panel_at(packed.data(), 2, 32), p1 = panel_at(packed.data() + 48, 2, 32);
    std::vector<int16_t> w0(16), w1(16);
    std::memcpy(w0.data(), p0.w.data(), 32);
    std::memcpy(w1.data(), p1.w.data(), 32);
    EXPECT_EQ(p0.bias, (std::vector<int32_t>{10 - 2 * 15, 20 + 2 * 15}));
    EXPECT_EQ(w0, (std::vector<int16_t>{1, 2, 3, 4, -1, -2, -3, -4, 5, 0, 0, 0, -5, 0, 0, 0}));
    EXPECT_EQ(p0.m, (std::vector<float>{0.5f, 0.25f}));
    EXPECT_EQ(p1.bias, (std::vector<int32_t>{30 - 2 * 40, 0}));
    EXPECT_EQ(w1, (std::vector<int16_t>{6, 7, 8, 9, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(p1.m, (std::vector<float>{2.0f, 0.0f}));
  }
}

// Conv 3 -> 2 channels, 1 x 2 kernel (two taps), nr = 2, no bias, z_a = 1: blocks are per tap.
TEST(QU8Pack, ConvLayoutForEachKr) {
  ConvGeometry g;
  g.IH = 1;
  g.IW = 2;
  g.C = 3;
  g.OH = 1;
  g.OW = 1;
  g.K = 2;
  g.KH = 1;
  g.KW = 2;
  const int8_t w[2 * 3 * 2] = {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6};  // [K][C][1][2]: c0 (t0, t1), c1 ...
  const float mult[2] = {1.0f, 3.0f};
  const std::vector<int32_t> want_bias = {-21, 21};
  {
    ASSERT_EQ(q8::kern::qu8_conv_packed_bytes(g, 2, 4, 1), 8u + 2 * 8 + 8);
    std::vector<uint8_t> packed(32, 0xEE);
    q8::kern::qu8_conv_pack(g, 2, 4, 1, w, nullptr, mult, 1, packed.data());
    const PanelBytes p = panel_at(packed.data(), 2, 16);
    EXPECT_EQ(p.bias, want_bias);
    EXPECT_EQ(p.w, (std::vector<int8_t>{1, 3, 5, 0, -1, -3, -5, 0, 2, 4, 6, 0, -2, -4, -6, 0}));
    EXPECT_EQ(p.m, (std::vector<float>{1.0f, 3.0f}));
  }
  {
    ASSERT_EQ(q8::kern::qu8_conv_packed_bytes(g, 2, 8, 1), 8u + 2 * 16 + 8);
    std::vector<uint8_t> packed(48, 0xEE);
    q8::kern::qu8_conv_pack(g, 2, 8, 1, w, nullptr, mult, 1, packed.data());
    const PanelBytes p = panel_at(packed.data(), 2, 32);
    EXPECT_EQ(p.bias, want_bias);
    EXPECT_EQ(p.w, (std::vector<int8_t>{1, 3, 5, 0, 0, 0, 0, 0, -1, -3, -5, 0, 0, 0, 0, 0,  //
                                        2, 4, 6, 0, 0, 0, 0, 0, -2, -4, -6, 0, 0, 0, 0, 0}));
    EXPECT_EQ(p.m, (std::vector<float>{1.0f, 3.0f}));
  }
}

}  // namespace
