// The kernel tests' own (naive) view of a pooling or depthwise window, written independently of
// kernels/window.h so a mistake there cannot hide: the taps inside the input are found by scanning
// the input's positions, not the kernel's taps, so the naive references stay fast for kernels of
// 2^20 x 2^20 taps (the geometries that check that no kernel path walks a whole window).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace q8_test {

// One tap of one axis: tap index k and the input position i it reads.
struct AxisTap {
  size_t k, i;
};

// The taps of output o along one axis (stride S, dilation D, leading pad P, input extent I, K
// taps) that read an input position in [0, I), in increasing k: tap k reads o*S + k*D - P, so
// input position i is a tap's when i + P - o*S is a non-negative multiple of D below K*D.
inline std::vector<AxisTap> naive_axis_taps(size_t o, size_t S, size_t D, size_t P, size_t I, size_t K) {
  std::vector<AxisTap> taps;
  for (size_t i = 0; i < I; ++i) {
    const int64_t kd = int64_t(i) + int64_t(P) - int64_t(o * S);
    if (kd < 0 || kd % int64_t(D) != 0 || kd / int64_t(D) >= int64_t(K)) continue;
    taps.push_back({size_t(kd / int64_t(D)), i});
  }
  return taps;
}

// How many taps of output o read a position of the padded input [-P, I + Pe) (AveragePool's
// count_include_pad divisor along one axis): positions never fall below -P, so the taps k with
// o*S + k*D - P < I + Pe, at most K. Small K is also counted tap by tap, as a check of the formula.
inline size_t naive_axis_padded_count(size_t o, size_t S, size_t D, size_t P, size_t I, size_t Pe, size_t K) {
  const int64_t room = int64_t(P + I + Pe) - int64_t(o * S);
  const size_t n = room <= 0 ? 0 : size_t(std::min<int64_t>(int64_t(K), (room + int64_t(D) - 1) / int64_t(D)));
  if (K <= 4096) {
    size_t scanned = 0;
    for (size_t k = 0; k < K; ++k) scanned += int64_t(o * S + k * D) - int64_t(P) < int64_t(I + Pe);
    if (scanned != n) ADD_FAILURE() << "naive_axis_padded_count: formula " << n << ", scan " << scanned;
  }
  return n;
}

// A random window geometry along one axis for the generator tests: K in 1..9 taps, stride,
// dilation, pads from 0 up to 2^20, and an input extent, such that the output is at least one and
// at most about 24 positions long (large pads come with large strides).
struct AxisGeometry {
  size_t I, K, S, D, P, Pe;
};

inline AxisGeometry random_axis(std::mt19937& rng) {
  auto pick = [&](size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng); };
  AxisGeometry a{};
  a.I = pick(1, 10);
  a.K = pick(1, 9);
  a.D = pick(0, 3) == 0 ? pick(2, 4) : 1;
  const size_t kind = pick(0, 3);
  const size_t pad_max = kind == 0 ? 0 : kind == 1 ? 4 : kind == 2 ? 40 : size_t{1} << 20;
  a.P = pick(0, pad_max);
  a.Pe = pick(0, pad_max);
  const size_t span = (a.K - 1) * a.D + 1;
  if (a.I + a.P + a.Pe < span) a.Pe += span - (a.I + a.P + a.Pe);  // at least one window
  const size_t extent = a.I + a.P + a.Pe - span;                   // last window start
  const size_t min_stride = extent / 24 + 1;
  a.S = std::max(min_stride, pick(1, 4)) + (pick(0, 3) == 0 ? pick(0, min_stride) : 0);
  return a;
}

}  // namespace q8_test
