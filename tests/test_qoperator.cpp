// ONNX Runtime's QOperator forms of Concat, Mul and AveragePool (com.microsoft's QLinearConcat,
// QLinearMul, QLinearAveragePool): each must run as its QDQ form does (the same bytes, the same
// int8 or fp32 decision) and match the operator's formula on the quantized inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "onnx_model_builder.h"
#include "q8/q8.h"
#include "test_util.h"

namespace {

using q8::test::random_floats;
using q8test::OnnxModelBuilder;

constexpr int kU8 = ::onnx::TensorProto::UINT8;

struct Quant {
  float scale;
  int zero_point;
};

int quantize(float x, Quant q) {
  const double v = std::nearbyint(static_cast<double>(x) / q.scale) + q.zero_point;
  return static_cast<int>(std::fmin(255.0, std::fmax(0.0, v)));
}
double dequantize(int q, Quant p) { return (q - p.zero_point) * static_cast<double>(p.scale); }

// A builder that imports com.microsoft, with a scale and zero point initializer per Quant:
// "s<name>", "z<name>".
OnnxModelBuilder builder() {
  OnnxModelBuilder b(13);
  auto* ms = b.m.add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  return b;
}
void add_quant(OnnxModelBuilder& b, const std::string& name, Quant q) {
  b.init_f("s" + name, {}, {q.scale});
  b.init_8bit("z" + name, kU8, {}, {static_cast<int8_t>(q.zero_point)});
}
// x (float) -> QuantizeLinear -> xq
void quantize_input(OnnxModelBuilder& b, const std::string& x, const std::string& qname) {
  b.node("QuantizeLinear", {x, "s" + qname, "z" + qname}, {x + "_q"}, x + "_quantize");
}
// The same tensor through QuantizeLinear and back, as the QDQ form reads it.
void fake_quantize_input(OnnxModelBuilder& b, const std::string& x, const std::string& qname) {
  quantize_input(b, x, qname);
  b.node("DequantizeLinear", {x + "_q", "s" + qname, "z" + qname}, {x + "_d"}, x + "_dequantize");
}

std::vector<float> run(const std::string& bytes, const std::vector<q8::Tensor>& inputs, const std::string& isa = "") {
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "qoperator.onnx");
  q8::SessionOptions o;
  if (!isa.empty()) o.isa = isa;
  return q8::Session(m, o).run(inputs)[0].values();
}

bool node_runs_int8(const std::string& bytes, const std::string& op) {
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "qoperator.onnx");
  for (const q8::NodeInfo& ni : m.describe())
    if (ni.op == op) return ni.int8;
  ADD_FAILURE() << "no " << op << " node";
  return false;
}

// Every ISA gives the bytes of the QDQ form, and each value is within one output step of
// `reference` (the exact result of the operator on the dequantized inputs, quantized).
void expect_like_qdq(const std::string& qop, const std::string& qdq, const std::vector<q8::Tensor>& inputs,
                     const std::vector<double>& reference, Quant out) {
  const std::vector<float> want = run(qdq, inputs);
  ASSERT_EQ(want.size(), reference.size());
  for (const std::string& isa : q8::supported_isas()) {
    SCOPED_TRACE(isa);
    EXPECT_EQ(run(qop, inputs, isa), want);
  }
  for (size_t i = 0; i < reference.size(); ++i) {
    const double r = dequantize(
        static_cast<int>(std::fmin(255.0, std::fmax(0.0, std::nearbyint(reference[i] / out.scale) + out.zero_point))),
        out);
    ASSERT_LE(std::fabs(want[i] - r), out.scale * 1.0001) << "element " << i;
  }
}

TEST(QOperator, QLinearMulRunsAsItsQdqFormForEqualShapesAndPerChannelTerms) {
  const Quant qa{0.05f, 120}, qb{0.02f, 30}, qc{0.04f, 100};
  for (const std::vector<int64_t>& bdims : {std::vector<int64_t>{1, 4, 3, 5}, std::vector<int64_t>{1, 4, 1, 1}}) {
    SCOPED_TRACE("b of " + std::to_string(bdims[2] * bdims[3]) + " values per channel");
    auto make = [&](bool qoperator) {
      OnnxModelBuilder b = builder();
      b.input("a", {1, 4, 3, 5});
      b.input("b", bdims);
      add_quant(b, "a", qa);
      add_quant(b, "b", qb);
      add_quant(b, "c", qc);
      if (qoperator) {
        quantize_input(b, "a", "a");
        quantize_input(b, "b", "b");
        b.node("QLinearMul", {"a_q", "sa", "za", "b_q", "sb", "zb", "sc", "zc"}, {"c_q"}, "mul")
            .set_domain("com.microsoft");
      } else {
        fake_quantize_input(b, "a", "a");
        fake_quantize_input(b, "b", "b");
        b.node("Mul", {"a_d", "b_d"}, {"c"}, "mul");
        b.node("QuantizeLinear", {"c", "sc", "zc"}, {"c_q"}, "c_quantize");
      }
      b.node("DequantizeLinear", {"c_q", "sc", "zc"}, {"y"}, "y_dequantize");
      b.output("y");
      return b.bytes();
    };
    const size_t nb = static_cast<size_t>(bdims[1] * bdims[2] * bdims[3]);
    const q8::Tensor a({1, 4, 3, 5}, random_floats(60, 1, -6.f, 6.f));
    const q8::Tensor bt(bdims, random_floats(nb, 2, -1.f, 4.f));
    std::vector<double> ref(60);
    for (size_t i = 0; i < 60; ++i) {
      const size_t j = nb == 60 ? i : i / 15;  // [1,4,1,1]: one value per channel
      ref[i] = dequantize(quantize(a.data()[i], qa), qa) * dequantize(quantize(bt.data()[j], qb), qb);
    }
    const std::string qop = make(true);
    EXPECT_TRUE(node_runs_int8(qop, "QuantizedMul"));
    expect_like_qdq(qop, make(false), {a, bt}, ref, qc);
  }
}

// Inputs that share the output's scale and zero point are joined as bytes; others make the Concat
// run in fp32 between a DequantizeLinear per input and a QuantizeLinear, as in the QDQ form.
TEST(QOperator, QLinearConcatRunsAsItsQdqForm) {
  const Quant qy{0.05f, 128};
  for (bool same : {true, false}) {
    SCOPED_TRACE(same ? "inputs share the output's quantization" : "inputs of other scales");
    const Quant q1 = qy, q2 = same ? qy : Quant{0.03f, 100};
    auto make = [&](bool qoperator) {
      OnnxModelBuilder b = builder();
      b.input("x1", {1, 2, 3, 4});
      b.input("x2", {1, 3, 3, 4});
      add_quant(b, "1", q1);
      add_quant(b, "2", q2);
      add_quant(b, "y", qy);
      if (qoperator) {
        quantize_input(b, "x1", "1");
        quantize_input(b, "x2", "2");
        auto& n = b.node("QLinearConcat", {"sy", "zy", "x1_q", "s1", "z1", "x2_q", "s2", "z2"}, {"y_q"}, "concat");
        n.set_domain("com.microsoft");
        q8test::set_int(n, "axis", 1);
      } else {
        fake_quantize_input(b, "x1", "1");
        fake_quantize_input(b, "x2", "2");
        q8test::set_int(b.node("Concat", {"x1_d", "x2_d"}, {"c"}, "concat"), "axis", 1);
        b.node("QuantizeLinear", {"c", "sy", "zy"}, {"y_q"}, "y_quantize");
      }
      b.node("DequantizeLinear", {"y_q", "sy", "zy"}, {"y"}, "y_dequantize");
      b.output("y");
      return b.bytes();
    };
    const q8::Tensor x1({1, 2, 3, 4}, random_floats(24, 3, -5.f, 5.f));
    const q8::Tensor x2({1, 3, 3, 4}, random_floats(36, 4, -3.f, 3.f));
    std::vector<double> ref;
    for (float v : x1.values()) ref.push_back(dequantize(quantize(v, q1), q1));
    for (float v : x2.values()) ref.push_back(dequantize(quantize(v, q2), q2));
    const std::string qop = make(true);
    EXPECT_EQ(node_runs_int8(qop, "Concat"), same);
    expect_like_qdq(qop, make(false), {x1, x2}, ref, qy);
  }
}

TEST(QOperator, QLinearAveragePoolRunsAsItsQdqForm) {
  const Quant qx{0.04f, 90}, qy{0.03f, 70};
  for (int include_pad : {0, 1}) {
    SCOPED_TRACE("count_include_pad=" + std::to_string(include_pad));
    auto make = [&](bool qoperator) {
      OnnxModelBuilder b = builder();
      b.input("x", {1, 5, 7, 6});
      add_quant(b, "x", qx);
      add_quant(b, "y", qy);
      auto attrs = [&](::onnx::NodeProto& n) {
        q8test::set_ints(n, "kernel_shape", {3, 3});
        q8test::set_ints(n, "strides", {2, 2});
        q8test::set_ints(n, "pads", {1, 1, 1, 1});
        q8test::set_int(n, "count_include_pad", include_pad);
      };
      if (qoperator) {
        quantize_input(b, "x", "x");
        auto& n = b.node("QLinearAveragePool", {"x_q", "sx", "zx", "sy", "zy"}, {"y_q"}, "pool");
        n.set_domain("com.microsoft");
        attrs(n);
      } else {
        fake_quantize_input(b, "x", "x");
        attrs(b.node("AveragePool", {"x_d"}, {"p"}, "pool"));
        b.node("QuantizeLinear", {"p", "sy", "zy"}, {"y_q"}, "y_quantize");
      }
      b.node("DequantizeLinear", {"y_q", "sy", "zy"}, {"y"}, "y_dequantize");
      b.output("y");
      return b.bytes();
    };
    const q8::Tensor x({1, 5, 7, 6}, random_floats(210, 5, -4.f, 4.f));
    std::vector<double> ref;
    for (int c = 0; c < 5; ++c)
      for (int oy = 0; oy < 4; ++oy)
        for (int ox = 0; ox < 3; ++ox) {
          double sum = 0;
          int count = 0;
          for (int ky = 0; ky < 3; ++ky)
            for (int kx = 0; kx < 3; ++kx) {
              const int iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
              if (iy < 0 || iy >= 7 || ix < 0 || ix >= 6) {
                count += include_pad;
                continue;
              }
              sum += dequantize(quantize(x.data()[(c * 7 + iy) * 6 + ix], qx), qx);
              ++count;
            }
          ref.push_back(sum / count);
        }
    const std::string qop = make(true);
    EXPECT_TRUE(node_runs_int8(qop, "AveragePool"));
    expect_like_qdq(qop, make(false), {x}, ref, qy);
  }
}

// The zero points are optional inputs: left out (empty names), they are 0, as in the QDQ form.
TEST(QOperator, OmittedZeroPointsAreZero) {
  const Quant qa{0.05f, 0}, qb{0.02f, 0}, qc{0.04f, 0};
  auto make = [&](bool qoperator) {
    OnnxModelBuilder b = builder();
    b.input("a", {1, 3, 4, 4});
    b.input("b", {1, 3, 4, 4});
    add_quant(b, "a", qa);
    add_quant(b, "b", qb);
    add_quant(b, "c", qc);
    quantize_input(b, "a", "a");
    quantize_input(b, "b", "b");
    if (qoperator) {
      b.node("QLinearMul", {"a_q", "sa", "", "b_q", "sb", "", "sc", ""}, {"c_q"}, "mul").set_domain("com.microsoft");
      auto& p = b.node("QLinearAveragePool", {"c_q", "sc", "", "sc"}, {"p_q"}, "pool");
      p.set_domain("com.microsoft");
      q8test::set_ints(p, "kernel_shape", {2, 2});
    } else {
      b.node("DequantizeLinear", {"a_q", "sa", "za"}, {"a_d"}, "a_dequantize");
      b.node("DequantizeLinear", {"b_q", "sb", "zb"}, {"b_d"}, "b_dequantize");
      b.node("Mul", {"a_d", "b_d"}, {"c"}, "mul");
      b.node("QuantizeLinear", {"c", "sc", "zc"}, {"c_q"}, "c_quantize");
      b.node("DequantizeLinear", {"c_q", "sc", "zc"}, {"c_d"}, "c_dequantize");
      q8test::set_ints(b.node("AveragePool", {"c_d"}, {"p"}, "pool"), "kernel_shape", {2, 2});
      b.node("QuantizeLinear", {"p", "sc", "zc"}, {"p_q"}, "p_quantize");
    }
    b.node("DequantizeLinear", {"p_q", "sc", "zc"}, {"y"}, "y_dequantize");
    b.output("y");
    return b.bytes();
  };
  const q8::Tensor a({1, 3, 4, 4}, random_floats(48, 7, 0.f, 6.f));
  const q8::Tensor bt({1, 3, 4, 4}, random_floats(48, 8, 0.f, 4.f));
  const std::string qop = make(true), qdq = make(false);
  EXPECT_TRUE(node_runs_int8(qop, "QuantizedMul"));
  const std::vector<float> want = run(qdq, {a, bt});
  for (const std::string& isa : q8::supported_isas()) EXPECT_EQ(run(qop, {a, bt}, isa), want) << isa;
}

TEST(QOperator, MalformedFormsNameTheNode) {
  {
    OnnxModelBuilder b = builder();
    b.input("x", {1, 2, 4, 4});
    add_quant(b, "x", {0.1f, 0});
    quantize_input(b, "x", "x");
    auto& n = b.node("QLinearAveragePool", {"x_q", "sx", "zx", "sx", "zx"}, {"y_q"}, "pool_nhwc");
    n.set_domain("com.microsoft");
    q8test::set_ints(n, "kernel_shape", {2, 2});
    q8test::set_int(n, "channels_last", 1);
    b.node("DequantizeLinear", {"y_q", "sx", "zx"}, {"y"}, "dq");
    b.output("y");
    const std::string bytes = b.bytes();
    try {
      q8::Model::load_from_memory(bytes.data(), bytes.size(), "nhwc.onnx");
      ADD_FAILURE() << "loaded";
    } catch (const q8::Error& e) {
      EXPECT_NE(std::string(e.what()).find("pool_nhwc"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("channels_last"), std::string::npos) << e.what();
    }
  }
  {
    OnnxModelBuilder b = builder();
    b.input("x", {1, 2, 4, 4});
    add_quant(b, "x", {0.1f, 0});
    quantize_input(b, "x", "x");
    auto& n = b.node("QLinearConcat", {"sx", "zx", "x_q", "sx", "zx", "x_q"}, {"y_q"}, "concat_short");
    n.set_domain("com.microsoft");
    q8test::set_int(n, "axis", 1);
    b.node("DequantizeLinear", {"y_q", "sx", "zx"}, {"y"}, "dq");
    b.output("y");
    const std::string bytes = b.bytes();
    try {
      q8::Model::load_from_memory(bytes.data(), bytes.size(), "concat.onnx");
      ADD_FAILURE() << "loaded";
    } catch (const q8::Error& e) {
      EXPECT_NE(std::string(e.what()).find("concat_short"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
