// Accuracy of q8's int8 on trained weights of the families people ship: small MobileNetV3-,
// EfficientNet- and Inception/UNet-style nets (and two held-out variants) trained on
// Fashion-MNIST by scripts/train_fashion_zoo.py (tests/fashion_zoo/README.md). Each is quantized
// with q8's default method on models/fashion_calib_256.npy, the images PyTorch's own int8 was
// calibrated on, and measured on all 10,000 test images (Debian's dataset-fashion-mnist).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "q8/q8.h"
#include "tests/test_util.h"

namespace {

const std::string kSrc = Q8_SOURCE_DIR;
const std::string kZoo = kSrc + "/tests/fashion_zoo/";

// Loaded once for every model; empty when the dataset is not installed.
const q8::test::FashionTestSet& test_set() {
  static const q8::test::FashionTestSet set = q8::test::fashion_mnist_test_set();
  return set;
}

// Correct top-1 answers on the test set, 500 images per run to bound the arena.
int64_t correct(q8::Session& s, const q8::test::FashionTestSet& t) {
  constexpr int64_t kBatch = 500, kPixels = 28 * 28;
  const int64_t n = static_cast<int64_t>(t.labels.size());
  std::vector<q8::Tensor> out;
  int64_t ok = 0;
  for (int64_t b = 0; b < n; b += kBatch) {
    const int64_t m = std::min(kBatch, n - b);
    const q8::TensorView in(t.images.data() + b * kPixels, {m, 1, 28, 28});
    s.run(&in, 1, out);
    const int64_t k = out[0].shape()[1];
    for (int64_t i = 0; i < m; ++i) {
      const float* r = out[0].data() + i * k;
      ok += std::max_element(r, r + k) - r == t.labels[b + i];
    }
  }
  return ok;
}

// figures.tsv, as scripts/train_fashion_zoo.py wrote it: per model, correct answers out of
// 10,000 for PyTorch fp32 and PyTorch int8 (FX graph mode, onednn).
struct Recorded {
  int64_t torch_fp32 = -1, torch_int8 = -1;
};

std::map<std::string, Recorded> recorded() {
  std::map<std::string, Recorded> r;
  std::ifstream f(kZoo + "figures.tsv");
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    std::string name;
    Recorded v;
    if (s >> name >> v.torch_fp32 >> v.torch_int8) r[name] = v;
  }
  return r;
}

class FashionZoo : public ::testing::TestWithParam<std::string> {};

TEST_P(FashionZoo, Int8LosesAtMostThreeTenthsOfAPointAndMatchesPyTorchInt8) {
  const q8::test::FashionTestSet& t = test_set();
  if (t.labels.empty()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string name = GetParam();
  const auto figures = recorded();
  ASSERT_TRUE(figures.count(name)) << kZoo << "figures.tsv has no row for " << name;
  const Recorded& rec = figures.at(name);

  const q8::Model fp32 = q8::Model::load(kZoo + name + ".onnx");
  // The default method, as `q8 quantize`; one thread, as the figures do not depend on it and the
  // suite runs alongside other tests.
  const q8::Model int8 = q8::quantize(fp32, {q8::load_npy(kSrc + "/models/fashion_calib_256.npy")});
  q8::Session f(fp32, {1}), q(int8, {1});
  const int64_t cf = correct(f, t), cq = correct(q, t);
  std::printf("%s: q8 fp32 %.2f %%, q8 int8 %.2f %%, PyTorch fp32 %.2f %%, PyTorch int8 %.2f %%\n", name.c_str(),
              cf / 100.0, cq / 100.0, rec.torch_fp32 / 100.0, rec.torch_int8 / 100.0);
  // The file is the trained model: q8's fp32 agrees with PyTorch's to a few images in 10,000.
  EXPECT_LE(std::abs(cf - rec.torch_fp32), 5);
  EXPECT_GE(cq, cf - 30) << "int8 loses more than 0.30 points against fp32";
  EXPECT_GE(cq, rec.torch_int8) << "q8's int8 is less accurate than PyTorch's own int8";
}

const auto kName = [](const ::testing::TestParamInfo<std::string>& i) { return i.param; };

INSTANTIATE_TEST_SUITE_P(Trained, FashionZoo,
                         ::testing::Values("mobilenetv3ish", "efficientnetish", "inception_unet", "mobilenetv3ish_k7",
                                           "efficient_unet"),
                         kName);

}  // namespace
