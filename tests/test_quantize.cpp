// The quantizer through the public API: determinism, accuracy, refusals, exclusions, and the
// acceptance figure on the full Fashion-MNIST test set (Debian's dataset-fashion-mnist).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>

#include "q8/q8.h"
#include "tests/test_util.h"

namespace {

const std::string kSrc = Q8_SOURCE_DIR;
const std::string kShared = kSrc + "/../shared/";

bool exists(const std::string& p) { return std::ifstream(p).good(); }

std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string saved_bytes(const q8::Model& m) {
  char name[] = "/tmp/q8_quant_XXXXXX";
  const int fd = mkstemp(name);
  close(fd);
  const std::string path = std::string(name) + ".onnx";
  m.save(path);
  std::string bytes = read_all(path);
  std::remove(path.c_str());
  std::remove(name);
  return bytes;
}

int64_t correct(q8::Session& s, const q8::Tensor& x, const std::vector<int64_t>& labels) {
  const q8::Tensor y = s.run({x})[0];
  const int64_t n = y.shape()[0], k = y.shape()[1];
  int64_t ok = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* r = y.data() + i * k;
    ok += std::max_element(r, r + k) - r == labels[i];
  }
  return ok;
}

std::vector<int64_t> labels_of(const q8::Tensor& t) {
  std::vector<int64_t> r;
  for (float v : t.values()) r.push_back(static_cast<int64_t>(v));
  return r;
}

struct Embedded {
  q8::Model fp32 = q8::Model::load(kSrc + "/models/fashion_cnn.onnx");
  q8::Tensor calib = q8::load_npy(kSrc + "/models/fashion_calib_256.npy");
};

TEST(Quantize, EmbeddedModelKeepsItsAccuracyOnTheEmbeddedTestImages) {
  Embedded e;
  const q8::Model int8 = q8::quantize(e.fp32, {e.calib});
  EXPECT_TRUE(int8.is_quantized());
  const q8::Tensor x = q8::load_npy(kSrc + "/models/fashion_test_500.npy");
  const auto y = labels_of(q8::load_npy(kSrc + "/models/fashion_test_500_labels.npy"));
  q8::Session f(e.fp32), q(int8);
  // 500 images: one image is 0.2 points.
  EXPECT_LE(std::abs(correct(f, x, y) - correct(q, x, y)), 2);
}

TEST(Quantize, ResultDoesNotDependOnSampleOrderOrThreads) {
  Embedded e;
  const std::string ref = saved_bytes(q8::quantize(e.fp32, {e.calib}));
  // The same samples, reversed.
  const int64_t n = e.calib.shape()[0], per = e.calib.numel() / n;
  std::vector<float> rev;
  for (int64_t i = n - 1; i >= 0; --i) rev.insert(rev.end(), e.calib.data() + i * per, e.calib.data() + (i + 1) * per);
  const q8::Tensor reversed(e.calib.shape(), rev);
  for (q8::Calibration m :
       {q8::Calibration::MinMax, q8::Calibration::Percentile, q8::Calibration::Entropy, q8::Calibration::Mse}) {
    q8::QuantizeOptions a, b;
    a.method = b.method = m;
    b.threads = 2;
    EXPECT_EQ(saved_bytes(q8::quantize(e.fp32, {e.calib}, a)), saved_bytes(q8::quantize(e.fp32, {reversed}, b)))
        << q8::calibration_name(m);
  }
  EXPECT_EQ(ref, saved_bytes(q8::quantize(e.fp32, {e.calib})));
}

TEST(Quantize, SavedFileLoadsBackToTheSameOutputs) {
  Embedded e;
  const q8::Model int8 = q8::quantize(e.fp32, {e.calib});
  const std::string bytes = saved_bytes(int8);
  const q8::Model back = q8::Model::load_from_memory(bytes.data(), bytes.size(), "back.onnx");
  const q8::Tensor x = q8::load_npy(kSrc + "/models/fashion_test_500.npy");
  const q8::Tensor a = q8::Session(int8).run({x})[0], b = q8::Session(back).run({x})[0];
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)));
}

TEST(Quantize, ExcludedNodesStayFp32AndPerTensorWorks) {
  Embedded e;
  q8::QuantizeOptions o;
  o.exclude = {"/3/Conv"};
  o.per_channel = false;
  const q8::Model int8 = q8::quantize(e.fp32, {e.calib}, o);
  bool conv3_fp32 = false, conv0_int8 = false;
  for (const auto& r : int8.describe(1)) {
    if (r.name == "/3/Conv") conv3_fp32 = r.op == "Conv" && r.kernel.find("f32_") == 0;
    if (r.name == "/0/Conv") conv0_int8 = r.op == "QuantizedConv";
  }
  EXPECT_TRUE(conv3_fp32);
  EXPECT_TRUE(conv0_int8);
  o.exclude = {"no_such_node"};
  EXPECT_THROW(q8::quantize(e.fp32, {e.calib}, o), q8::Error);
}

// Excluding every node q8 runs in int8 is not "a model with nothing to quantize": the error says
// the exclusions took everything, and names them.
TEST(Quantize, ExcludingEveryInt8NodeNamesThem) {
  Embedded e;
  q8::QuantizeOptions o;
  o.exclude = {"/0/Conv", "/3/Conv", "/7/Gemm"};
  try {
    q8::quantize(e.fp32, {e.calib}, o);
    FAIL() << "expected a refusal";
  } catch (const q8::Error& err) {
    EXPECT_NE(std::string(err.what())
                  .find("nothing left to quantize: all 3 nodes q8 can run in int8 are excluded "
                        "(/0/Conv, /3/Conv, /7/Gemm)"),
              std::string::npos)
        << err.what();
  }
  o.exclude = {"/0/Conv", "/3/Conv"};
  EXPECT_NO_THROW(q8::quantize(e.fp32, {e.calib}, o));
}

TEST(Quantize, BadCalibrationDataIsRefused) {
  Embedded e;
  auto error = [&](const std::vector<q8::Tensor>& c) {
    try {
      q8::quantize(e.fp32, c);
    } catch (const q8::Error& err) {
      return std::string(err.what());
    }
    return std::string();
  };
  EXPECT_NE(error({q8::Tensor({0, 1, 28, 28})}).find("empty"), std::string::npos);
  EXPECT_NE(error({q8::Tensor({4, 3, 28, 28})}).find("does not fit"), std::string::npos);
  EXPECT_NE(error({}).find("input"), std::string::npos);
  q8::Tensor nan({2, 1, 28, 28});
  nan.data()[28 * 28 + 5] = std::nanf("");
  EXPECT_NE(error({nan}).find("sample 1"), std::string::npos);
  q8::Tensor inf({2, 1, 28, 28});
  inf.data()[3] = INFINITY;
  EXPECT_NE(error({inf}).find("NaN or Inf"), std::string::npos);
  // Already quantized.
  const q8::Model int8 = q8::quantize(e.fp32, {e.calib});
  EXPECT_THROW(q8::quantize(int8, {e.calib}), q8::Error);
}

TEST(Quantize, ModelWithNothingToQuantizeSaysSo) {
  const std::string f = "/usr/share/libonnx-testdata/data/node/test_relu/model.onnx";
  if (!exists(f)) GTEST_SKIP() << "libonnx-testdata is not installed";
  const q8::Model m = q8::Model::load(f);
  try {
    q8::quantize(m, {q8::Tensor({3, 4, 5})});
    FAIL() << "expected a refusal";
  } catch (const q8::Error& err) {
    EXPECT_NE(std::string(err.what()).find("nothing to quantize"), std::string::npos) << err.what();
  }
}

TEST(Quantize, CalibrationFolderOfImages) {
  // A folder of two 24-bit BMP images (28x28; stb decodes BMP like PNG and JPEG, and BMP is
  // simple to write here): loaded as 1-channel samples, resized and normalised.
  char dir[] = "/tmp/q8_calib_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  for (int k = 0; k < 2; ++k) {
    const int w = 28, h = 28, row = (w * 3 + 3) / 4 * 4, size = 54 + row * h;
    std::string bmp(static_cast<size_t>(size), '\0');
    auto put32 = [&](int at, uint32_t v) {
      for (int i = 0; i < 4; ++i) bmp[at + i] = static_cast<char>((v >> (8 * i)) & 255);
    };
    bmp[0] = 'B', bmp[1] = 'M';
    put32(2, size), put32(10, 54), put32(14, 40), put32(18, w), put32(22, h);
    bmp[26] = 1, bmp[28] = 24;
    put32(34, row * h);
    for (int i = 54; i < size; ++i) bmp[i] = static_cast<char>((i * (k + 3)) & 255);
    std::ofstream(std::string(dir) + "/img" + std::to_string(k) + ".bmp", std::ios::binary) << bmp;
  }
  Embedded e;
  q8::CalibrationSource cs;
  cs.mean = {0.286f};
  cs.std = {0.353f};
  const std::vector<q8::Tensor> c = q8::load_calibration(dir, e.fp32, cs);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].shape(), (std::vector<int64_t>{2, 1, 28, 28}));
  EXPECT_NO_THROW(q8::quantize(e.fp32, c));
  std::ofstream(std::string(dir) + "/broken.png") << "not a png";
  EXPECT_THROW(q8::load_calibration(dir, e.fp32, cs), q8::Error);
  std::filesystem::remove_all(dir);
}

// ---- The acceptance figure: all 10,000 Fashion-MNIST test images ----------------------------

TEST(QuantizeAcceptance, FashionSeedLosesAtMostATenthOfAPointOnTenThousandImages) {
  const std::string model = kShared + "models/fashion_seed.onnx",
                    calib = kShared + "reference/fashion_calib_256x1x28x28.npy";
  q8::test::FashionTestSet t = q8::test::fashion_mnist_test_set();
  if (t.labels.empty()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  if (!exists(model) || !exists(calib)) GTEST_SKIP() << "../shared is absent";
  const q8::Tensor x({10000, 1, 28, 28}, std::move(t.images));
  const std::vector<int64_t>& y = t.labels;
  const q8::Model fp32 = q8::Model::load(model);
  const q8::Model int8 = q8::quantize(fp32, {q8::load_npy(calib)});  // the default method, as `q8 quantize`
  q8::Session f(fp32, {2}), q(int8, {2});
  const int64_t cf = correct(f, x, y), cq = correct(q, x, y);
  std::printf("fp32 top-1 %.2f %%, int8 top-1 %.2f %%\n", cf / 100.0, cq / 100.0);
  EXPECT_EQ(cf, 8135);  // 81.35 %, as ONNX Runtime measures it
  EXPECT_LE(cf - cq, 10) << "int8 loses more than 0.10 points";
}

}  // namespace
