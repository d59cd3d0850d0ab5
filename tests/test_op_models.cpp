// Binary, reduction and normalisation ops and Split end to end: small PyTorch-exported models
// (tests/op_models/, made by scripts/make_op_models.py) against ONNX Runtime's outputs at batch 1
// and 2, the same bytes on every kernel path and thread count; the squeeze-excitation Mul runs
// as a row broadcast on NHWC (one row per image); bad operand types are refused by node.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "q8/q8.h"
#include "test_util.h"
#include "tests/onnx_model_builder.h"

namespace {

using q8::test::rel_l2;
using q8::test::same_bytes;

const std::string kDir = std::string(Q8_SOURCE_DIR) + "/tests/op_models/";

q8::Tensor first_image(const q8::Tensor& x) {
  std::vector<int64_t> s = x.shape();
  s[0] = 1;
  const int64_t per = x.numel() / x.shape()[0];
  return q8::Tensor(s, std::vector<float>(x.data(), x.data() + per));
}

class OpModel : public testing::TestWithParam<const char*> {};

TEST_P(OpModel, MatchesOnnxRuntimeAtBatch1And2OnEveryPath) {
  const std::string name = GetParam();
  const q8::Model m = q8::Model::load(kDir + name + ".onnx");
  const q8::Tensor x2 = q8::load_npy(kDir + name + "_input.npy"), x1 = first_image(x2);
  const q8::Tensor want1 = q8::load_npy(kDir + name + "_ort_b1.npy"), want2 = q8::load_npy(kDir + name + "_ort_b2.npy");
  q8::Tensor ref1, ref2;
  for (const std::string& isa : q8::supported_isas())
    for (int threads : {1, 2}) {
      SCOPED_TRACE(isa + ", " + std::to_string(threads) + " thread(s)");
      q8::SessionOptions o(threads);
      o.isa = isa;
      q8::Session s(m, o);
      const q8::Tensor y2 = s.run({x2})[0], y1 = s.run({x1})[0];
      ASSERT_EQ(y2.shape(), want2.shape());
      ASSERT_EQ(y1.shape(), want1.shape());
      EXPECT_LE(rel_l2(y2, want2), 1e-5);
      EXPECT_LE(rel_l2(y1, want1), 1e-5);
      if (ref1.numel() == 0) {
        ref1 = y1, ref2 = y2;
      } else {
        EXPECT_TRUE(same_bytes(y1, ref1));
        EXPECT_TRUE(same_bytes(y2, ref2));
      }
    }
}

INSTANTIATE_TEST_SUITE_P(TorchExported, OpModel,
                         testing::Values("se_norm", "se_block13", "split_heads", "split_heads11"));

// The SE block's Mul quantized by q8 (se_norm.qdq.onnx) lowers to QuantizedMul, a row broadcast in
// int8, and gives ONNX Runtime's output (which fuses it into QLinearMul) at batch 1 and 2; every
// kernel path and thread count gives the same bytes.
TEST(OpModel, Int8MulMatchesOnnxRuntimeQLinearMul) {
  const q8::Model m = q8::Model::load(kDir + "se_norm.qdq.onnx");
  bool found = false;
  for (const q8::NodeInfo& n : m.describe(2))
    if (n.op == "QuantizedMul") {
      found = true;
      EXPECT_TRUE(n.int8);
      EXPECT_NE(n.kernel.find("qu8_mul_rows__"), std::string::npos) << n.kernel;
    }
  EXPECT_TRUE(found);
  const q8::Tensor x2 = q8::load_npy(kDir + "se_norm_input.npy"), x1 = first_image(x2);
  const q8::Tensor want1 = q8::load_npy(kDir + "se_norm.qdq_ort_b1.npy"),
                   want2 = q8::load_npy(kDir + "se_norm.qdq_ort_b2.npy");
  q8::Tensor ref;
  for (const std::string& isa : q8::supported_isas())
    for (int threads : {1, 2}) {
      SCOPED_TRACE(isa + ", " + std::to_string(threads) + " thread(s)");
      q8::SessionOptions o(threads);
      o.isa = isa;
      q8::Session s(m, o);
      const q8::Tensor y2 = s.run({x2})[0], y1 = s.run({x1})[0];
      EXPECT_LE(rel_l2(y2, want2), 1e-5);
      EXPECT_LE(rel_l2(y1, want1), 1e-5);
      if (ref.numel() == 0)
        ref = y2;
      else
        EXPECT_TRUE(same_bytes(y2, ref));
    }
}

// x[N,C,H,W] * s[N,C,1,1] stays on NHWC as a row broadcast, and each image gets its own row:
// image 1's output equals the model run on image 1 alone.
TEST(OpModel, SqueezeExcitationMulIsARowBroadcastPerImage) {
  const q8::Model m = q8::Model::load(kDir + "se_block13.onnx");
  bool found = false;
  for (const q8::NodeInfo& n : m.describe(2))
    if (n.op == "Mul") {
      found = true;
      EXPECT_NE(n.kernel.find("f32_mul_rows__"), std::string::npos) << n.kernel;
    }
  EXPECT_TRUE(found);
  const q8::Tensor x2 = q8::load_npy(kDir + "se_block13_input.npy");
  const int64_t per = x2.numel() / 2;
  std::vector<int64_t> s = x2.shape();
  s[0] = 1;
  const q8::Tensor second(s, std::vector<float>(x2.data() + per, x2.data() + 2 * per));
  q8::Session sess(m);
  const q8::Tensor y2 = sess.run({x2})[0], y1 = sess.run({second})[0];
  ASSERT_EQ(y1.numel() * 2, y2.numel());
  for (int64_t i = 0; i < y1.numel(); ++i) ASSERT_EQ(y2.data()[per + i], y1.data()[i]) << "at " << i;
}

// Element-wise ops run on float32 only; an int64 operand (shape arithmetic that did not fold) is
// refused before planning, naming the file, the node and the operand.
TEST(OpModel, Int64OperandIsRefusedByNode) {
  q8test::OnnxModelBuilder b;
  b.input("x", {1, 4});
  b.init_i64("k", {1}, {2});
  b.node("Mul", {"x", "k"}, {"y"}, "scale_by_int");
  b.output("y");
  const std::string bytes = b.bytes();
  try {
    q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "int_mul.onnx");
    q8::Session s(m);
    s.run({q8::Tensor({1, 4}, std::vector<float>(4, 1.f))});
    FAIL() << "ran";
  } catch (const q8::Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("int_mul.onnx"), std::string::npos) << w;
    EXPECT_NE(w.find("scale_by_int"), std::string::npos) << w;
    EXPECT_NE(w.find("int64"), std::string::npos) << w;
  }
}

// ReduceMean-18 takes its axes as a constant input; the mean over H and W of that form is the
// same GlobalAveragePool as the attribute form, so both give the same bytes.
TEST(OpModel, ReduceMeanAxesInputEqualsAttribute) {
  auto model = [](int64_t opset) {
    q8test::OnnxModelBuilder b(opset);
    b.input("x", {2, 3, 4, 5});
    auto& n =
        opset >= 18 ? b.node("ReduceMean", {"x", "axes"}, {"y"}, "mean") : b.node("ReduceMean", {"x"}, {"y"}, "mean");
    if (opset >= 18)
      b.init_i64("axes", {2}, {-1, 2});
    else
      q8test::set_ints(n, "axes", {2, 3});
    q8test::set_int(n, "keepdims", 0);
    b.output("y");
    return b.bytes();
  };
  std::vector<float> v(2 * 3 * 4 * 5);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 7) * 0.3f - 1.f;
  const q8::Tensor x({2, 3, 4, 5}, v);
  std::vector<q8::Tensor> y;
  for (int64_t opset : {13, 18}) {
    const std::string bytes = model(opset);
    q8::Session s(q8::Model::load_from_memory(bytes.data(), bytes.size(), "mean.onnx"));
    y.push_back(s.run({x})[0]);
  }
  ASSERT_EQ(y[0].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(same_bytes(y[0], y[1]));
  float sum = 0.f;
  for (int i = 0; i < 20; ++i) sum += v[static_cast<size_t>(i)];
  EXPECT_EQ(y[0].data()[0], sum / 20.f);
}

// A Relu or Clip after Sub, Mul or Div fuses into it as the kernel's clamp, in every form (same
// shape, row, general broadcast): the node list shrinks and the values are clamp(a op b).
TEST(OpModel, ReluAndClipFuseIntoSubMulDiv) {
  for (const char* op : {"Sub", "Mul", "Div"})
    for (const std::vector<int64_t>& bshape :
         {std::vector<int64_t>{2, 3, 4, 5}, std::vector<int64_t>{3, 1, 1}, std::vector<int64_t>{4, 1}}) {
      q8test::OnnxModelBuilder b;
      b.input("a", {2, 3, 4, 5});
      int64_t bn = 1;
      for (int64_t d : bshape) bn *= d;
      std::vector<float> bv(static_cast<size_t>(bn));
      for (size_t i = 0; i < bv.size(); ++i) bv[i] = 0.25f + static_cast<float>(i % 5) * 0.5f;
      b.init_f("b", bshape, bv);
      b.node(op, {"a", "b"}, {"t"}, "op");
      b.node("Relu", {"t"}, {"r"}, "relu");
      b.init_f("hi", {}, {1.5f});
      b.node("Clip", {"r", "", "hi"}, {"y"}, "clip");
      b.output("y");
      const std::string bytes = b.bytes();
      const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "fuse.onnx");
      const std::vector<q8::NodeInfo> nodes = m.describe(1);
      ASSERT_EQ(nodes.size(), 1u) << op;
      EXPECT_NE(nodes[0].params.find("Relu"), std::string::npos) << nodes[0].params;
      std::vector<float> av(2 * 3 * 4 * 5);
      for (size_t i = 0; i < av.size(); ++i) av[i] = static_cast<float>(static_cast<int>(i % 11) - 5) * 0.7f;
      const q8::Tensor y = q8::Session(m).run({q8::Tensor({2, 3, 4, 5}, av)})[0];
      for (int64_t i = 0; i < 120; ++i) {
        // b's element for output i under broadcasting.
        const int64_t h = i / 5 % 4, c = i / 20 % 3;
        const float bb = bshape.size() == 4   ? bv[static_cast<size_t>(i)]
                         : bshape.size() == 3 ? bv[static_cast<size_t>(c)]
                                              : bv[static_cast<size_t>(h)];
        const float x = av[static_cast<size_t>(i)];
        const float t = std::string(op) == "Sub" ? x - bb : std::string(op) == "Mul" ? x * bb : x / bb;
        ASSERT_EQ(y.data()[i], std::min(std::max(t, 0.f), 1.5f)) << op << " " << bshape.size() << " at " << i;
      }
    }
}

TEST(OpModel, LayerNormalizationStashTypeOtherThanFloatIsRefused) {
  q8test::OnnxModelBuilder b(17);
  b.input("x", {1, 4});
  b.init_f("g", {4}, {1.f, 1.f, 1.f, 1.f});
  q8test::set_int(b.node("LayerNormalization", {"x", "g"}, {"y"}, "ln"), "stash_type", 0);
  b.output("y");
  const std::string bytes = b.bytes();
  try {
    q8::Model::load_from_memory(bytes.data(), bytes.size(), "ln.onnx");
    FAIL() << "loaded";
  } catch (const q8::Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("ln.onnx"), std::string::npos) << w;
    EXPECT_NE(w.find("stash_type"), std::string::npos) << w;
  }
}

}  // namespace
