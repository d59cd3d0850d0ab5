// Calibration: observes the float values a tensor takes over a calibration set and picks the
// range [lo, hi] that its uint8 quantization should cover.
//
// Results depend only on the multiset of observed values: not on batch size, sample order or
// thread count. To get that with histograms, observation runs in two passes over the same
// data: pass 1 records the exact min and max (order-independent), which fixes the histogram's
// bins; pass 2 counts values into those fixed bins (order-independent integer counts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace q8::calib {

enum class Method { MinMax, Percentile, Entropy, Mse };
const char* method_name(Method m);
// Parses "minmax", "percentile", "entropy", "mse"; throws q8::Error otherwise.
Method parse_method(const std::string& s);

struct Range {
  float lo = 0.f, hi = 0.f;
};

class Observer {
 public:
  static constexpr size_t kBins = 2048;

  // Pass 1: exact extremes. NaN or Inf values throw q8::Error (the caller names the tensor).
  void observe_range(const float* x, size_t n);
  // Pass 1 for one whole calibration sample (one run of the model): observe_range, and the
  // sample's own extremes are kept, so that Method::Percentile can tell a tail that a few samples
  // reach (outliers) from one that many samples reach (features). Results then depend on which
  // values came together in one sample, and still not on the order of the samples.
  void observe_sample(const float* x, size_t n);
  // Between the passes: fixes the histogram over [min, max] seen in pass 1.
  void begin_histogram();
  // Pass 2: counts into the fixed bins.
  void observe_histogram(const float* x, size_t n);

  float min() const { return min_; }
  float max() const { return max_; }
  const std::vector<uint64_t>& histogram() const { return hist_; }

  // Method::Percentile clips the values of at most max(1, floor(this share * n)) of the n samples
  // fed through observe_sample(), and of none when there is only one.
  static constexpr double kPercentileSampleShare = 0.01;

  // The range to quantize to, for uint8 with an asymmetric zero point; always contains 0 (so
  // that zero, e.g. padding, is exact). `percentile` is used by Method::Percentile (e.g. 99.99:
  // the range keeps 99.99 % of all values; a signed tensor loses half the rest from each tail,
  // a one-sided one (post-ReLU, or all negative) loses it all from its one tail). Where samples
  // were fed through observe_sample(), each end is then widened, up to the observed extreme, to
  // the extreme that all but max(1, floor(kPercentileSampleShare · samples)) of them stay within.
  Range range(Method m, double percentile = 99.99) const;

 private:
  float min_ = 0.f, max_ = 0.f;
  bool seen_ = false;
  std::vector<float> sample_min_, sample_max_;  // per observe_sample() call
  std::vector<uint64_t> hist_;
  double bin_lo_ = 0, bin_width_ = 0;
};

// uint8 quantization parameters for a range widened to hold 0: an integer zero point next to
// -lo / s0 (s0 = (hi - lo) / 255) and the smallest scale at or above s0 whose representable range
// [-zp scale, (255 - zp) scale] covers [lo, hi], so neither end is clipped. A degenerate range
// (all zeros) gets scale 1 (any positive scale represents it exactly).
struct QuantParams {
  float scale = 1.f;
  uint8_t zero_point = 0;
};
QuantParams uint8_params(Range r);

}  // namespace q8::calib
