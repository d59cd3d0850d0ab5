// Calibration observers and range selection (see calibrate.h).
//
// The histogram. Pass 1 gives the exact extremes; begin_histogram() then lays kBins bins of
// equal width w over [min(min,0), max(max,0)] such that 0 is exactly a bin edge: bin k covers
// [(k - k0)·w, (k - k0 + 1)·w) where k0 is the index of the first bin at or above 0, and a
// value x goes to bin k0 + floor(x / w) (clamped to the histogram, so max lands in the last
// bin). For a tensor with min >= 0, k0 = 0 and w = max / kBins; for one with max <= 0,
// k0 = kBins and w = -min / kBins; for a signed tensor w = (max - min) / (kBins - 1) and
// k0 = ceil(-min / w), which makes the bins cover [min, max] with at most one bin of slack.
// With 0 on an edge the two sides are clean "magnitude histograms" (bin j of a side covers
// magnitudes [j·w, (j+1)·w)), which the Percentile and Entropy methods work on side by side.
// Counts are integers and bin positions depend only on the value, so the histogram depends only
// on the multiset of observed values.

#include "quant/calibrate.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "q8/error.h"

namespace q8::calib {

const char* method_name(Method m) {
  switch (m) {
    case Method::MinMax: return "minmax";
    case Method::Percentile: return "percentile";
    case Method::Entropy: return "entropy";
    case Method::Mse: return "mse";
  }
  return "?";
}

Method parse_method(const std::string& s) {
  for (Method m : {Method::MinMax, Method::Percentile, Method::Entropy, Method::Mse})
    if (s == method_name(m)) return m;
  throw Error("unknown calibration method '" + s + "' (expected minmax, percentile, entropy or mse)");
}

void Observer::observe_range(const float* x, size_t n) {
  // min/max are exact and commutative, so any order or split gives the same result.
  float lo = seen_ ? min_ : std::numeric_limits<float>::infinity();
  float hi = seen_ ? max_ : -std::numeric_limits<float>::infinity();
  bool bad = false;
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    bad |= !std::isfinite(v);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (bad) throw Error("calibration data contains NaN or Inf");
  if (n == 0) return;
  min_ = lo;
  max_ = hi;
  seen_ = true;
}

void Observer::observe_sample(const float* x, size_t n) {
  observe_range(x, n);
  if (n == 0) return;
  const auto [lo, hi] = std::minmax_element(x, x + n);
  sample_min_.push_back(*lo);
  sample_max_.push_back(*hi);
}

void Observer::begin_histogram() {
  hist_.assign(kBins, 0);
  const double lo = std::min<double>(min_, 0.0), hi = std::max<double>(max_, 0.0);
  if (!(hi > lo)) {  // nothing seen, or only zeros: one point, kept in bin 0
    bin_lo_ = 0;
    bin_width_ = 0;
    return;
  }
  if (lo == 0) {
    bin_width_ = hi / kBins;
    bin_lo_ = 0;
  } else if (hi == 0) {
    bin_width_ = -lo / kBins;
    bin_lo_ = lo;
  } else {
    bin_width_ = (hi - lo) / double(kBins - 1);
    const double k0 = std::min<double>(std::ceil(-lo / bin_width_), kBins - 1);
    bin_lo_ = -k0 * bin_width_;
  }
}

namespace {

// Index of the bin at 0 (0 is its lower edge), or kBins for an all-negative histogram.
size_t zero_bin(double bin_lo, double bin_width) {
  return bin_width > 0 ? size_t(std::llround(-bin_lo / bin_width)) : 0;
}

}  // namespace

void Observer::observe_histogram(const float* x, size_t n) {
  if (hist_.size() != kBins) throw Error("calibration: observe_histogram before begin_histogram");
  if (bin_width_ == 0) {
    for (size_t i = 0; i < n; ++i)
      if (!std::isfinite(x[i])) throw Error("calibration data contains NaN or Inf");
    hist_[0] += n;
    return;
  }
  const double k0 = double(zero_bin(bin_lo_, bin_width_)), w = bin_width_;
  const double top = double(kBins - 1);
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (!std::isfinite(v)) throw Error("calibration data contains NaN or Inf");
    const double k = std::clamp(k0 + std::floor(double(v) / w), 0.0, top);
    ++hist_[size_t(k)];
  }
}

namespace {

// One side of the histogram as magnitudes: bin j covers [j·w, (j+1)·w).
std::vector<double> side(const std::vector<uint64_t>& h, size_t k0, bool positive) {
  std::vector<double> s;
  if (positive) {
    for (size_t k = k0; k < h.size(); ++k) s.push_back(double(h[k]));
  } else {
    for (size_t k = k0; k-- > 0;) s.push_back(double(h[k]));
  }
  return s;
}

// The magnitude below which all but `drop` of the side's mass lies, interpolating linearly
// inside the bin where the cut falls (bins count as uniformly filled).
double drop_top(const std::vector<double>& s, double w, double drop) {
  double above = 0;
  for (size_t j = s.size(); j-- > 0;) {
    if (above + s[j] >= drop && s[j] > 0) {
      const double frac = (drop - above) / s[j];  // share of bin j to cut off, in [0, 1]
      return (double(j) + 1.0 - frac) * w;
    }
    above += s[j];
  }
  return 0;
}

// TensorRT's entropy calibration on a magnitude histogram `s` with `levels` quantized levels:
// for each candidate cut i (in bins, i >= levels), the reference distribution P is s[0, i) with
// the mass beyond i folded into its last bin; Q merges s[0, i) into `levels` buckets and spreads
// each bucket's mass evenly over the bucket's bins that are nonzero in P. Both are smoothed
// (zero bins get eps, taken from the nonzero ones, on raw counts as in MXNet/TensorRT) and the
// cut with the smallest KL(P || Q) wins (the first one on a tie). Cuts that would clip more than
// 1 % of the values are not candidates: when the values sit far from zero (a Sigmoid gate's
// outputs in [0.4, 1]), folding them all into P's last bin makes P a spike that Q reproduces
// exactly, and the divergence alone would pick a cut that clips every one of them. Returns the
// cut in bins.
size_t kl_cut(const std::vector<double>& s, size_t levels) {
  const size_t nb = s.size();
  if (levels < 1) levels = 1;
  if (nb <= levels) return nb;
  // As TensorRT does: the first bin takes the second's count, so that a spike of exact zeros
  // (ReLU outputs, padding), which quantizes without error, does not dominate the divergence.
  std::vector<double> h(s);
  if (nb > 1) h[0] = h[1];
  std::vector<double> suffix(nb + 1, 0.0);
  for (size_t j = nb; j-- > 0;) suffix[j] = suffix[j + 1] + h[j];
  std::vector<double> p(nb), q(nb);
  constexpr double kEps = 1e-4;
  size_t best = nb;
  double best_kl = std::numeric_limits<double>::infinity();
  size_t first = levels;
  while (first < nb && suffix[first] > 0.01 * suffix[0]) ++first;
  for (size_t i = first; i <= nb; ++i) {
    for (size_t j = 0; j < i; ++j) p[j] = h[j];
    p[i - 1] += suffix[i];
    const size_t merged = i / levels;
    for (size_t b = 0; b < levels; ++b) {
      const size_t start = b * merged, stop = b + 1 == levels ? i : start + merged;
      double sum = 0;
      size_t nonzero = 0;
      for (size_t j = start; j < stop; ++j) {
        sum += h[j];
        nonzero += p[j] != 0;
      }
      const double each = nonzero ? sum / double(nonzero) : 0.0;
      for (size_t j = start; j < stop; ++j) q[j] = p[j] != 0 ? each : 0.0;
    }
    // Smoothing and normalisation.
    size_t pz = 0, qz = 0;
    for (size_t j = 0; j < i; ++j) {
      pz += p[j] == 0;
      qz += q[j] == 0;
    }
    if (qz == i || pz == i) continue;
    const double pe = kEps * double(pz) / double(i - pz), qe = kEps * double(qz) / double(i - qz);
    double psum = 0, qsum = 0;
    for (size_t j = 0; j < i; ++j) {
      p[j] = p[j] == 0 ? kEps : p[j] - pe;
      q[j] = q[j] == 0 ? kEps : q[j] - qe;
      psum += p[j];
      qsum += q[j];
    }
    double kl = 0;
    for (size_t j = 0; j < i; ++j) {
      const double pn = p[j] / psum, qn = q[j] / qsum;
      if (pn > 0 && qn > 0) kl += pn * std::log(pn / qn);
    }
    if (kl < best_kl) {
      best_kl = kl;
      best = i;
    }
  }
  return best;
}

// ∫_{-s/2}^{u} (x - s·round(x/s))² dx: the rounding error's square integrated from the grid.
double round_err_antideriv(double u, double s) {
  const double m = std::floor((u + 0.5 * s) / s);
  const double r = u - m * s;  // in [-s/2, s/2)
  return m * s * s * s / 12.0 + (r * r * r + s * s * s / 8.0) / 3.0;
}

// The histogram split at 0 into its two magnitude sides, as the range methods see it.
struct Sides {
  double w;                      // bin width
  size_t k0;                     // index of the bin at 0
  float lo0, hi0;                // the observed extremes, widened to contain 0
  std::vector<double> pos, neg;  // the two sides as magnitude histograms
  double npos = 0, nneg = 0;     // the mass of each side
  bool has_pos, has_neg;

  Sides(const std::vector<uint64_t>& hist, double bin_lo, double bin_width, float lo, float hi)
      : w(bin_width), k0(zero_bin(bin_lo, bin_width)), lo0(lo), hi0(hi) {
    pos = side(hist, k0, true);
    neg = side(hist, k0, false);
    for (double c : pos) npos += c;
    for (double c : neg) nneg += c;
    has_pos = hi0 > 0;
    has_neg = lo0 < 0;
  }

  // A side's cut (a magnitude) to a range edge, never beyond the observed extreme.
  Range make(double tneg, double tpos) const {
    Range r;
    r.lo = has_neg ? float(std::max<double>(-tneg, lo0)) : 0.f;
    r.hi = has_pos ? float(std::min<double>(tpos, hi0)) : 0.f;
    r.lo = std::min(r.lo, 0.f);
    r.hi = std::max(r.hi, 0.f);
    return r;
  }
};

// Cut (100 - p) % of all values: from the top alone for a one-sided tensor (post-ReLU, or
// all-negative: from the bottom), else half from each tail.
Range percentile_range(const Sides& h, double percentile) {
  if (!(percentile > 0 && percentile <= 100))
    throw Error("calibration percentile must be in (0, 100], got " + std::to_string(percentile));
  const double drop = (100.0 - percentile) / 100.0 * (h.npos + h.nneg);
  const double dpos = h.has_neg && h.has_pos ? drop / 2 : h.has_pos ? drop : 0.0;
  const double dneg = h.has_neg && h.has_pos ? drop / 2 : h.has_neg ? drop : 0.0;
  return h.make(drop_top(h.neg, h.w, dneg), drop_top(h.pos, h.w, dpos));
}

// The extreme that all but the most extreme max(1, floor(kPercentileSampleShare · S)) of the S
// samples stay within: that many-th plus one of the per-sample extremes `e`, counted from the
// largest (`largest`) or from the smallest. With a single sample, that sample's own extreme.
float sample_extreme(std::vector<float> e, bool largest) {
  const size_t n = e.size();
  size_t clipped = std::max<size_t>(1, size_t(std::floor(Observer::kPercentileSampleShare * double(n))));
  clipped = std::min(clipped, n - 1);
  if (largest)
    std::nth_element(e.begin(), e.begin() + long(clipped), e.end(), std::greater<float>());
  else
    std::nth_element(e.begin(), e.begin() + long(clipped), e.end());
  return e[clipped];
}

// One-sided tensors: the KL search over all 256 levels. Signed tensors: each side gets its own
// cut, searched with that side's share of the 256 levels; the shares start in proportion to the
// extremes and are re-split in proportion to the cuts until they settle (at most 4 rounds).
Range entropy_range(const Sides& h) {
  const double w = h.w;
  if (!h.has_neg) return h.make(0, double(kl_cut(h.pos, 256)) * w);
  if (!h.has_pos) return h.make(double(kl_cut(h.neg, 256)) * w, 0);
  double tneg = -double(h.lo0), tpos = double(h.hi0);
  size_t lpos = 0;
  for (int round = 0; round < 4; ++round) {
    const size_t l = size_t(std::clamp<long>(std::lround(256.0 * tpos / (tpos + tneg)), 2, 254));
    if (l == lpos) break;
    lpos = l;
    tpos = std::min<double>(double(kl_cut(h.pos, lpos)) * w, h.hi0);
    tneg = std::min<double>(double(kl_cut(h.neg, 256 - lpos)) * w, -double(h.lo0));
  }
  return h.make(tneg, tpos);
}

// The Mse method: the expected squared error of quantizing the histogram with
// uint8_params({lo, hi}): values are taken as uniform inside each bin (the end bins trimmed to
// [min, max]); in-range parts contribute the exact integral of the rounding error, parts beyond
// the representable range the integral of the clipping error. One-sided tensors search their one
// end over the bin edges; signed ones first shrink both ends in proportion (512 steps), then
// search hi over the bin edges with lo fixed and lo with hi fixed, in turn, until neither moves
// (at most 8 rounds). Each 1-D search takes every 8th candidate, then every candidate within ±8
// of the best; a tie keeps the earlier candidate (the unclipped end first).

// A nonempty histogram bin as the values [a, b] it holds, c of them.
struct ValueBin {
  double a, b, c;
};

std::vector<ValueBin> value_bins(const std::vector<uint64_t>& hist, const Sides& h) {
  std::vector<ValueBin> bins;
  for (size_t k = 0; k < Observer::kBins; ++k) {
    if (!hist[k]) continue;
    const double a = std::max<double>((double(k) - double(h.k0)) * h.w, h.lo0);
    const double b = std::min<double>((double(k) - double(h.k0) + 1) * h.w, h.hi0);
    bins.push_back({a, std::max(a, b), double(hist[k])});
  }
  return bins;
}

double cube(double v) { return v * v * v; }

// The expected squared error of quantizing `bins` to the range [lo, hi].
double mse_cost(const std::vector<ValueBin>& bins, double lo, double hi) {
  const QuantParams qp = uint8_params(Range{float(lo), float(hi)});
  const double s = qp.scale, qlo = -double(qp.zero_point) * s, qhi = (255.0 - qp.zero_point) * s;
  double e = 0;
  for (const ValueBin& bn : bins) {
    double be = 0;
    if (bn.b <= bn.a) {  // a point
      const double x = std::clamp(bn.a, qlo, qhi), r = x - s * std::nearbyint(x / s);
      be = (bn.a - x) * (bn.a - x) + r * r;
      e += bn.c * be;
      continue;
    }
    if (bn.a < qlo) {
      const double u = std::min(bn.b, qlo);
      be += (cube(qlo - bn.a) - cube(qlo - u)) / 3.0;
    }
    if (bn.b > qhi) {
      const double u = std::max(bn.a, qhi);
      be += (cube(bn.b - qhi) - cube(u - qhi)) / 3.0;
    }
    const double ia = std::max(bn.a, qlo), ib = std::min(bn.b, qhi);
    if (ib > ia) be += round_err_antideriv(ib, s) - round_err_antideriv(ia, s);
    e += bn.c * be / (bn.b - bn.a);
  }
  return e;
}

// The 1-D search over indices [first, last], starting from `start` (the unclipped end): every 8th
// candidate, then every one within ±8 of the best; a tie keeps the earlier candidate.
template <class Eval>
size_t search_edges(size_t first, size_t last, size_t start, Eval&& eval) {
  size_t best = start;
  double best_e = eval(start);
  for (size_t k = first; k <= last; k += 8) {
    const double e = eval(k);
    if (e < best_e) best_e = e, best = k;
  }
  const size_t a = best > first + 8 ? best - 8 : first, b = std::min(best + 8, last);
  for (size_t k = a; k <= b; ++k) {
    const double e = eval(k);
    if (e < best_e) best_e = e, best = k;
  }
  return best;
}

Range mse_range(const std::vector<uint64_t>& hist, const Sides& h) {
  constexpr size_t kBins = Observer::kBins;
  const std::vector<ValueBin> bins = value_bins(hist, h);
  const float lo0 = h.lo0, hi0 = h.hi0;
  const size_t k0 = h.k0;
  const double w = h.w;
  auto cost = [&](double lo, double hi) { return mse_cost(bins, lo, hi); };
  // Candidate edges: hi over k0+1..kBins (the last one is max), lo over 0..k0-1 (first is min).
  auto hi_at = [&](size_t k) { return k >= kBins ? double(hi0) : std::min<double>((double(k) - double(k0)) * w, hi0); };
  auto lo_at = [&](size_t k) { return k == 0 ? double(lo0) : std::max<double>((double(k) - double(k0)) * w, lo0); };
  double lo = lo0, hi = hi0;
  // Each end moves only to a candidate that lowers the error from where it is.
  auto search_hi = [&] {
    if (!h.has_pos) return;
    const double e = hi_at(search_edges(k0 + 1, kBins, kBins, [&](size_t k) { return cost(lo, hi_at(k)); }));
    if (cost(lo, e) < cost(lo, hi)) hi = e;
  };
  auto search_lo = [&] {
    if (!h.has_neg) return;
    const double l = lo_at(search_edges(0, k0 - 1, 0, [&](size_t k) { return cost(lo_at(k), hi); }));
    if (cost(l, hi) < cost(lo, hi)) lo = l;
  };
  if (!h.has_neg) {
    search_hi();
  } else if (!h.has_pos) {
    search_lo();
  } else {
    // Both ends shrunk in proportion first, then each end alone in turn until neither moves.
    constexpr size_t kSteps = 512;
    const size_t ks = search_edges(1, kSteps, kSteps, [&](size_t k) {
      return cost(double(lo0) * double(k) / kSteps, double(hi0) * double(k) / kSteps);
    });
    lo = double(lo0) * double(ks) / kSteps;
    hi = double(hi0) * double(ks) / kSteps;
    for (int round = 0; round < 8; ++round) {
      const double lo_was = lo, hi_was = hi;
      search_hi();
      search_lo();
      if (lo == lo_was && hi == hi_was) break;
    }
  }
  return Range{std::min(float(lo), 0.f), std::max(float(hi), 0.f)};
}

}  // namespace

Range Observer::range(Method m, double percentile) const {
  const float lo0 = std::min(min_, 0.f), hi0 = std::max(max_, 0.f);
  const Range full{lo0, hi0};
  if (m == Method::MinMax || !seen_ || !(hi0 > lo0)) {
    if (m == Method::Percentile && !(percentile > 0 && percentile <= 100))
      throw Error("calibration percentile must be in (0, 100], got " + std::to_string(percentile));
    return full;
  }
  if (hist_.size() != kBins) throw Error("calibration: range() before the histogram pass");
  const Sides h(hist_, bin_lo_, bin_width_, lo0, hi0);
  switch (m) {
    case Method::MinMax: break;
    case Method::Percentile: {
      // The percentile counts values, but the values of one sample are not independent draws: a
      // 28x28 feature map gives each image hundreds of them, so a cut at 99.99 % of the values
      // can fall below the maxima of a fifth of the images, clipping a feature, not an outlier.
      // The cut therefore stays outside what all but the most extreme max(1, floor(1 %)) of the
      // samples reach (all of them when there is one), when the samples were observed one by one.
      Range r = percentile_range(h, percentile);
      if (!sample_max_.empty()) {
        r.hi = std::max(r.hi, std::min(hi0, std::max(sample_extreme(sample_max_, true), 0.f)));
        r.lo = std::min(r.lo, std::max(lo0, std::min(sample_extreme(sample_min_, false), 0.f)));
      }
      return r;
    }
    case Method::Entropy: return entropy_range(h);
    case Method::Mse: return mse_range(hist_, h);
  }
  return full;
}

QuantParams uint8_params(Range r) {
  const double lo = std::min<double>(r.lo, 0.0), hi = std::max<double>(r.hi, 0.0);
  QuantParams p;
  const float scale = float(std::min((hi - lo) / 255.0, double(std::numeric_limits<float>::max())));
  if (!(scale > 0) || !std::isfinite(scale) || !std::isnormal(scale)) return p;  // scale 1, zp 0
  // 0 is exactly representable: it quantizes to the integer zero point. An integer zero point
  // shifts the representable range [-zp s, (255 - zp) s] off [lo, hi] by up to half a step, which
  // would clip one end: fatal for SiLU, whose outputs pile up at its minimum, so that one clipped
  // step biases every sum after it. So of the two zero points around -lo / s, take the one whose
  // range covers [lo, hi] with the smaller widened scale.
  const double z = -lo / double(scale);
  double best = std::numeric_limits<double>::infinity();
  for (const double zc : {std::floor(z), std::ceil(z)}) {
    if (zc < 0 || zc > 255 || (zc == 0 && lo < 0) || (zc == 255 && hi > 0)) continue;
    double s = scale;
    if (zc > 0) s = std::max(s, -lo / zc);
    if (zc < 255) s = std::max(s, hi / (255.0 - zc));
    if (s < best) best = s, p.zero_point = uint8_t(zc);
  }
  if (!std::isnormal(float(best))) return QuantParams{};
  p.scale = float(best);
  return p;
}

}  // namespace q8::calib
