// Element-wise activations (Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu, Elu, Erf, Sqrt, Exp):
// ONNX's own cases run in tests/test_conformance.cpp and the kernel's accuracy in
// tests/kernels/test_f32_kernels.cpp; here each op runs after a convolution (so on its NHWC
// output) with its attributes given and defaulted, against the ONNX formula in double; a
// non-finite attribute is refused by name; the writer keeps the attributes and refuses Silu, which
// has no ONNX op.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "onnx/onnx_writer.h"
#include "q8/q8.h"
#include "tests/onnx_model_builder.h"

namespace {

using q8test::OnnxModelBuilder;
using q8test::set_float;

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

struct ActCase {
  const char* op;
  std::vector<std::pair<const char*, float>> attrs;
  std::function<double(double)> f;  // the ONNX formula with those attributes
};

double hard_sigmoid(double x, double a, double b) { return std::fmax(0.0, std::fmin(1.0, a * x + b)); }

std::vector<ActCase> act_cases() {
  return {
      {"Sigmoid", {}, [](double x) { return 1 / (1 + std::exp(-x)); }},
      {"Tanh", {}, [](double x) { return std::tanh(x); }},
      {"HardSigmoid", {}, [](double x) { return hard_sigmoid(x, 0.2, 0.5); }},
      {"HardSigmoid", {{"alpha", 0.3f}, {"beta", 0.4f}}, [](double x) { return hard_sigmoid(x, 0.3, 0.4); }},
      {"HardSwish", {}, [](double x) { return x * hard_sigmoid(x, 1.0 / 6, 0.5); }},
      {"LeakyRelu", {}, [](double x) { return x < 0 ? 0.01 * x : x; }},
      {"LeakyRelu", {{"alpha", 0.25f}}, [](double x) { return x < 0 ? 0.25 * x : x; }},
      {"Elu", {}, [](double x) { return x < 0 ? std::expm1(x) : x; }},
      {"Elu", {{"alpha", 0.5f}}, [](double x) { return x < 0 ? 0.5 * std::expm1(x) : x; }},
      {"Erf", {}, [](double x) { return std::erf(x); }},
      {"Exp", {}, [](double x) { return std::exp(x); }},
  };
}

// x [1,3,6,5] -> Conv (4 channels, 3x3, pad 1; bias) -> [activation] -> y
std::string conv_model(const ActCase* act, const std::string& node_name = "act1") {
  OnnxModelBuilder b(17);
  b.input("x", {1, 3, 6, 5});
  b.init_f("w", {4, 3, 3, 3}, random_floats(4 * 27, 1, -0.5f, 0.5f));
  b.init_f("bias", {4}, {0.1f, -0.2f, 0.3f, 0.f});
  auto& conv = b.node("Conv", {"x", "w", "bias"}, {act ? "c" : "y"}, "conv1");
  q8test::set_ints(conv, "pads", {1, 1, 1, 1});
  if (act) {
    auto& n = b.node(act->op, {"c"}, {"y"}, node_name);
    for (const auto& [k, v] : act->attrs) set_float(n, k, v);
  }
  b.output("y");
  return b.bytes();
}

TEST(Unary, AfterAConvMatchesTheOnnxFormulaOnEveryPath) {
  const std::string plain = conv_model(nullptr);
  const q8::Model conv = q8::Model::load_from_memory(plain.data(), plain.size(), "conv.onnx");
  const q8::Tensor x({1, 3, 6, 5}, random_floats(90, 2, -3.f, 3.f));
  const q8::Tensor c = q8::Session(conv).run({x})[0];
  for (const ActCase& a : act_cases()) {
    const std::string bytes = conv_model(&a);
    const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "act.onnx");
    std::vector<float> first;
    for (const std::string& isa : q8::supported_isas())
      for (int threads : {1, 3}) {
        SCOPED_TRACE(std::string(a.op) + " (" + std::to_string(a.attrs.size()) + " attributes) on " + isa + ", " +
                     std::to_string(threads) + " threads");
        q8::SessionOptions o(threads);
        o.isa = isa;
        const q8::Tensor y = q8::Session(m, o).run({x})[0];
        ASSERT_EQ(y.shape(), c.shape());
        for (int64_t i = 0; i < y.numel(); ++i) {
          const double want = a.f(c.data()[i]);
          ASSERT_NEAR(y.data()[i], want, 1e-6 * std::fabs(want) + 1e-7) << "element " << i << ", conv " << c.data()[i];
        }
        // The same bits on every path and thread count.
        if (first.empty()) first.assign(y.data(), y.data() + y.numel());
        for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y.data()[i], first[i]) << "element " << i;
      }
  }
}

TEST(Unary, SqrtOfNegativeIsNaNAsInOnnx) {
  OnnxModelBuilder b(13);
  b.input("x", {4});
  b.node("Sqrt", {"x"}, {"y"}, "root");
  b.output("y");
  const std::string bytes = b.bytes();
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "sqrt.onnx");
  const q8::Tensor y = q8::Session(m).run({q8::Tensor({4}, {4.f, 2.f, -1.f, 0.f})})[0];
  EXPECT_EQ(y.data()[0], 2.f);
  EXPECT_EQ(y.data()[1], std::sqrt(2.f));
  EXPECT_TRUE(std::isnan(y.data()[2]));
  EXPECT_EQ(y.data()[3], 0.f);
}

TEST(Unary, RefusesANonFiniteAttributeByName) {
  for (const char* op : {"HardSigmoid", "LeakyRelu", "Elu"}) {
    const ActCase a{op, {{"alpha", INFINITY}}, nullptr};
    const std::string bytes = conv_model(&a, "bad_act");
    try {
      q8::Model::load_from_memory(bytes.data(), bytes.size(), "inf.onnx");
      ADD_FAILURE() << op << " loaded";
    } catch (const q8::Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("inf.onnx"), std::string::npos) << m;
      EXPECT_NE(m.find("bad_act"), std::string::npos) << m;
      EXPECT_NE(m.find("'alpha' is not finite"), std::string::npos) << m;
    }
  }
}

TEST(Unary, WrittenModelKeepsTheAttributes) {
  const ActCase a{"HardSigmoid", {{"alpha", 0.3f}, {"beta", 0.4f}}, nullptr};
  const std::string bytes = conv_model(&a);
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "hs.onnx");
  const std::string path = testing::TempDir() + "q8_unary_written.onnx";
  m.save(path);
  const q8::Model back = q8::Model::load(path);
  const q8::Tensor x({1, 3, 6, 5}, random_floats(90, 3, -3.f, 3.f));
  const q8::Tensor y0 = q8::Session(m).run({x})[0], y1 = q8::Session(back).run({x})[0];
  for (int64_t i = 0; i < y0.numel(); ++i) ASSERT_EQ(y0.data()[i], y1.data()[i]) << i;
  std::remove(path.c_str());
}

TEST(Unary, WriterRefusesSiluWhichHasNoOnnxOp) {
  q8::ir::Graph g;
  g.source = "silu.onnx";
  q8::ir::Value x;
  x.name = "x";
  x.dtype = q8::ir::DType::Float32;
  x.shape = {1, 4};
  x.has_shape = true;
  const int xv = g.add_value(x);
  q8::ir::Value y;
  y.name = "y";
  y.dtype = q8::ir::DType::Float32;
  const int yv = g.add_value(y);
  g.inputs.push_back(xv);
  q8::ir::Node n;
  n.op = q8::ir::Op::Silu;
  n.name = "swish3";
  n.inputs = {xv};
  n.outputs = {yv};
  g.nodes.push_back(n);
  g.outputs.push_back(yv);
  try {
    q8::onnx::serialize_model(g);
    FAIL() << "written";
  } catch (const q8::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("silu.onnx"), std::string::npos) << m;
    EXPECT_NE(m.find("node 'swish3' (Silu)"), std::string::npos) << m;
    EXPECT_NE(m.find("cannot be written"), std::string::npos) << m;
  }
}

}  // namespace
