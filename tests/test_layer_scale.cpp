// The quantizer folds ConvNeXt's layer scale, MatMul(x, W) + b -> Mul(gamma), into the weights
// only where that changes nothing but the weights: per-column weight scales, and a gamma that
// does not broadcast the result to more axes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "q8/q8.h"
#include "tests/onnx_model_builder.h"
#include "tests/test_util.h"

namespace {

using q8test::OnnxModelBuilder;

using q8::test::random_floats;
using q8::test::sqnr_db;

// x [2,5,8] -> MatMul W [8,6] -> Add b [6] -> Mul gamma (of `gamma_dims`, values spread over 1e-3..1).
q8::Model scaled_linear(const std::vector<int64_t>& gamma_dims) {
  OnnxModelBuilder b(13);
  b.input("x", {2, 5, 8});
  b.init_f("w", {8, 6}, random_floats(48, 1, -1.f, 1.f));
  b.init_f("b", {6}, random_floats(6, 2, -1.f, 1.f));
  b.init_f("gamma", gamma_dims, {1e-3f, 0.01f, 0.1f, 1.f, 0.5f, 0.05f});
  b.node("MatMul", {"x", "w"}, {"xw"}, "fc");
  b.node("Add", {"xw", "b"}, {"h"}, "fc_bias");
  b.node("Mul", {"h", "gamma"}, {"y"}, "layer_scale");
  b.output("y");
  const std::string bytes = b.bytes();
  return q8::Model::load_from_memory(bytes.data(), bytes.size(), "layer_scale.onnx");
}

bool has_op(const q8::Model& m, const std::string& op) {
  const std::vector<q8::NodeInfo> nodes = m.describe();
  return std::any_of(nodes.begin(), nodes.end(), [&](const q8::NodeInfo& n) { return n.op == op; });
}

const q8::Tensor kCalib({16, 5, 8}, random_floats(16 * 40, 3, -2.f, 2.f));
const q8::Tensor kInput({2, 5, 8}, random_floats(80, 4, -2.f, 2.f));

TEST(LayerScale, FoldsIntoPerColumnWeights) {
  const q8::Model fp32 = scaled_linear({6});
  const q8::Model int8 = q8::quantize(fp32, {kCalib});
  EXPECT_FALSE(has_op(int8, "Mul"));
  EXPECT_GT(sqnr_db(q8::Session(int8).run({kInput})[0], q8::Session(fp32).run({kInput})[0]), 30.0);
}

// One scale for W * gamma would be set by its largest column: the Mul stays.
TEST(LayerScale, StaysAMulWithPerTensorWeights) {
  const q8::Model fp32 = scaled_linear({6});
  q8::QuantizeOptions o;
  o.per_channel = false;
  const q8::Model int8 = q8::quantize(fp32, {kCalib}, o);
  EXPECT_TRUE(has_op(int8, "Mul"));
}

// gamma [1,1,1,6] on a rank-3 result broadcasts it to rank 4: folding would drop that axis.
TEST(LayerScale, StaysAMulWhereGammaAddsAxes) {
  const q8::Model fp32 = scaled_linear({1, 1, 1, 6});
  const q8::Model int8 = q8::quantize(fp32, {kCalib});
  EXPECT_TRUE(has_op(int8, "Mul"));
  const q8::Tensor want = q8::Session(fp32).run({kInput})[0];
  const q8::Tensor got = q8::Session(int8).run({kInput})[0];
  ASSERT_EQ(got.shape(), want.shape());
  EXPECT_EQ(want.shape().size(), 4u);
  EXPECT_GT(sqnr_db(got, want), 30.0);
}

}  // namespace
