// Small helpers shared by the end-to-end tests.
#pragma once

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

#include "q8/q8.h"

namespace q8::test {

inline bool exists(const std::string& path) { return std::ifstream(path).good(); }

// ||got - want|| / ||want||, accumulated in double.
inline double rel_l2(const Tensor& got, const Tensor& want) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double d = static_cast<double>(got.data()[i]) - want.data()[i];
    num += d * d;
    den += static_cast<double>(want.data()[i]) * want.data()[i];
  }
  return std::sqrt(num / den);
}

// Signal-to-quantization-noise ratio of `got` against the reference `want`, in dB.
inline double sqnr_db(const Tensor& got, const Tensor& want) { return -20.0 * std::log10(rel_l2(got, want)); }

inline bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)) == 0;
}

}  // namespace q8::test
