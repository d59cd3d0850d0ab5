// The portable fp32 kernels of the binary, reduction and normalisation ops (kernels/f32_misc.h):
// general broadcasting by op kind, ReduceMean, Softmax/LogSoftmax, LayerNormalization, and q8's
// own exp and log. They are one implementation on every CPU; the checksums below pin their bits,
// so the same test under qemu (scripts/test_arm.sh) shows AArch64 gives the same bytes as x86.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/f32_misc.h"

namespace q8::kern {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -2.f, float hi = 2.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Multiples of 1/1000 in [-lim, lim] from integers: no float arithmetic a compiler could contract
// differently per target (std::uniform_real_distribution's a + (b - a) * u becomes an FMA on
// AArch64), so every CPU sees the same inputs.
std::vector<float> exact_floats(size_t n, uint32_t seed, int lim) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  for (float& x : v)
    x = static_cast<float>(static_cast<int32_t>(rng() % static_cast<uint32_t>(2000 * lim + 1)) - 1000 * lim) / 1000.0f;
  return v;
}

uint32_t bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

// Distance in units in the last place between two finite floats of the same sign.
int64_t ulps(float a, float b) { return std::llabs(static_cast<int64_t>(bits(a)) - static_cast<int64_t>(bits(b))); }

// FNV-1a over the bits of a sequence of floats.
struct Checksum {
  uint64_t h = 1469598103934665603ull;
  void add(float x) {
    const uint32_t b = bits(x);
    for (int i = 0; i < 4; ++i) h = (h ^ ((b >> (8 * i)) & 0xff)) * 1099511628211ull;
  }
};

TEST(F32Portable, ExpAndLogAreWithinOneUlpOfDoublePrecision) {
  for (float x = -103.f; x < 88.7f; x += 0.0137f) {
    const float want = static_cast<float>(std::exp(static_cast<double>(x)));
    if (want < std::numeric_limits<float>::min()) continue;  // subnormal results: absolute error
    ASSERT_LE(ulps(portable_expf(x), want), 1) << "exp(" << x << ")";
  }
  for (float x = 1e-30f; x < 1e30f; x *= 1.0173f) {
    const float want = static_cast<float>(std::log(static_cast<double>(x)));
    ASSERT_LE(ulps(portable_logf(x), want), 1) << "log(" << x << ")";
  }
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(portable_expf(0.f), 1.f);
  EXPECT_EQ(portable_expf(-inf), 0.f);
  EXPECT_EQ(portable_expf(89.f), inf);
  EXPECT_EQ(portable_expf(inf), inf);
  EXPECT_TRUE(std::isnan(portable_expf(std::nanf(""))));
  EXPECT_EQ(portable_logf(1.f), 0.f);
  EXPECT_EQ(portable_logf(0.f), -inf);
  EXPECT_EQ(portable_logf(inf), inf);
  EXPECT_TRUE(std::isnan(portable_logf(-1.f)));
}

// The bits of exp and log over a sweep, and of Softmax, LogSoftmax and LayerNormalization on
// fixed data: the same on every CPU and compiler (measured on x86-64; checked on AArch64 under
// qemu by scripts/test_arm.sh).
TEST(F32Portable, SameBitsOnEveryCpu) {
  Checksum e, l, k;
  for (float x = -110.f; x < 90.f; x += 0.00731f) e.add(portable_expf(x));
  for (float x = 1e-38f; x < 3e38f; x *= 1.00731f) l.add(portable_logf(x));
  const auto in = exact_floats(6 * 7 * 5, 11, 30);
  std::vector<float> out(in.size()), mean(6), inv(6);
  for (bool log : {false, true}) {
    f32_softmax(*q8::kern::f32_kernels_scalar(), 7, 5, in.data(), out.data(), 0, 6, log);
    for (float y : out) k.add(y);
  }
  const auto scale = exact_floats(35, 12, 2), bias = exact_floats(35, 13, 2);
  f32_layer_norm(35, in.data(), scale.data(), bias.data(), 1e-5f, out.data(), mean.data(), inv.data(), 0, 6);
  for (const auto* v : {&out, &mean, &inv})
    for (float y : *v) k.add(y);
  EXPECT_EQ(e.h, 1386694090990261208ull);
  EXPECT_EQ(l.h, 4573744431875901252ull);
  EXPECT_EQ(k.h, 7580751398950757926ull);
}

TEST(F32Portable, BroadcastBinaryEveryOpKind) {
  // out [2,3,4] from a [2,1,4] and b [3,1].
  const int64_t od[3] = {2, 3, 4}, ad[3] = {2, 1, 4}, bd[3] = {1, 3, 1};
  const auto a = random_floats(8, 21), b = random_floats(3, 22, 0.5f, 2.f);
  std::vector<float> out(24);
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow}) {
    f32_broadcast_binary(op, 3, od, ad, a.data(), bd, b.data(), out.data(), -1.5f, 1.5f);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k) {
          const float x = a[i * 4 + k], y = b[j];
          float want = 0.f;
          switch (op) {
            case BinaryOp::Add: want = x + y; break;
            case BinaryOp::Sub: want = x - y; break;
            case BinaryOp::Mul: want = x * y; break;
            case BinaryOp::Div: want = x / y; break;
            case BinaryOp::Pow: want = std::pow(x, y); break;
          }
          want = std::min(std::max(want, -1.5f), 1.5f);
          ASSERT_EQ(bits(out[(i * 3 + j) * 4 + k]), bits(want)) << static_cast<int>(op) << " at " << i << j << k;
        }
  }
  // Pow by 2 and 3 are products, exactly.
  const float two = 2.f, three = 3.f;
  const int64_t one[1] = {1}, n[1] = {8};
  for (const float* e : {&two, &three}) {
    f32_broadcast_binary(BinaryOp::Pow, 1, n, n, a.data(), one, e, out.data(), -1e30f, 1e30f);
    for (size_t i = 0; i < 8; ++i) ASSERT_EQ(out[i], *e == 2.f ? a[i] * a[i] : a[i] * a[i] * a[i]);
  }
}

TEST(F32Portable, ReduceMeanSumsInRowMajorOrder) {
  const int64_t dims[3] = {3, 4, 5};
  const auto in = random_floats(60, 31);
  const bool cases[][3] = {{true, false, true}, {false, true, false}, {true, true, true}, {false, false, true}};
  for (const auto& red : cases) {
    std::vector<float> out(60, -7.f);
    f32_reduce_mean(3, dims, red, in.data(), out.data());
    const int64_t o1 = red[1] ? 1 : 4, o2 = red[2] ? 1 : 5;
    for (int64_t i = 0; i < (red[0] ? 1 : 3); ++i)
      for (int64_t j = 0; j < o1; ++j)
        for (int64_t k = 0; k < o2; ++k) {
          float s = 0.f;
          int count = 0;
          for (int64_t x = 0; x < 3; ++x)
            for (int64_t y = 0; y < 4; ++y)
              for (int64_t z = 0; z < 5; ++z)
                if ((red[0] || x == i) && (red[1] || y == j) && (red[2] || z == k)) {
                  s += in[static_cast<size_t>((x * 4 + y) * 5 + z)];
                  ++count;
                }
          ASSERT_EQ(out[static_cast<size_t>((i * o1 + j) * o2 + k)], s / static_cast<float>(count));
        }
  }
}

TEST(F32Portable, SoftmaxAndLogSoftmaxMatchDoublePrecision) {
  const size_t outer = 3, len = 9, inner = 4;
  const auto in = random_floats(outer * len * inner, 41, -20.f, 20.f);
  std::vector<float> sm(in.size(), -7.f), lsm(in.size(), -7.f);
  f32_softmax(*q8::kern::f32_kernels_scalar(), len, inner, in.data(), sm.data(), 1, 3,
              false);  // rows [1, 3): row 0 untouched
  f32_softmax(*q8::kern::f32_kernels_scalar(), len, inner, in.data(), lsm.data(), 0, 3, true);
  for (size_t i = 0; i < len * inner; ++i) ASSERT_EQ(sm[i], -7.f);
  f32_softmax(*q8::kern::f32_kernels_scalar(), len, inner, in.data(), sm.data(), 0, 1, false);
  for (size_t o = 0; o < outer; ++o)
    for (size_t j = 0; j < inner; ++j) {
      double m = -1e300, s = 0;
      for (size_t i = 0; i < len; ++i) m = std::max(m, static_cast<double>(in[(o * len + i) * inner + j]));
      for (size_t i = 0; i < len; ++i) s += std::exp(in[(o * len + i) * inner + j] - m);
      for (size_t i = 0; i < len; ++i) {
        const size_t at = (o * len + i) * inner + j;
        const double x = in[at] - m;
        // x - m rounds to float first: up to 2e-6 relative on exp(x - m) for |x - m| < 40.
        EXPECT_NEAR(sm[at], std::exp(x) / s, 5e-6 * std::exp(x) / s) << at;
        EXPECT_NEAR(lsm[at], x - std::log(s), 1e-6 * std::fabs(x - std::log(s)) + 1e-6) << at;
      }
    }
}

TEST(F32Portable, LayerNormMatchesDoublePrecision) {
  const size_t rows = 5, n = 24;
  const auto in = random_floats(rows * n, 51, -3.f, 5.f), scale = random_floats(n, 52), bias = random_floats(n, 53);
  std::vector<float> out(rows * n), mean(rows), inv(rows), nobias(rows * n);
  f32_layer_norm(n, in.data(), scale.data(), bias.data(), 1e-3f, out.data(), mean.data(), inv.data(), 0, rows);
  f32_layer_norm(n, in.data(), scale.data(), nullptr, 1e-3f, nobias.data(), nullptr, nullptr, 0, rows);
  for (size_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (size_t i = 0; i < n; ++i) m += in[r * n + i];
    m /= n;
    for (size_t i = 0; i < n; ++i) v += (in[r * n + i] - m) * (in[r * n + i] - m);
    const double is = 1.0 / std::sqrt(v / n + 1e-3);
    EXPECT_NEAR(mean[r], m, 1e-6);
    EXPECT_NEAR(inv[r], is, 1e-6 * is);
    for (size_t i = 0; i < n; ++i) {
      const double y = (in[r * n + i] - m) * is * scale[i];
      EXPECT_NEAR(nobias[r * n + i], y, 1e-5);
      EXPECT_NEAR(out[r * n + i], y + bias[i], 1e-5);
    }
  }
}

}  // namespace
}  // namespace q8::kern
