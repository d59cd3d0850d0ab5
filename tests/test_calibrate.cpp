// Calibration: order and split independence, each method's range on known distributions,
// quantization error against MinMax on heavy-tailed data, refusals and degenerate inputs.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "q8/error.h"
#include "quant/calibrate.h"

namespace {

using q8::calib::Method;
using q8::calib::Observer;
using q8::calib::QuantParams;
using q8::calib::Range;

const Method kMethods[] = {Method::MinMax, Method::Percentile, Method::Entropy, Method::Mse};

// Both passes over `v`, fed in chunks of `chunk` values.
Observer observe(const std::vector<float>& v, size_t chunk = 4096) {
  Observer o;
  for (size_t i = 0; i < v.size(); i += chunk) o.observe_range(v.data() + i, std::min(chunk, v.size() - i));
  o.begin_histogram();
  for (size_t i = 0; i < v.size(); i += chunk) o.observe_histogram(v.data() + i, std::min(chunk, v.size() - i));
  return o;
}

// Mean squared error of quantizing `v` to uint8 with the range's parameters and back.
double quant_mse(const std::vector<float>& v, Range r) {
  const QuantParams p = q8::calib::uint8_params(r);
  double e = 0;
  for (float x : v) {
    const float q = std::clamp(std::nearbyint(x / p.scale) + float(p.zero_point), 0.f, 255.f);
    const double d = double(x) - double((q - float(p.zero_point)) * p.scale);
    e += d * d;
  }
  return e / double(v.size());
}

std::vector<float> normal(size_t n, double sigma, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> d(0.0, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = float(d(g));
  return v;
}

std::vector<float> laplace(size_t n, double b, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::exponential_distribution<double> e(1.0 / b);
  std::bernoulli_distribution s(0.5);
  std::vector<float> v(n);
  for (float& x : v) x = float(s(g) ? e(g) : -e(g));
  return v;
}

std::vector<float> student_t(size_t n, double nu, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::student_t_distribution<double> d(nu);
  std::vector<float> v(n);
  for (float& x : v) x = float(d(g));
  return v;
}

std::vector<float> relu(std::vector<float> v) {
  for (float& x : v) x = std::max(x, 0.f);
  return v;
}

TEST(Calibrate, MethodNames) {
  for (Method m : kMethods) EXPECT_EQ(q8::calib::parse_method(q8::calib::method_name(m)), m);
  try {
    q8::calib::parse_method("kl");
    FAIL() << "no throw";
  } catch (const q8::Error& e) {
    const std::string w = e.what();
    for (const char* name : {"minmax", "percentile", "entropy", "mse", "'kl'"})
      EXPECT_NE(w.find(name), std::string::npos) << w;
  }
}

TEST(Calibrate, OrderAndSplitIndependence) {
  // Signed, post-ReLU and all-negative data; shuffled and fed in different chunk sizes.
  std::vector<float> signed_v = laplace(200000, 1.0, 1);
  const std::vector<float> extra = normal(50000, 3.0, 2);
  signed_v.insert(signed_v.end(), extra.begin(), extra.end());
  std::vector<float> negative = relu(normal(100000, 2.0, 3));
  for (float& x : negative) x = -x;
  for (const std::vector<float>& base : {signed_v, relu(signed_v), negative}) {
    std::vector<float> shuffled = base;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(7));
    const Observer ref = observe(base, base.size());
    for (size_t chunk : {size_t(1), size_t(7), size_t(1000), size_t(65536)}) {
      const Observer o = observe(shuffled, chunk);
      EXPECT_EQ(o.histogram(), ref.histogram());
      for (Method m : kMethods) {
        const Range a = ref.range(m), b = o.range(m);
        EXPECT_EQ(a.lo, b.lo) << q8::calib::method_name(m) << " chunk " << chunk;
        EXPECT_EQ(a.hi, b.hi) << q8::calib::method_name(m) << " chunk " << chunk;
      }
    }
  }
}

TEST(Calibrate, MinMaxExactAndZeroInside) {
  const std::vector<float> v = {0.25f, -1.5f, 3.75f, 2.f};
  const Range r = observe(v).range(Method::MinMax);
  EXPECT_EQ(r.lo, -1.5f);
  EXPECT_EQ(r.hi, 3.75f);

  // All positive, away from zero: the range still starts at 0.
  const std::vector<float> pos = {2.f, 5.f, 3.f};
  for (Method m : kMethods) {
    const Range rp = observe(pos).range(m);
    EXPECT_EQ(rp.lo, 0.f) << q8::calib::method_name(m);
    EXPECT_GT(rp.hi, 0.f);
    EXPECT_LE(rp.hi, 5.f);
  }
  // Post-ReLU data: lo 0 and zero point 0 for every method.
  const Observer o = observe(relu(normal(100000, 1.0, 4)));
  for (Method m : kMethods) {
    const Range rr = o.range(m);
    EXPECT_EQ(rr.lo, 0.f) << q8::calib::method_name(m);
    EXPECT_GT(rr.hi, 0.f) << q8::calib::method_name(m);
    EXPECT_EQ(q8::calib::uint8_params(rr).zero_point, 0) << q8::calib::method_name(m);
  }
  // Every method keeps 0 inside the range of signed data, and stays within [min, max].
  const Observer s = observe(student_t(100000, 3.0, 5));
  for (Method m : kMethods) {
    const Range rs = s.range(m);
    EXPECT_LT(rs.lo, 0.f) << q8::calib::method_name(m);
    EXPECT_GT(rs.hi, 0.f) << q8::calib::method_name(m);
    EXPECT_GE(rs.lo, s.min());
    EXPECT_LE(rs.hi, s.max());
  }
}

TEST(Calibrate, PercentileCutsOutliers) {
  // N(0, 1) and a few outliers: 99.99 keeps all but 0.005 % in each tail, the N(0,1) quantile
  // 0.99995 = 3.89.
  std::vector<float> v = normal(1000000, 1.0, 11);
  for (int i = 0; i < 5; ++i) {
    v.push_back(60.f + float(i));
    v.push_back(-50.f - float(i));
  }
  const Observer o = observe(v);
  const Range r = o.range(Method::Percentile, 99.99);
  EXPECT_NEAR(r.hi, 3.89, 0.25);
  EXPECT_NEAR(r.lo, -3.89, 0.25);
  // 99.9: quantile 0.9995 = 3.29.
  const Range r2 = o.range(Method::Percentile, 99.9);
  EXPECT_NEAR(r2.hi, 3.29, 0.2);
  EXPECT_NEAR(r2.lo, -3.29, 0.2);
  // 100 is MinMax.
  EXPECT_EQ(o.range(Method::Percentile, 100).hi, o.max());

  // Post-ReLU: the whole 0.01 % comes off the top; |N(0,1)| quantile 0.9999 = 3.89.
  std::vector<float> a = normal(1000000, 1.0, 12);
  for (float& x : a) x = std::fabs(x);
  for (int i = 0; i < 5; ++i) a.push_back(80.f + float(i));
  const Range ra = observe(a).range(Method::Percentile, 99.99);
  EXPECT_EQ(ra.lo, 0.f);
  EXPECT_NEAR(ra.hi, 3.89, 0.25);

  for (double bad : {0.0, -1.0, 100.5, std::nan("")}) EXPECT_THROW(o.range(Method::Percentile, bad), q8::Error) << bad;
}

TEST(Calibrate, EntropyAndMseOnGaussian) {
  // For N(0, 1) at 256 levels the MSE-optimal clip is about 4 sigma (rounding noise
  // (2T/255)^2/12 against the tail's clipping error); over 1e6 samples the max is about 5 sigma.
  // Both methods should land in [2.5, 5.5] sigma and inside [min, max].
  const std::vector<float> g = normal(1000000, 2.0, 21);
  const Observer o = observe(g);
  for (Method m : {Method::Entropy, Method::Mse}) {
    const Range r = o.range(m);
    EXPECT_GT(r.hi, 2.5 * 2.0) << q8::calib::method_name(m);
    EXPECT_LT(r.hi, 5.5 * 2.0) << q8::calib::method_name(m);
    EXPECT_LT(r.lo, -2.5 * 2.0) << q8::calib::method_name(m);
    EXPECT_GT(r.lo, -5.5 * 2.0) << q8::calib::method_name(m);
    EXPECT_LE(r.hi, o.max());
    EXPECT_GE(r.lo, o.min());
  }
  // Post-ReLU Gaussian.
  const Observer p = observe(relu(g));
  for (Method m : {Method::Entropy, Method::Mse}) {
    const Range r = p.range(m);
    EXPECT_EQ(r.lo, 0.f);
    EXPECT_GT(r.hi, 2.5 * 2.0) << q8::calib::method_name(m);
    EXPECT_LT(r.hi, 5.5 * 2.0) << q8::calib::method_name(m);
  }
}

TEST(Calibrate, EntropyAndMseClipRareOutliers) {
  // 1e6 N(0,1) values and one outlier at each of +-50 sigma. Mse trades the outliers' clipping
  // error f·(50 - T)^2 per side (f = 1e-6) against the rounding noise (2T/255)^2/12: optimum
  // T = 14. Entropy needs at least one histogram bin per level, so its smallest cut is about
  // 128 of the ~1024 bins on a side (6 sigma here), and it lands near that.
  std::vector<float> v = normal(1000000, 1.0, 31);
  v.push_back(50.f);
  v.push_back(-50.f);
  const Observer o = observe(v);
  for (Method m : {Method::Entropy, Method::Mse}) {
    const Range r = o.range(m);
    EXPECT_LT(r.hi, 20.f) << q8::calib::method_name(m);
    EXPECT_GT(r.lo, -20.f) << q8::calib::method_name(m);
    EXPECT_GT(r.hi, 2.f) << q8::calib::method_name(m);
    EXPECT_LT(r.lo, -2.f) << q8::calib::method_name(m);
  }
  const Range rm = o.range(Method::Mse);
  EXPECT_NEAR(rm.hi, 14.f, 4.f);
  EXPECT_NEAR(rm.lo, -14.f, 4.f);

  // Post-ReLU, 2e6 values (half of them zeros, which quantize exactly) and one outlier at 200
  // sigma: the Mse optimum is T = 88 (f = 5e-7 against 0.5·(T/255)^2/12); entropy's floor is
  // 256 of 2048 bins = 25 sigma.
  std::vector<float> w = relu(normal(2000000, 1.0, 32));
  w.push_back(200.f);
  const Observer p = observe(w);
  for (Method m : {Method::Entropy, Method::Mse}) {
    const Range r = p.range(m);
    EXPECT_EQ(r.lo, 0.f);
    EXPECT_GT(r.hi, 2.f) << q8::calib::method_name(m);
    EXPECT_LT(r.hi, 100.f) << q8::calib::method_name(m);
  }
  EXPECT_NEAR(p.range(Method::Mse).hi, 88.f, 10.f);
}

// Values far from zero (a squeeze-excitation gate's Sigmoid outputs): every cut below them would
// make the reference distribution one spike that the quantized one matches exactly. Entropy keeps
// them: it never clips more than 1 % of the values.
TEST(Calibrate, EntropyKeepsValuesFarFromZero) {
  std::mt19937 rng(51);
  std::uniform_real_distribution<float> d(0.4f, 0.99f);
  std::vector<float> v(100000);
  for (float& x : v) x = d(rng);
  const Observer o = observe(v);
  const Range r = o.range(Method::Entropy);
  EXPECT_EQ(r.lo, 0.f);
  EXPECT_GT(r.hi, 0.98f);  // the 99th percentile is 0.984
  EXPECT_LE(r.hi, o.max());
}

TEST(Calibrate, MethodsReduceQuantizationErrorOnHeavyTails) {
  // Quantize and dequantize the samples themselves with each method's parameters. Mse must be
  // the best (within 2 %) and beat MinMax everywhere; Percentile and Entropy must beat MinMax
  // where marked. (Post-ReLU, 99.99 % of all values, zeros included, clips a Laplace tail too
  // hard for mean squared error, and on relu(student-t(3)) the heavy tail's clipping error makes
  // both worse than MinMax: printed, not checked.)
  struct Case {
    const char* name;
    std::vector<float> v;
    bool percentile_beats_minmax, entropy_beats_minmax;
  };
  std::vector<float> skewed = laplace(500000, 1.0, 43);
  for (float& x : skewed) x = x > 0 ? 3.f * x : x;  // a long positive and a short negative tail
  const Case cases[] = {
      {"laplace", laplace(1000000, 1.0, 41), true, true},
      {"student-t(3)", student_t(1000000, 3.0, 42), true, true},
      {"relu(laplace)", relu(laplace(1000000, 1.0, 45)), false, true},
      {"skewed laplace", skewed, true, true},
      {"relu(student-t(3))", relu(student_t(1000000, 3.0, 44)), false, false},
  };
  for (const Case& c : cases) {
    const Observer o = observe(c.v);
    double err[4];
    for (Method m : kMethods) err[int(m)] = quant_mse(c.v, o.range(m));
    std::printf("[ quant MSE ] %-20s minmax %.3e  percentile %.3e  entropy %.3e  mse %.3e\n", c.name, err[0], err[1],
                err[2], err[3]);
    const double mm = err[int(Method::MinMax)];
    if (c.percentile_beats_minmax) {
      EXPECT_LT(err[int(Method::Percentile)], mm) << c.name;
    }
    if (c.entropy_beats_minmax) {
      EXPECT_LT(err[int(Method::Entropy)], mm) << c.name;
    }
    EXPECT_LT(err[int(Method::Mse)], mm) << c.name;
    for (Method m : kMethods)
      EXPECT_LE(err[int(Method::Mse)], err[int(m)] * 1.02) << c.name << " vs " << q8::calib::method_name(m);
  }
}

TEST(Calibrate, NanAndInfThrow) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    const std::vector<float> v = {1.f, bad, 2.f};
    Observer o;
    try {
      o.observe_range(v.data(), v.size());
      FAIL() << "no throw";
    } catch (const q8::Error& e) {
      EXPECT_NE(std::string(e.what()).find("NaN or Inf"), std::string::npos);
    }
    // Pass 2 checks too (the data could differ between passes).
    Observer o2;
    o2.observe_range(v.data(), 1);
    o2.begin_histogram();
    EXPECT_THROW(o2.observe_histogram(v.data(), v.size()), q8::Error);
  }
}

TEST(Calibrate, DegenerateInputs) {
  auto valid = [](Range r, const char* what) {
    const QuantParams p = q8::calib::uint8_params(r);
    EXPECT_TRUE(std::isfinite(p.scale) && p.scale > 0) << what;
    EXPECT_LE(r.lo, 0.f) << what;
    EXPECT_GE(r.hi, 0.f) << what;
    return p;
  };
  const std::vector<float> zeros(1000, 0.f), single = {3.5f}, neg_single = {-2.f};
  std::vector<float> neg = normal(10000, 1.0, 51);
  for (float& x : neg) x = -std::fabs(x) - 1.f;
  for (Method m : kMethods) {
    const char* name = q8::calib::method_name(m);
    const Range rz = observe(zeros).range(m);
    EXPECT_EQ(rz.lo, 0.f);
    EXPECT_EQ(rz.hi, 0.f);
    QuantParams p = valid(rz, name);
    EXPECT_EQ(p.scale, 1.f);
    EXPECT_EQ(p.zero_point, 0);

    const Range rs = observe(single).range(m);
    EXPECT_EQ(rs.lo, 0.f) << name;
    EXPECT_GT(rs.hi, 0.f) << name;
    p = valid(rs, name);
    EXPECT_EQ(p.zero_point, 0);

    const Range rn1 = observe(neg_single).range(m);
    EXPECT_LT(rn1.lo, 0.f) << name;
    EXPECT_EQ(rn1.hi, 0.f) << name;
    p = valid(rn1, name);
    EXPECT_EQ(p.zero_point, 255);

    const Range rn = observe(neg).range(m);
    EXPECT_LT(rn.lo, -1.f) << name;
    EXPECT_EQ(rn.hi, 0.f) << name;
    p = valid(rn, name);
    EXPECT_EQ(p.zero_point, 255);

    // Nothing observed at all.
    Observer empty;
    empty.begin_histogram();
    valid(empty.range(m), name);
  }
  // MinMax of a single value is exact, and quantizes it exactly.
  EXPECT_EQ(observe(single).range(Method::MinMax).hi, 3.5f);
  EXPECT_EQ(quant_mse(single, observe(single).range(Method::MinMax)), 0.0);
}

TEST(Calibrate, Uint8ParamsZeroIsExact) {
  std::mt19937_64 g(61);
  std::uniform_real_distribution<float> u(-10.f, 10.f);
  for (int i = 0; i < 1000; ++i) {
    float a = u(g), b = u(g);
    const Range r{std::min({a, b, 0.f}), std::max({a, b, 0.f})};
    const QuantParams p = q8::calib::uint8_params(r);
    ASSERT_GT(p.scale, 0.f);
    // 0 quantizes to the zero point and back to exactly 0.
    const float q = std::nearbyint(0.f / p.scale) + float(p.zero_point);
    EXPECT_EQ((q - float(p.zero_point)) * p.scale, 0.f);
    // The representable range covers [lo, hi] to within half a step.
    EXPECT_LE(-float(p.zero_point) * p.scale, r.lo + 0.5f * p.scale + 1e-6f);
    EXPECT_GE((255.f - float(p.zero_point)) * p.scale, r.hi - 0.5f * p.scale - 1e-6f);
  }
  // Post-ReLU range: zero point 0, scale hi / 255.
  const QuantParams p = q8::calib::uint8_params(Range{0.f, 6.f});
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_FLOAT_EQ(p.scale, 6.f / 255.f);
  // A range that does not contain 0 is widened to.
  EXPECT_EQ(q8::calib::uint8_params(Range{2.f, 5.1f}).zero_point, 0);
  EXPECT_FLOAT_EQ(q8::calib::uint8_params(Range{2.f, 5.1f}).scale, 5.1f / 255.f);
}

}  // namespace
