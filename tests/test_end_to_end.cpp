// End to end: whole models through the public API against ONNX Runtime's outputs in ../shared
// (skipped with a message where ../shared is absent, as in a user's clone) and against the
// embedded model's PyTorch logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

#include "q8/q8.h"
#include "test_util.h"

namespace {

const std::string kSrc = Q8_SOURCE_DIR;
const std::string kShared = kSrc + "/../shared/";

using q8::test::exists;
using q8::test::rel_l2;
using q8::test::same_bytes;

struct RefCase {
  const char* model;
  const char* input;
  const char* output;
};

class VersusOnnxRuntime : public testing::TestWithParam<RefCase> {};

TEST_P(VersusOnnxRuntime, Fp32MatchesWithinRelativeL2) {
  const RefCase& c = GetParam();
  const std::string model = kShared + "models/" + c.model, in = kShared + "reference/" + c.input,
                    out = kShared + "reference/" + c.output;
  if (!exists(model) || !exists(in) || !exists(out)) GTEST_SKIP() << "../shared is absent: " << model;
  q8::Model m = q8::Model::load(model);
  q8::Tensor x = q8::load_npy(in), want = q8::load_npy(out);
  q8::Session one(m, {1}), two(m, {2});
  const q8::Tensor y1 = one.run({x})[0];
  ASSERT_EQ(y1.shape(), want.shape());
  EXPECT_LT(rel_l2(y1, want), 1e-4) << c.model;
  // The thread split never changes the arithmetic.
  EXPECT_TRUE(same_bytes(y1, two.run({x})[0])) << c.model;
}

INSTANTIATE_TEST_SUITE_P(
    Shared, VersusOnnxRuntime,
    testing::Values(RefCase{"seed.onnx", "imagenet_input_2x3x224x224.npy", "seed_ort_output.npy"},
                    RefCase{"resnet18.onnx", "imagenet_input_2x3x224x224.npy", "resnet18_ort_output.npy"},
                    RefCase{"mobilenet_v2.onnx", "imagenet_input_2x3x224x224.npy", "mobilenet_v2_ort_output.npy"},
                    RefCase{"fashion_seed.onnx", "fashion_input_64x1x28x28.npy", "fashion_seed_ort_output.npy"}),
    [](const testing::TestParamInfo<RefCase>& i) {
      std::string n = i.param.model;
      return n.substr(0, n.find('.'));
    });

TEST(EmbeddedModel, MatchesPyTorchLogits) {
  q8::Model m = q8::Model::load(kSrc + "/models/fashion_cnn.onnx");
  q8::Tensor x = q8::load_npy(kSrc + "/models/fashion_test_500.npy");
  q8::Tensor want = q8::load_npy(kSrc + "/models/fashion_cnn_test500_fp32_output.npy");
  q8::Session s(m);
  q8::Tensor y = s.run({x})[0];
  ASSERT_EQ(y.shape(), want.shape());
  EXPECT_LT(rel_l2(y, want), 1e-5);
}

TEST(EmbeddedModel, BatchSizeChangesReplanAndGiveTheSameRows) {
  q8::Model m = q8::Model::load(kSrc + "/models/fashion_cnn.onnx");
  q8::Tensor all = q8::load_npy(kSrc + "/models/fashion_test_500.npy");
  const int64_t per = 28 * 28;
  auto slice = [&](int64_t first, int64_t n) {
    return q8::Tensor({n, 1, 28, 28}, std::vector<float>(all.data() + first * per, all.data() + (first + n) * per));
  };
  q8::Session s(m, {2});
  const q8::Tensor y3 = s.run({slice(0, 3)})[0];
  const q8::Tensor y1 = s.run({slice(1, 1)})[0];
  const q8::Tensor y3again = s.run({slice(0, 3)})[0];
  EXPECT_TRUE(same_bytes(y3, y3again));
  ASSERT_EQ(y1.shape(), (std::vector<int64_t>{1, 10}));
  // Each image's logits do not depend on its batch-mates.
  EXPECT_EQ(std::memcmp(y1.data(), y3.data() + 10, 10 * sizeof(float)), 0);
}

TEST(EmbeddedModel, RunWithReusedOutputsKeepsStorage) {
  q8::Model m = q8::Model::load(kSrc + "/models/fashion_cnn.onnx");
  q8::Session s(m);
  std::vector<q8::Tensor> in{q8::Tensor({1, 1, 28, 28})}, out;
  s.run(in, out);
  const float* before = out[0].data();
  s.run(in, out);
  EXPECT_EQ(before, out[0].data());
}

TEST(EmbeddedModel, WrongInputsAreRefused) {
  q8::Model m = q8::Model::load(kSrc + "/models/fashion_cnn.onnx");
  q8::Session s(m);
  EXPECT_THROW(s.run({}), q8::Error);
  EXPECT_THROW(s.run({q8::Tensor({1, 3, 28, 28})}), q8::Error);
  EXPECT_THROW(s.run({q8::Tensor({1, 1, 28})}), q8::Error);
  EXPECT_THROW(s.run({q8::Tensor({1, 1, 28, 28}), q8::Tensor({1})}), q8::Error);
  try {
    s.run({q8::Tensor({1, 1, 27, 28})});
    FAIL();
  } catch (const q8::Error& e) {
    EXPECT_NE(std::string(e.what()).find("input"), std::string::npos) << e.what();
  }
}

TEST(Model, DescribeListsNodesShapesAndMacs) {
  q8::Model m = q8::Model::load(kSrc + "/models/fashion_cnn.onnx");
  const auto rows = m.describe(1);
  int64_t macs = 0;
  for (const auto& r : rows) macs += r.macs;
  // conv1 1*64*9*28*28 + conv2 64*128*9*14*14 + fc 128*10
  EXPECT_EQ(macs, 1 * 64 * 9 * 28 * 28 + 64 * 128 * 9 * 14 * 14 + 128 * 10);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].op, "Conv");
  EXPECT_FALSE(rows[0].kernel.empty());
  EXPECT_EQ(m.inputs()[0].shape[0], -1);
  EXPECT_EQ(m.outputs()[0].shape, (std::vector<int64_t>{-1, 10}));
}

}  // namespace
