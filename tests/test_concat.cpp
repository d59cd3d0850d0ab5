// Concat: ONNX's own cases run in tests/test_conformance.cpp; here the runtime's two ways of
// joining are checked against each other. Channels of NHWC convolution outputs join pixel by
// pixel (no layout change): the result equals the C-order concatenation of the same convs'
// outputs, bit for bit, on every kernel path and thread count; and bad inputs are refused by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "q8/q8.h"
#include "tests/onnx_model_builder.h"
#include "tests/test_util.h"

namespace {

using q8test::OnnxModelBuilder;
using q8test::set_int;
using q8test::set_ints;

using q8::test::random_floats;

// x [1,3,9,7] -> conv a (4 ch, 3x3) and conv b (5 ch, 1x1) -> Concat(axis 1) -> conv c (2 ch).
// With `split`, the model instead outputs a and b, and conv c is a model of its own.
struct Nets {
  std::string joined, branches, head;
};

Nets make_nets() {
  auto convs = [](OnnxModelBuilder& b) {
    b.init_f("wa", {4, 3, 3, 3}, random_floats(4 * 3 * 9, 1));
    b.init_f("wb", {5, 3, 1, 1}, random_floats(5 * 3, 2));
    set_ints(b.node("Conv", {"x", "wa"}, {"a"}, "conv_a"), "pads", {1, 1, 1, 1});
    b.node("Conv", {"x", "wb"}, {"b"}, "conv_b");
  };
  Nets n;
  {
    OnnxModelBuilder b;
    b.input("x", {1, 3, 9, 7});
    convs(b);
    set_int(b.node("Concat", {"a", "b"}, {"ab"}, "join"), "axis", 1);
    b.init_f("wc", {2, 9, 1, 1}, random_floats(2 * 9, 3));
    b.node("Conv", {"ab", "wc"}, {"y"}, "conv_c");
    b.output("y");
    n.joined = b.bytes();
  }
  {
    OnnxModelBuilder b;
    b.input("x", {1, 3, 9, 7});
    convs(b);
    b.output("a").output("b");
    n.branches = b.bytes();
  }
  {
    OnnxModelBuilder b;
    b.input("ab", {1, 9, 9, 7});
    b.init_f("wc", {2, 9, 1, 1}, random_floats(2 * 9, 3));
    b.node("Conv", {"ab", "wc"}, {"y"}, "conv_c");
    b.output("y");
    n.head = b.bytes();
  }
  return n;
}

// `joined` (x -> conv_a, conv_b -> Concat -> tail) against `head` (the same tail on a C-order
// input) fed the C-order concatenation of `branches`' outputs: bit for bit on every path and
// thread count; and `joined` changes no layout but the input's and the output's.
void expect_join_equals_c_order(const q8::Model& joined, const q8::Model& head, const q8::Model& branches) {
  const q8::Tensor x({1, 3, 9, 7}, random_floats(3 * 9 * 7, 4));
  for (const q8::LayerTime& t : q8::Session(joined).profile({x}, 1))
    EXPECT_TRUE(t.node.find("(to ") == std::string::npos || t.node.rfind("x ", 0) == 0 || t.node.rfind("y ", 0) == 0)
        << t.node;
  for (const std::string& isa : q8::supported_isas())
    for (int threads : {1, 2, 3}) {
      SCOPED_TRACE(isa + ", " + std::to_string(threads) + " thread(s)");
      q8::SessionOptions o(threads);
      o.isa = isa;
      const std::vector<q8::Tensor> ab = q8::Session(branches, o).run({x});
      // Channels 0-3 from a, 4-8 from b: C order, image by image.
      q8::Tensor cat({1, 9, 9, 7});
      std::copy(ab[0].data(), ab[0].data() + ab[0].numel(), cat.data());
      std::copy(ab[1].data(), ab[1].data() + ab[1].numel(), cat.data() + ab[0].numel());
      const std::vector<q8::Tensor> want = q8::Session(head, o).run({cat});
      const std::vector<q8::Tensor> got = q8::Session(joined, o).run({x});
      ASSERT_EQ(got[0].shape(), want[0].shape());
      for (int64_t i = 0; i < want[0].numel(); ++i) ASSERT_EQ(got[0].data()[i], want[0].data()[i]) << "at " << i;
    }
}

TEST(Concat, NhwcChannelJoinEqualsCOrderJoin) {
  const Nets nets = make_nets();
  expect_join_equals_c_order(q8::Model::load_from_memory(nets.joined.data(), nets.joined.size(), "joined"),
                             q8::Model::load_from_memory(nets.head.data(), nets.head.size(), "head"),
                             q8::Model::load_from_memory(nets.branches.data(), nets.branches.size(), "branches"));
}

// DenseNet's fp32 join: Concat, then a BatchNormalization no Conv absorbs and its Relu, then the
// next Conv. The BatchNormalization works on the NHWC pixels the Concat wrote (no conversion to
// NCHW and back) and gives the bytes of the C-order one, on every path and thread count.
TEST(Concat, DenseNetBatchNormAfterTheJoinStaysNhwc) {
  std::vector<float> gamma = random_floats(9, 7), beta = random_floats(9, 8), mean = random_floats(9, 9),
                     var = random_floats(9, 10);
  for (float& v : var) v = std::fabs(v) + 0.1f;
  auto norm_relu_conv = [&](OnnxModelBuilder& b, const char* in) {
    b.init_f("gamma", {9}, gamma);
    b.init_f("beta", {9}, beta);
    b.init_f("mean", {9}, mean);
    b.init_f("var", {9}, var);
    b.node("BatchNormalization", {in, "gamma", "beta", "mean", "var"}, {"n"}, "norm");
    b.node("Relu", {"n"}, {"r"}, "relu");
    b.init_f("wc", {2, 9, 1, 1}, random_floats(2 * 9, 3));
    b.node("Conv", {"r", "wc"}, {"y"}, "conv_c");
    b.output("y");
  };
  OnnxModelBuilder jb;
  jb.input("x", {1, 3, 9, 7});
  jb.init_f("wa", {4, 3, 3, 3}, random_floats(4 * 3 * 9, 1));
  jb.init_f("wb", {5, 3, 1, 1}, random_floats(5 * 3, 2));
  set_ints(jb.node("Conv", {"x", "wa"}, {"a"}, "conv_a"), "pads", {1, 1, 1, 1});
  jb.node("Conv", {"x", "wb"}, {"b"}, "conv_b");
  set_int(jb.node("Concat", {"a", "b"}, {"ab"}, "join"), "axis", 1);
  norm_relu_conv(jb, "ab");
  OnnxModelBuilder hb;  // the same tail on a C-order input
  hb.input("ab", {1, 9, 9, 7});
  norm_relu_conv(hb, "ab");
  const std::string jbytes = jb.bytes(), hbytes = hb.bytes();
  const Nets nets = make_nets();
  expect_join_equals_c_order(q8::Model::load_from_memory(jbytes.data(), jbytes.size(), "joined_norm"),
                             q8::Model::load_from_memory(hbytes.data(), hbytes.size(), "norm_head"),
                             q8::Model::load_from_memory(nets.branches.data(), nets.branches.size(), "branches"));
}

// The quantized model against fp32 on one input, on every path (SQNR in dB), and the same bytes on
// every path.
void expect_close_and_identical(const q8::Model& fp32, const q8::Model& int8, const q8::Tensor& x, double min_db) {
  const q8::Tensor want = q8::Session(fp32).run({x})[0];
  std::vector<float> first;
  for (const std::string& isa : q8::supported_isas()) {
    q8::SessionOptions o(2);
    o.isa = isa;
    const q8::Tensor got = q8::Session(int8, o).run({x})[0];
    ASSERT_EQ(got.shape(), want.shape());
    double err = 0, sig = 0;
    for (int64_t i = 0; i < want.numel(); ++i)
      err += (got.data()[i] - want.data()[i]) * (got.data()[i] - want.data()[i]),
          sig += want.data()[i] * want.data()[i];
    EXPECT_GT(10 * std::log10(sig / err), min_db) << isa;
    if (first.empty()) first.assign(got.data(), got.data() + got.numel());
    EXPECT_TRUE(std::equal(first.begin(), first.end(), got.data()))
        << isa << " differs from " << q8::supported_isas()[0];
  }
}

// Quantized, the join runs on uint8: the quantizer gives both branches the Concat's scale, so the
// join copies bytes; the int8 model stays close to fp32 and gives the same bytes on every path.
TEST(Concat, QuantizedJoinCopiesBytesAtOneScale) {
  const Nets nets = make_nets();
  const q8::Model fp32 = q8::Model::load_from_memory(nets.joined.data(), nets.joined.size(), "joined");
  const q8::Tensor calib({16, 3, 9, 7}, random_floats(16 * 3 * 9 * 7, 5));
  const q8::Model int8 = q8::quantize(fp32, {calib});
  bool seen = false;
  for (const q8::NodeInfo& n : int8.describe()) {
    if (n.op != "Concat") continue;
    seen = true;
    EXPECT_TRUE(n.int8) << n.kernel;
    EXPECT_EQ(n.kernel, "concat_rows");
  }
  EXPECT_TRUE(seen);
  expect_close_and_identical(fp32, int8, q8::Tensor({1, 3, 9, 7}, random_floats(3 * 9 * 7, 6)), 25.0);
}

// The joins CNNs make around a Concat stay in int8: DenseNet's BatchNormalization after it (no
// Conv to fold into: it becomes a depthwise 1x1 Conv, its Relu the clamp), ShuffleNet's Reshape
// whose target is computed from the Concat's own Shape, and a spatial ReduceMean (a global
// average pool) before the classifier, whose float result comes from the int8 product.
TEST(Concat, JoinsOfDenseNetAndShuffleNetRunInInt8) {
  OnnxModelBuilder b;
  b.input("x", {-1, 3, 9, 7});
  b.init_f("wa", {4, 3, 3, 3}, random_floats(4 * 3 * 9, 1));
  b.init_f("wb", {5, 3, 1, 1}, random_floats(5 * 3, 2));
  set_ints(b.node("Conv", {"x", "wa"}, {"a"}, "conv_a"), "pads", {1, 1, 1, 1});
  b.node("Conv", {"x", "wb"}, {"b"}, "conv_b");
  set_int(b.node("Concat", {"a", "b"}, {"ab"}, "join"), "axis", 1);
  std::vector<float> gamma = random_floats(9, 7), beta = random_floats(9, 8), mean = random_floats(9, 9),
                     var = random_floats(9, 10);
  for (float& v : var) v = std::fabs(v) + 0.1f;
  b.init_f("gamma", {9}, gamma);
  b.init_f("beta", {9}, beta);
  b.init_f("mean", {9}, mean);
  b.init_f("var", {9}, var);
  b.node("Shape", {"ab"}, {"ab_shape"}, "join_shape");
  b.node("Reshape", {"ab", "ab_shape"}, {"ab2"}, "join_reshape");
  b.node("BatchNormalization", {"ab2", "gamma", "beta", "mean", "var"}, {"n"}, "norm");
  b.node("Relu", {"n"}, {"r"}, "relu");
  b.init_f("wc", {6, 9, 1, 1}, random_floats(6 * 9, 3));
  b.node("Conv", {"r", "wc"}, {"c"}, "conv_c");
  b.node("Shape", {"c"}, {"c_shape"}, "shape");
  b.node("Reshape", {"c", "c_shape"}, {"c2"}, "reshape");
  ::onnx::NodeProto& mean_hw = b.node("ReduceMean", {"c2"}, {"m"}, "mean_hw");
  set_ints(mean_hw, "axes", {2, 3});
  set_int(mean_hw, "keepdims", 0);
  b.init_f("wd", {6, 5}, random_floats(6 * 5, 11));  // 30 int8 weights: packing keeps the rest aligned
  b.init_f("bd", {5}, random_floats(5, 12));
  b.node("MatMul", {"m", "wd"}, {"d"}, "fc");
  b.node("Add", {"d", "bd"}, {"y"}, "fc_bias");
  b.output("y");
  const std::string bytes = b.bytes();
  const q8::Model fp32 = q8::Model::load_from_memory(bytes.data(), bytes.size(), "densenet_like");
  const q8::Tensor calib({16, 3, 9, 7}, random_floats(16 * 3 * 9 * 7, 5));
  const q8::Model int8 = q8::quantize(fp32, {calib});
  std::vector<std::string> in_int8;
  for (const q8::NodeInfo& n : int8.describe()) {
    if (n.op == "QuantizeLinear" || n.op == "DequantizeLinear") continue;
    EXPECT_TRUE(n.int8) << n.name << " (" << n.op << ") runs " << n.kernel;
    if (n.int8) in_int8.push_back(n.name);
  }
  for (const char* name : {"join", "join_reshape", "norm", "reshape", "mean_hw", "fc"})
    EXPECT_NE(std::find(in_int8.begin(), in_int8.end(), name), in_int8.end()) << name << " is not in int8";
  expect_close_and_identical(fp32, int8, q8::Tensor({2, 3, 9, 7}, random_floats(2 * 3 * 9 * 7, 6)), 25.0);

  // analyze measures what runs in int8, the BatchNormalization run as a depthwise Conv included.
  q8::AnalyzeOptions ao;
  ao.iterations = 1;
  const q8::Analysis a = q8::analyze(fp32, {calib}, {}, {}, ao);
  std::map<std::string, const q8::LayerAnalysis*> rows;
  for (const q8::LayerAnalysis& l : a.layers) rows[l.name] = &l;
  for (const char* name : {"conv_a", "conv_b", "join", "norm", "conv_c", "mean_hw", "fc"}) {
    ASSERT_TRUE(rows.count(name)) << name << " has no row";
    EXPECT_TRUE(rows[name]->int8) << name;
    EXPECT_FALSE(rows[name]->fp32_fallback) << name;
    EXPECT_GT(rows[name]->sqnr_db, 25.0) << name;
    EXPECT_LT(rows[name]->sqnr_db, 99.0) << name << ": its int8 form was not measured";
  }
  EXPECT_EQ(rows["norm"]->op, "BatchNormalization");
}

// A Concat of int8 results that is the model's output (a detector's heads) joins uint8 at one
// scale and is dequantized once; the output keeps its name.
TEST(Concat, ModelOutputJoinRunsInInt8) {
  OnnxModelBuilder b;
  b.input("x", {-1, 3, 9, 7});
  b.init_f("wa", {4, 3, 3, 3}, random_floats(4 * 3 * 9, 1));
  b.init_f("wb", {5, 3, 1, 1}, random_floats(5 * 3, 2));
  set_ints(b.node("Conv", {"x", "wa"}, {"a"}, "conv_a"), "pads", {1, 1, 1, 1});
  b.node("Conv", {"x", "wb"}, {"b"}, "conv_b");
  b.node("Sigmoid", {"a"}, {"sa"}, "sigmoid_a");
  b.node("Sigmoid", {"b"}, {"sb"}, "sigmoid_b");
  set_int(b.node("Concat", {"sa", "sb"}, {"heads"}, "join"), "axis", 1);
  b.output("heads");
  const std::string bytes = b.bytes();
  const q8::Model fp32 = q8::Model::load_from_memory(bytes.data(), bytes.size(), "heads");
  const q8::Tensor calib({16, 3, 9, 7}, random_floats(16 * 3 * 9 * 7, 5));
  const q8::Model int8 = q8::quantize(fp32, {calib});
  bool seen = false;
  for (const q8::NodeInfo& n : int8.describe()) {
    if (n.op == "QuantizeLinear" || n.op == "DequantizeLinear") continue;
    EXPECT_TRUE(n.int8) << n.name << " (" << n.op << ") runs " << n.kernel;
    seen |= n.name == "join" && n.kernel == "concat_rows";
  }
  EXPECT_TRUE(seen) << "the join does not copy uint8 rows";
  const std::string saved = ::testing::TempDir() + "/heads.int8.onnx";
  int8.save(saved);
  const q8::Model reloaded = q8::Model::load(saved);
  ASSERT_EQ(reloaded.outputs().size(), 1u);
  EXPECT_EQ(reloaded.outputs()[0].name, "heads");
  ASSERT_EQ(int8.outputs().size(), 1u);
  EXPECT_EQ(int8.outputs()[0].name, "heads");
  expect_close_and_identical(fp32, int8, q8::Tensor({2, 3, 9, 7}, random_floats(2 * 3 * 9 * 7, 6)), 30.0);
}

TEST(Concat, RefusesMismatchedInputsByName) {
  OnnxModelBuilder b;
  b.input("p", {1, 2, 4, 4}).input("q", {1, 3, 5, 4});
  set_int(b.node("Concat", {"p", "q"}, {"y"}, "bad_join"), "axis", 1);
  b.output("y");
  const std::string bytes = b.bytes();
  try {
    q8::Model::load_from_memory(bytes.data(), bytes.size(), "bad.onnx");
    FAIL() << "loaded";
  } catch (const q8::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("bad.onnx"), std::string::npos) << m;
    EXPECT_NE(m.find("bad_join"), std::string::npos) << m;
    EXPECT_NE(m.find("does not join"), std::string::npos) << m;
  }
}

}  // namespace
