// The AMX int8 path without an AMX machine:
//  - the detection (kernels/x86/amx_support.h) answers, with a reason when AMX is unusable, and
//    agrees with CPUID;
//  - the scalar tile model (kernels/x86/amx_tile_model.h) computes TDPBUSD as the SDM defines it
//    and refuses what the hardware would refuse;
//  - the AMX micro-kernel driver over that model (the same code as the real kernels, only the tile
//    ops and the epilogue differ) equals the scalar table byte for byte over every K tail, row
//    count, channel count, tap count and stride, and configures the tiles once per thread and shape.
// On an AMX machine test_qu8_gemm.cpp and test_qu8_ops.cpp run the real "amx" table; elsewhere they
// skip it, saying why.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/qu8.h"
#include "kernels/qu8_internal.h"
#include "qu8_gemm_tester.h"

#if defined(Q8_ARCH_X86)
#include <cpuid.h>

#include "kernels/x86/amx_support.h"
#include "kernels/x86/amx_tile_model.h"

namespace {

using q8::kern::QU8Kernels;
using q8_test::ConvTester;
using q8_test::GemmTester;
namespace tm = q8::kern::amx_model;

const QU8Kernels& model() { return *q8::kern::qu8_kernels_amx_model(); }

// ---- Detection --------------------------------------------------------------------------------

TEST(AmxSupport, AnswersWithAReasonAndAgreesWithCpuid) {
  const char* why = nullptr;
  const bool usable = q8::kern::qu8_amx_usable(&why);
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool leaf7 = __get_cpuid_count(7, 0, &a, &b, &c, &d);
  const bool amx_int8 = leaf7 && (d & (1u << 24)) && (d & (1u << 25));
  if (usable) {
    EXPECT_TRUE(amx_int8) << "usable, but CPUID lacks AMX-TILE/AMX-INT8";
    EXPECT_EQ(why, nullptr) << "a reason was given although AMX is usable";
    EXPECT_NE(q8::kern::qu8_kernels_amx(), nullptr) << "AMX usable but the build has no amx table";
  } else {
    ASSERT_NE(why, nullptr);
    EXPECT_STRNE(why, "");
    if (!amx_int8) {
      EXPECT_NE(std::string(why).find("AMX"), std::string::npos) << why;
    }
    std::printf("AMX not usable here: %s\n", why);
  }
  const char* why2 = nullptr;
  EXPECT_EQ(q8::kern::qu8_amx_usable(&why2), usable);  // computed once: the same answer again
  EXPECT_EQ(q8::kern::qu8_amx_usable(nullptr), usable);
}

TEST(AmxSupport, TableShape) {
  const QU8Kernels* t = q8::kern::qu8_kernels_amx();
  if (!t) GTEST_SKIP() << "this compiler has no AMX flags; the build has no amx table";
  EXPECT_STREQ(t->isa, "amx");
  EXPECT_EQ(t->mr, 16u);
  EXPECT_EQ(t->nr, 32u);
  EXPECT_STREQ(t->igemm.name, "qu8_igemm_16x32c4__amx");
  EXPECT_STREQ(t->gemm.name, "qu8_gemm_16x32c4__amx");
  EXPECT_EQ(model().mr, t->mr);
  EXPECT_EQ(model().nr, t->nr);
}

// ---- The tile model -----------------------------------------------------------------------------

tm::TileConfig config(std::initializer_list<std::pair<int, int>> rows_colsb) {
  tm::TileConfig c;
  c.palette_id = 1;
  int i = 0;
  for (auto [r, cb] : rows_colsb) {
    c.rows[i] = static_cast<uint8_t>(r);
    c.colsb[i] = static_cast<uint16_t>(cb);
    ++i;
  }
  return c;
}

// TDPBUSD on random tiles of every legal shape used: M rows, K bytes of A (K/4 rows of B), N int32
// columns, against int64 sums wrapped to int32 (dst starts from a loaded, nonzero value).
TEST(AmxTileModel, TdpbusdMatchesTheDefinition) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int m : {1, 5, 16})
    for (int kb : {1, 3, 15, 16})
      for (int n : {1, 7, 16}) {
        tm::ldtilecfg(config({{m, 4 * n}, {m, 4 * kb}, {kb, 4 * n}}));
        std::vector<uint8_t> A(m * 64), B(kb * 64);
        std::vector<int32_t> C(m * 16), got(m * 16, 0);
        for (auto& x : A) x = static_cast<uint8_t>(byte(rng));
        for (auto& x : B) x = static_cast<uint8_t>(byte(rng));
        for (auto& x : C) x = static_cast<int32_t>(rng());
        tm::tileloadd(0, C.data(), 64);
        tm::tileloadd(1, A.data(), 64);
        tm::tileloadd(2, B.data(), 64);
        tm::tdpbusd(0, 1, 2);
        tm::tilestored(0, got.data(), 64);
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) {
            int64_t want = C[i * 16 + j];
            for (int k = 0; k < 4 * kb; ++k)
              want += int64_t{A[i * 64 + k]} * int64_t{int8_t(B[(k / 4) * 64 + 4 * j + k % 4])};
            ASSERT_EQ(got[i * 16 + j], static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(want))))
                << "m=" << m << " kb=" << kb << " n=" << n << " at " << i << "," << j;
          }
        tm::tilerelease();
      }
}

TEST(AmxTileModel, LoadTouchesOnlyRowsTimesColsbAndZeroesTheRest) {
  tm::ldtilecfg(config({{3, 8}}));
  std::vector<uint8_t> src(3 * 100, 0x5A), out(16 * 64, 0xEE);
  tm::tileloadd(0, src.data(), 100);
  tm::tilestored(0, out.data(), 64);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 64; ++c) EXPECT_EQ(out[r * 64 + c], r < 3 && c < 8 ? 0x5A : 0xEE) << r << "," << c;
  EXPECT_EQ(tm::state().t[0][2][8], 0);  // bytes past colsb are zero in the register
  EXPECT_EQ(tm::state().t[0][3][0], 0);  // so are rows past rows
  tm::tilerelease();
}

TEST(AmxTileModelDeathTest, RefusesWhatTheHardwareRefuses) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(tm::tilezero(0), "not configured");
  EXPECT_DEATH(tm::ldtilecfg(config({{17, 64}})), "beyond the palette");
  EXPECT_DEATH(tm::ldtilecfg(config({{16, 65}})), "beyond the palette");
  EXPECT_DEATH(
      {
        tm::ldtilecfg(config({{16, 64}, {16, 64}, {15, 64}}));  // K = 64 bytes of A but 15 rows of B
        tm::tdpbusd(0, 1, 2);
      },
      "colsb\\(a\\) != 4 \\* rows\\(b\\)");
  EXPECT_DEATH(
      {
        tm::ldtilecfg(config({{16, 64}, {8, 64}, {16, 64}}));
        tm::tdpbusd(0, 1, 2);
      },
      "rows\\(dst\\) != rows\\(a\\)");
  EXPECT_DEATH(
      {
        tm::ldtilecfg(config({{16, 64}, {16, 64}}));
        tm::tdpbusd(0, 1, 1);
      },
      "not distinct");
}

// ---- The driver over the model, against the scalar table ---------------------------------------

// Every kc from 1 to 200 (every K tail of 0-15 blocks, 0-3 whole 64-channel steps, every kc % 4),
// for the gemm and the indirect gemm, with full and partial tiles of rows and channels.
TEST(AmxModelGemm, EveryKcAndTail) {
  for (size_t kc = 1; kc <= 200; ++kc)
    for (size_t m : {1, 9, 15, 16})
      for (size_t n : {1, 16, 17, 32}) {
        const uint32_t seed = uint32_t(kc * 1000 + m * 40 + n);
        GemmTester().m(m).n(n).k(kc).seed(seed).test(model());
        GemmTester().ks(2).m(m).n(n).k(kc).zero_fraction(0.25).seed(seed + 1).test(model());
        if (HasFatalFailure()) return;
      }
}

// The A tile a call loads last: the tail's (tmm5) when kc has one, else the whole step's (tmm2).
int a_tile(size_t kc) { return (kc + 3) / 4 % 16 ? 5 : 2; }

// Strided A rows: the gemm with 16 rows loads A straight from the activations at a_stride (any
// stride, odd ones included), and so does an igemm tap whose 16 row pointers are evenly spaced.
TEST(AmxModelGemm, DirectLoadsUseTheRowStride) {
  for (size_t kc : {3, 64, 70, 129, 300})
    for (size_t as : {kc, kc + 1, kc + 61, 2 * kc + 64}) {
      GemmTester().m(16).n(32).k(kc).a_stride(as).c_stride(45).seed(uint32_t(kc + as)).test(model());
      EXPECT_EQ(tm::state().n.last_load_stride[a_tile(kc)], ptrdiff_t(as))
          << "the gemm's A tile was not loaded from the rows at stride " << as;
      for (size_t ks : {1, 3}) {
        GemmTester().ks(ks).in_order(true).m(16).n(20).k(kc).a_stride(as).seed(uint32_t(kc * as + ks)).test(model());
        EXPECT_EQ(tm::state().n.last_load_stride[a_tile(kc)], ptrdiff_t(ks * as))
            << "the igemm's evenly spaced rows were gathered instead of loaded at stride " << ks * as;
      }
      if (HasFatalFailure()) return;
    }
  // Scrambled rows, and partial tiles, go through the 64-byte gather buffer.
  GemmTester().ks(3).m(16).n(32).k(100).seed(3).test(model());
  EXPECT_EQ(tm::state().n.last_load_stride[5], 64);
  GemmTester().m(15).n(32).k(100).a_stride(300).seed(4).test(model());
  EXPECT_EQ(tm::state().n.last_load_stride[5], 64);
}

TEST(AmxModelGemm, ZeroPointsClampsAndMultipliers) {
  const double ranges[][2] = {{1e-6, 1e-5}, {1e-3, 0.05}, {0.5, 2.0}, {1e-6, 2.0}};
  for (int za : {0, 1, 127, 128, 255})
    for (int zo : {0, 1, 128, 255})
      for (size_t kc : {3, 61, 64, 67}) {
        GemmTester t;
        t.m(16).n(33).k(kc).a_zero_point(uint8_t(za)).out_zero_point(uint8_t(zo)).seed(uint32_t(za * 31 + zo + kc));
        t.test(model());
        t.qmin(uint8_t(zo)).test(model());
        t.qmin(100).qmax(150).test(model());
        t.ks(9).zero_fraction(0.4).qmin(0).qmax(255).test(model());
        if (HasFatalFailure()) return;
      }
  for (const auto& r : ranges)
    for (size_t kc : {1, 27, 300}) {
      GemmTester().m(16).n(64).k(kc).multiplier_range(r[0], r[1]).seed(uint32_t(kc * 13)).test(model());
      GemmTester().m(7).n(31).k(kc).multiplier_range(r[0], r[1]).out_zero_point(0).qmin(0).test(model());
    }
}

// Sums far beyond int16 that cancel exactly against bias' (z_a = 255), every row and lane.
TEST(AmxModelGemm, ExtremeValues) {
  for (int8_t wv : {int8_t(-128), int8_t(127)})
    for (int za : {0, 255})
      for (size_t kc : {64, 1001, 4096}) {
        const double acc = 255.0 * 128.0 * double(kc);
        GemmTester t;
        t.m(16).n(33).k(kc).a_range(255, 255).w_range(wv, wv).a_zero_point(uint8_t(za)).seed(uint32_t(kc));
        t.multiplier_range(100.0 / acc, 127.0 / acc).test(model());
        t.multiplier_range(0.1, 1.0).test(model());
        t.ks(2).in_order(true).multiplier_range(1e-6, 1e-5).test(model());
        if (HasFatalFailure()) return;
      }
  GemmTester().m(16).n(32).k(8191).a_range(0, 255).w_range(-128, 127).multiplier_range(1e-6, 1e-4).test(model());
}

TEST(AmxModelGemm, WholeRunsAndConvs) {
  for (size_t m : {1, 17, 31, 49, 100})
    for (size_t n : {5, 32, 70})
      for (size_t kc : {3, 64, 150}) {
        GemmTester().m(m).n(n).k(kc).driver(true).seed(uint32_t(m * n + kc)).test(model());
        GemmTester().ks(3).m(m).n(n).k(kc).zero_fraction(0.2).driver(true).seed(uint32_t(m * n * kc)).test(model());
        if (HasFatalFailure()) return;
      }
  // Rows of 48 output pixels: tiles of 16 evenly spaced pixels away from the padding (loaded
  // straight from the input), and tiles touching it (gathered, zero row included).
  ConvTester().input(1, 3, 48, 24).out_channels(40).kernel(3, 3).pads(1, 1, 1, 1).test(model());
  ConvTester().input(1, 2, 96, 20).out_channels(32).kernel(1, 3).stride(1, 2).pads(0, 1, 0, 1).test(model());
  ConvTester().input(1, 17, 17, 3).out_channels(35).kernel(3, 3).pads(1, 1, 1, 1).test(model());
  ConvTester().input(1, 32, 30, 3).out_channels(64).kernel(7, 7).stride(2, 2).pads(3, 3, 3, 3).test(model());
  ConvTester().input(1, 6, 6, 32).out_channels(64).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).groups(2).test(model());
  ConvTester().input(1, 7, 7, 12).out_channels(8).kernel(3, 3).pads(1, 1, 1, 1).groups(4).test(model());
}

// ---- Tile configuration: once per thread and K tail ----------------------------------------------

TEST(AmxModelConfig, LoadedOncePerThreadAndShapeAndReleased) {
  q8::kern::qu8_amx_model_release_thread();
  const tm::Counters before = tm::state().n;
  for (int i = 0; i < 5; ++i) GemmTester().m(16).n(32).k(100).seed(uint32_t(i)).test(model());  // tb = 9
  // The tester runs the scalar table too, which uses no tiles.
  EXPECT_EQ(tm::state().n.configs - before.configs, 1u) << "same shape: one LDTILECFG";
  GemmTester().m(3).n(7).k(128).test(model());  // tb = 0: a new configuration
  GemmTester().m(3).n(7).k(192).test(model());  // tb = 0 again
  EXPECT_EQ(tm::state().n.configs - before.configs, 2u);
  EXPECT_TRUE(tm::state().configured);

  // Another thread has its own tile registers: its first call configures them, and this thread's
  // configuration is untouched.
  uint64_t other_configs = 0;
  bool other_configured_after_release = true;
  std::thread th([&] {
    GemmTester().m(16).n(32).k(100).test(model());
    GemmTester().m(16).n(32).k(100).test(model());
    other_configs = tm::state().n.configs;
    q8::kern::qu8_amx_model_release_thread();
    other_configured_after_release = tm::state().configured;
  });
  th.join();
  EXPECT_EQ(other_configs, 1u);
  EXPECT_FALSE(other_configured_after_release);
  EXPECT_EQ(tm::state().n.configs - before.configs, 2u);

  const uint64_t releases = tm::state().n.releases;
  q8::kern::qu8_amx_model_release_thread();
  q8::kern::qu8_amx_model_release_thread();  // a second release is a no-op
  EXPECT_EQ(tm::state().n.releases - releases, 1u);
  EXPECT_FALSE(tm::state().configured);
  GemmTester().m(16).n(32).k(128).test(model());  // configures again after the release
  EXPECT_EQ(tm::state().n.configs - before.configs, 3u);
  q8::kern::qu8_amx_model_release_thread();
}

}  // namespace
#endif
