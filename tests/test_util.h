// Small helpers shared by the end-to-end tests.
#pragma once

#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "q8/q8.h"

namespace q8::test {

inline bool exists(const std::string& path) { return std::ifstream(path).good(); }

// n floats uniform in [lo, hi), the same sequence for the same seed on every machine.
inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

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

// The payload of a gzip'd IDX file after its `header` bytes; false when it cannot be read.
inline bool read_idx_gz(const std::string& path, size_t header, std::vector<uint8_t>& out) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return false;
  std::vector<uint8_t> all;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) all.insert(all.end(), buf, buf + n);
  gzclose(f);
  if (all.size() < header) return false;
  out.assign(all.begin() + static_cast<long>(header), all.end());
  return true;
}

// The 10,000 Fashion-MNIST test images of Debian's dataset-fashion-mnist, [10000,1,28,28],
// normalised as scripts/train_fashion.py trains, (pixel / 255 - 0.2860) / 0.3530, and their
// labels. Both empty when the dataset is not installed.
struct FashionTestSet {
  std::vector<float> images;
  std::vector<int64_t> labels;
};

inline FashionTestSet fashion_mnist_test_set() {
  const std::string d = "/usr/share/datasets/fashion-mnist/";
  std::vector<uint8_t> px, lb;
  FashionTestSet s;
  if (!read_idx_gz(d + "t10k-images-idx3-ubyte.gz", 16, px) || !read_idx_gz(d + "t10k-labels-idx1-ubyte.gz", 8, lb) ||
      px.size() != 10000u * 28 * 28 || lb.size() != 10000u)
    return s;
  s.images.resize(px.size());
  for (size_t i = 0; i < px.size(); ++i) s.images[i] = (px[i] / 255.f - 0.2860f) / 0.3530f;
  s.labels.assign(lb.begin(), lb.end());
  return s;
}

}  // namespace q8::test
