// Calibration fed sample by sample (Observer::observe_sample): the percentile method does not clip
// a tail that many samples reach, still clips one that a single sample reaches, and the result
// does not depend on the order of the samples.

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "quant/calibrate.h"

namespace {

using q8::calib::Method;
using q8::calib::Observer;
using q8::calib::Range;

using Samples = std::vector<std::vector<float>>;

// Both passes, one observe_sample() per sample, or the same values through observe_range().
Observer observe(const Samples& s, bool per_sample) {
  Observer o;
  for (const auto& v : s) {
    if (per_sample)
      o.observe_sample(v.data(), v.size());
    else
      o.observe_range(v.data(), v.size());
  }
  o.begin_histogram();
  for (const auto& v : s) o.observe_histogram(v.data(), v.size());
  return o;
}

// 200 samples of 1000 values uniform in [lo, 1].
Samples uniform_samples(float lo, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, 1.f);
  Samples s(200, std::vector<float>(1000));
  for (auto& v : s)
    for (float& x : v) x = u(rng);
  return s;
}

TEST(CalibrateSamples, PercentileKeepsATailThatManySamplesReach) {
  // A fifth of the samples each hold one value in [3, 4] (a feature that fires once per image):
  // 40 values of 200,000, so 99.99 % of the values cuts half of them away.
  Samples s = uniform_samples(0.f, 1);
  std::vector<float> feature;
  for (size_t i = 0; i < 40; ++i) {
    s[i * 5][0] = 3.f + float(i) / 39.f;
    feature.push_back(s[i * 5][0]);
  }
  std::sort(feature.begin(), feature.end(), std::greater<float>());
  const Range by_value = observe(s, false).range(Method::Percentile);
  EXPECT_LT(by_value.hi, 3.7f) << "the plain percentile cuts into the feature";
  // 2 of the 200 samples (1 %) may be clipped: the range reaches the third largest sample maximum.
  const Range by_sample = observe(s, true).range(Method::Percentile);
  EXPECT_EQ(by_sample.hi, feature[2]);
  EXPECT_EQ(by_sample.lo, 0.f);
}

TEST(CalibrateSamples, PercentileStillClipsWhatOneSampleReaches) {
  Samples s = uniform_samples(-1.f, 2);
  s[17][3] = 100.f;  // one sample's outliers, one per side
  s[90][5] = -80.f;
  for (bool per_sample : {false, true}) {
    const Observer o = observe(s, per_sample);
    const Range r = o.range(Method::Percentile);
    // Within a histogram bin (180 / 2047) of the uniform values' ends, far from the outliers.
    EXPECT_LT(r.hi, 1.1f) << "per_sample " << per_sample;
    EXPECT_GT(r.lo, -1.1f) << "per_sample " << per_sample;
    // The other methods do not look at the samples.
    for (Method m : {Method::MinMax, Method::Entropy, Method::Mse}) {
      const Range a = o.range(m), b = observe(s, !per_sample).range(m);
      EXPECT_EQ(a.lo, b.lo);
      EXPECT_EQ(a.hi, b.hi);
    }
  }
}

TEST(CalibrateSamples, SampleOrderDoesNotMatter) {
  Samples s = uniform_samples(-1.f, 3);
  for (size_t i = 0; i < 30; ++i) {
    s[i * 6][i] = 2.f + float(i) / 10.f;
    s[i * 6 + 1][i] = -1.5f - float(i) / 20.f;
  }
  const Range ref = observe(s, true).range(Method::Percentile);
  EXPECT_GT(ref.hi, 4.f);
  EXPECT_LT(ref.lo, -2.5f);
  std::shuffle(s.begin(), s.end(), std::mt19937_64(4));
  const Range r = observe(s, true).range(Method::Percentile);
  EXPECT_EQ(r.lo, ref.lo);
  EXPECT_EQ(r.hi, ref.hi);
}

TEST(CalibrateSamples, OneSampleKeepsItsExtremes) {
  // A single sample cannot tell an outlier from a feature: the range is its min and max.
  Samples s = uniform_samples(-1.f, 5);
  s.resize(1);
  s[0][10] = 50.f;
  s[0][11] = -40.f;
  const Range r = observe(s, true).range(Method::Percentile);
  EXPECT_EQ(r.hi, 50.f);
  EXPECT_EQ(r.lo, -40.f);
}

}  // namespace
