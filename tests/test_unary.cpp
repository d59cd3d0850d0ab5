// Element-wise activations (Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu, Elu, Erf, Sqrt, Exp):
// ONNX's own cases run in tests/test_conformance.cpp and the kernel's accuracy in
// tests/kernels/test_f32_kernels.cpp; here each op runs after a convolution (so on its NHWC
// output) with its attributes given and defaulted, against the ONNX formula in double; a
// non-finite attribute is refused by name; the writer keeps the attributes and refuses Silu, which
// has no ONNX op. In int8 (QDQ files, ONNX Runtime's QLinearSigmoid/QLinearLeakyRelu, and models
// q8 quantizes) each runs as a 256-entry table whose bytes are the quantized fp32 function.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "onnx/onnx_writer.h"
#include "q8/q8.h"
#include "tests/kernels/cpu_support.h"
#include "tests/onnx_model_builder.h"
#include "tests/test_util.h"

namespace {

// Whether the process's kernel path runs int8 lookups on AVX-512 VBMI: an AVX-512 family path
// (the default here, or the one Q8_ISA names) on a CPU with VBMI.
bool vbmi_lookup_expected() {
  if (!q8_test::cpu_supports("avx512vbmi")) return false;
  const char* forced = std::getenv("Q8_ISA");
  const std::string path = forced && *forced ? forced : q8::supported_isas().front();
  return path == "avx512" || path == "avx512vnni" || path == "amx";
}

using q8test::OnnxModelBuilder;
using q8test::set_float;

using q8::test::random_floats;

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

// ---- int8 ----------------------------------------------------------------------------------

constexpr int kU8 = ::onnx::TensorProto_DataType_UINT8;

// The quantized function, computed here in double: q = clamp(round_half_even(f(x) / s) + z).
int quantize_d(double v, double s, int z, int lo = 0, int hi = 255) {
  const double q = std::nearbyint(v / s) + z;
  return static_cast<int>(std::fmin(std::fmax(q, lo), hi));
}

// Runs the model on every input code (x = (code - z_in) * s_in, so QuantizeLinear gives `code`
// back), and checks each output byte against the function quantized in double: equal, except one
// code off where f(x) / s_out lies within 1e-4 of a rounding tie.
void expect_table(const std::string& bytes, const std::string& what, float s_in, int z_in, float s_out, int z_out,
                  const std::function<double(double)>& f, int lo = 0, int hi = 255) {
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), what);
  std::vector<float> x(256);
  for (int c = 0; c < 256; ++c) x[c] = static_cast<float>(c - z_in) * s_in;
  for (const std::string& isa : q8::supported_isas()) {
    q8::SessionOptions o(1);
    o.isa = isa;
    const q8::Tensor y = q8::Session(m, o).run({q8::Tensor({1, 256}, x)})[0];
    for (int c = 0; c < 256; ++c) {
      const double v = f(static_cast<double>(c - z_in) * s_in);
      const int want = quantize_d(v, s_out, z_out, lo, hi);
      const int got = static_cast<int>(std::lround(y.data()[c] / s_out)) + z_out;
      const double frac = v / s_out - std::floor(v / s_out);
      const bool near_tie = std::fabs(frac - 0.5) < 1e-4;
      if (got != want && !(near_tie && std::abs(got - want) == 1))
        ADD_FAILURE() << what << " on " << isa << ": code " << c << " (x = " << x[c] << ") gives " << got
                      << ", expected " << want;
    }
  }
}

// x -> QuantizeLinear -> DequantizeLinear -> op [-> Relu] -> QuantizeLinear -> DequantizeLinear -> y
std::string qdq_model(const char* op, const std::vector<std::pair<const char*, float>>& attrs, float s_in, int z_in,
                      float s_out, int z_out, bool relu) {
  OnnxModelBuilder b(17);
  b.input("x", {1, 256});
  b.init_f("s_in", {}, {s_in});
  b.init_8bit("z_in", kU8, {}, {static_cast<int8_t>(z_in)});
  b.init_f("s_out", {}, {s_out});
  b.init_8bit("z_out", kU8, {}, {static_cast<int8_t>(z_out)});
  b.node("QuantizeLinear", {"x", "s_in", "z_in"}, {"xq"}, "q_in");
  b.node("DequantizeLinear", {"xq", "s_in", "z_in"}, {"xd"}, "dq_in");
  auto& n = b.node(op, {"xd"}, {relu ? "a" : "f"}, "act");
  for (const auto& [k, v] : attrs) set_float(n, k, v);
  if (relu) b.node("Relu", {"a"}, {"f"}, "relu");
  b.node("QuantizeLinear", {"f", "s_out", "z_out"}, {"fq"}, "q_out");
  b.node("DequantizeLinear", {"fq", "s_out", "z_out"}, {"y"}, "dq_out");
  b.output("y");
  return b.bytes();
}

TEST(UnaryInt8, QdqRunsAsATableOfTheQuantizedFunction) {
  const double inv6 = 1.0 / 6;
  struct Case {
    const char* op;
    std::vector<std::pair<const char*, float>> attrs;
    float s_in;
    int z_in;
    float s_out;
    int z_out;
    std::function<double(double)> f;
  };
  const Case cases[] = {
      {"Sigmoid", {}, 0.05f, 128, 1.f / 256, 0, [](double x) { return 1 / (1 + std::exp(-x)); }},
      {"Tanh", {}, 0.03f, 120, 1.f / 128, 128, [](double x) { return std::tanh(x); }},
      {"HardSwish", {}, 0.04f, 100, 0.03f, 20, [&](double x) { return x * hard_sigmoid(x, inv6, 0.5); }},
      {"HardSigmoid", {{"alpha", 0.3f}}, 0.04f, 128, 1.f / 255, 0, [](double x) { return hard_sigmoid(x, 0.3, 0.5); }},
      {"LeakyRelu", {{"alpha", 0.2f}}, 0.02f, 200, 0.02f, 180, [](double x) { return x < 0 ? 0.2 * x : x; }},
      {"Elu", {}, 0.03f, 128, 0.02f, 60, [](double x) { return x < 0 ? std::expm1(x) : x; }},
      {"Erf", {}, 0.02f, 128, 1.f / 128, 128, [](double x) { return std::erf(x); }},
      {"Exp", {}, 0.01f, 128, 0.02f, 0, [](double x) { return std::exp(x); }},
      {"Sqrt", {}, 0.05f, 0, 0.02f, 0, [](double x) { return std::sqrt(x); }},
  };
  for (const Case& c : cases) {
    expect_table(qdq_model(c.op, c.attrs, c.s_in, c.z_in, c.s_out, c.z_out, false), c.op, c.s_in, c.z_in, c.s_out,
                 c.z_out, c.f);
    // The model runs it in int8: q8 info's int8 column and the lookup kernel.
    const std::string bytes = qdq_model(c.op, c.attrs, c.s_in, c.z_in, c.s_out, c.z_out, false);
    const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), c.op);
    bool found = false;
    for (const q8::NodeInfo& ni : m.describe())
      if (ni.name == "act") {
        found = true;
        EXPECT_TRUE(ni.int8) << c.op;
        EXPECT_EQ(ni.kernel.rfind("qu8_lookup", 0), 0u) << c.op << " runs " << ni.kernel;
        // The AVX-512 family's paths look bytes up with VBMI's permutes where the CPU has them.
        EXPECT_EQ(ni.kernel == "qu8_lookup__avx512vbmi", vbmi_lookup_expected()) << c.op << " runs " << ni.kernel;
      }
    EXPECT_TRUE(found) << c.op;
  }
  // A Relu after the op folds into the table's range: the output codes stop at the zero point.
  expect_table(
      qdq_model("LeakyRelu", {{"alpha", 0.2f}}, 0.02f, 200, 0.02f, 180, true), "LeakyRelu+Relu", 0.02f, 200, 0.02f, 180,
      [](double x) { return x < 0 ? 0.2 * x : x; }, 180, 255);
}

// A model that imports com.microsoft's ops, with input x [1,256], the input's and output's scale
// and zero point (s_in, z_in, s_out, z_out) and xq = QuantizeLinear(x): the start of both forms below.
void start_com_microsoft_model(OnnxModelBuilder& b, float s_in, int z_in, float s_out, int z_out) {
  auto* ms = b.m.add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  b.input("x", {1, 256});
  b.init_f("s_in", {}, {s_in});
  b.init_8bit("z_in", kU8, {}, {static_cast<int8_t>(z_in)});
  b.init_f("s_out", {}, {s_out});
  b.init_8bit("z_out", kU8, {}, {static_cast<int8_t>(z_out)});
  b.node("QuantizeLinear", {"x", "s_in", "z_in"}, {"xq"}, "q_in");
}

// ONNX Runtime's QOperator forms (com.microsoft): x -> QuantizeLinear -> QLinearOp -> DequantizeLinear.
std::string qlinear_model(const char* op, float alpha, float s_in, int z_in, float s_out, int z_out) {
  OnnxModelBuilder b(13);
  start_com_microsoft_model(b, s_in, z_in, s_out, z_out);
  auto& n = b.node(op, {"xq", "s_in", "z_in", "s_out", "z_out"}, {"fq"}, "act");
  n.set_domain("com.microsoft");
  if (alpha != 0.f) set_float(n, "alpha", alpha);
  b.node("DequantizeLinear", {"fq", "s_out", "z_out"}, {"y"}, "dq_out");
  b.output("y");
  return b.bytes();
}

TEST(UnaryInt8, QLinearSigmoidAndLeakyReluRunAsTables) {
  expect_table(qlinear_model("QLinearSigmoid", 0.f, 0.05f, 128, 1.f / 256, 0), "QLinearSigmoid", 0.05f, 128, 1.f / 256,
               0, [](double x) { return 1 / (1 + std::exp(-x)); });
  expect_table(qlinear_model("QLinearLeakyRelu", 0.1f, 0.02f, 200, 0.02f, 180), "QLinearLeakyRelu", 0.02f, 200, 0.02f,
               180, [](double x) { return x < 0 ? 0.1 * x : x; });
}

// q8's own quantizer on a model exported by PyTorch (tests/heldout/activations.onnx; its fp32
// and int8 accuracy against PyTorch run in test_heldout.cpp): every activation runs in int8.
TEST(UnaryInt8, QuantizerRunsEveryActivationInInt8) {
  const std::string dir = std::string(Q8_SOURCE_DIR) + "/tests/heldout/";
  const q8::Model fp32 = q8::Model::load(dir + "activations.onnx");
  const q8::Model int8 = q8::quantize(fp32, {q8::load_npy(dir + "activations_calib.npy")});
  int activations = 0;
  for (const q8::NodeInfo& ni : int8.describe()) {
    if (ni.op == "HardSwish" || ni.op == "LeakyRelu" || ni.op == "Elu" || ni.op == "HardSigmoid" || ni.op == "Tanh" ||
        ni.op == "Sigmoid" || ni.op == "Sqrt" || ni.op == "Erf" || ni.op == "Exp") {
      ++activations;
      EXPECT_TRUE(ni.int8) << ni.name;
      EXPECT_EQ(ni.kernel.rfind("qu8_lookup", 0), 0u) << ni.name << " runs " << ni.kernel;
    }
  }
  EXPECT_EQ(activations, 9);
}

}  // namespace

namespace {

// SiLU as PyTorch exports it, x * Sigmoid(x), runs as one Silu node on every path: the Mul is
// gone from the plan, and the result is x * sigmoid(x) in double, rounded once.
TEST(Unary, SigmoidTimesItsInputFusesIntoOneSilu) {
  OnnxModelBuilder b(17);
  b.input("x", {2, 3, 5, 4});
  b.node("Sigmoid", {"x"}, {"s"}, "gate");
  b.node("Mul", {"s", "x"}, {"y"}, "swish");
  b.output("y");
  const std::string bytes = b.bytes();
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "silu.onnx");
  const std::vector<q8::NodeInfo> nodes = m.describe();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].op, "Silu");
  const q8::Tensor x({2, 3, 5, 4}, random_floats(120, 11, -8.f, 8.f));
  for (const std::string& isa : q8::supported_isas()) {
    q8::SessionOptions o(2);
    o.isa = isa;
    const q8::Tensor y = q8::Session(m, o).run({x})[0];
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double v = x.data()[i], want = v / (1 + std::exp(-v));
      ASSERT_NEAR(y.data()[i], want, 2e-7 * std::fabs(want) + 1e-30) << isa << " at " << i;
    }
  }
}

}  // namespace

namespace {

// x * f(x) in a QDQ file (SiLU; HardSwish as opset 13 exports it, x * HardSigmoid(x)): one table
// lookup (passes.h, fuse_quantized_gate) whose bytes are those of the lookup and the QuantizedMul
// run as two steps, which they are when the gate is also a graph output, on every path.
std::string gated_model(const char* op, const std::vector<std::pair<const char*, float>>& attrs, bool observe_gate) {
  OnnxModelBuilder b(17);
  b.input("x", {1, 2, 16, 16});
  b.init_f("s_in", {}, {0.04f});
  b.init_8bit("z_in", kU8, {}, {static_cast<int8_t>(140)});
  b.init_f("s_gate", {}, {1.f / 255});
  b.init_8bit("z_gate", kU8, {}, {static_cast<int8_t>(0)});
  b.init_f("s_out", {}, {0.03f});
  b.init_8bit("z_out", kU8, {}, {static_cast<int8_t>(20)});
  b.node("QuantizeLinear", {"x", "s_in", "z_in"}, {"xq"}, "q_in");
  b.node("DequantizeLinear", {"xq", "s_in", "z_in"}, {"xd"}, "dq_in");
  auto& n = b.node(op, {"xd"}, {"f"}, "gate");
  for (const auto& [k, v] : attrs) set_float(n, k, v);
  b.node("QuantizeLinear", {"f", "s_gate", "z_gate"}, {"fq"}, "q_gate");
  b.node("DequantizeLinear", {"fq", "s_gate", "z_gate"}, {"fd"}, "dq_gate");
  b.node("Mul", {"xd", "fd"}, {"m"}, "mul");
  b.node("QuantizeLinear", {"m", "s_out", "z_out"}, {"mq"}, "q_out");
  b.node("DequantizeLinear", {"mq", "s_out", "z_out"}, {"y"}, "dq_out");
  b.output("y");
  if (observe_gate) b.output("fd");
  return b.bytes();
}

TEST(UnaryInt8, ActivationTimesItsInputIsOneTableWithTheBytesOfTwoSteps) {
  const std::pair<const char*, std::vector<std::pair<const char*, float>>> cases[] = {
      {"Sigmoid", {}}, {"HardSigmoid", {{"alpha", 1.f / 6}, {"beta", 0.5f}}}};
  std::vector<float> xv(512);
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>(static_cast<int>(i % 256) - 140) * 0.04f;
  const q8::Tensor x({1, 2, 16, 16}, xv);  // every code of x, twice
  for (const auto& [op, attrs] : cases) {
    const std::string fused_bytes = gated_model(op, attrs, false), steps_bytes = gated_model(op, attrs, true);
    const q8::Model fused = q8::Model::load_from_memory(fused_bytes.data(), fused_bytes.size(), "gated.onnx");
    const q8::Model steps = q8::Model::load_from_memory(steps_bytes.data(), steps_bytes.size(), "steps.onnx");
    auto ops = [](const q8::Model& m) {
      std::string r;
      for (const q8::NodeInfo& n : m.describe()) r += n.op + " ";
      return r;
    };
    EXPECT_EQ(ops(fused).find("QuantizedMul"), std::string::npos) << op << ": " << ops(fused);
    EXPECT_NE(ops(steps).find("QuantizedMul"), std::string::npos) << op << ": " << ops(steps);
    for (const std::string& isa : q8::supported_isas()) {
      q8::SessionOptions o(2);
      o.isa = isa;
      const q8::Tensor got = q8::Session(fused, o).run({x})[0], want = q8::Session(steps, o).run({x})[0];
      ASSERT_EQ(got.numel(), want.numel());
      EXPECT_EQ(0, std::memcmp(got.data(), want.data(), sizeof(float) * static_cast<size_t>(got.numel())))
          << op << " on " << isa;
    }
  }
}

// com.microsoft's Gelu (what q8 writes for a fused GELU) in a QDQ file runs as a 256-entry table
// whose bytes are GELU quantized: x -> Q -> DQ -> Gelu -> Q -> DQ.
TEST(UnaryInt8, GeluRunsAsATableOfTheQuantizedFunction) {
  const float s_in = 0.04f, s_out = 0.03f;
  const int z_in = 140, z_out = 10;
  OnnxModelBuilder b(13);
  start_com_microsoft_model(b, s_in, z_in, s_out, z_out);
  b.node("DequantizeLinear", {"xq", "s_in", "z_in"}, {"xd"}, "dq_in");
  b.node("Gelu", {"xd"}, {"f"}, "act").set_domain("com.microsoft");
  b.node("QuantizeLinear", {"f", "s_out", "z_out"}, {"fq"}, "q_out");
  b.node("DequantizeLinear", {"fq", "s_out", "z_out"}, {"y"}, "dq_out");
  b.output("y");
  const std::string bytes = b.bytes();
  expect_table(bytes, "Gelu", s_in, z_in, s_out, z_out,
               [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); });
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "gelu");
  bool found = false;
  for (const q8::NodeInfo& ni : m.describe())
    if (ni.name == "act") {
      found = true;
      EXPECT_TRUE(ni.int8);
      EXPECT_EQ(ni.kernel.rfind("qu8_lookup", 0), 0u) << ni.kernel;
    }
  EXPECT_TRUE(found);
}

}  // namespace
