// A network whose last Conv gives the model's float output (a UNet's or a detection head's 1x1
// Conv): after q8's quantizer the 1x1, stride-1, unpadded, ungrouped one runs in int8 with a float
// result (QuantizedConvFloat, the table's gemm_dequantize over NHWC pixels), giving the same bytes
// on every kernel path and thread count; the file keeps ONNX's QDQ pattern (DequantizeLinear on
// input and weights, Conv, no QuantizeLinear after). Other geometries stay fp32, and `describe`
// says why.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "onnx.pb.h"
#include "q8/q8.h"
#include "tests/onnx_model_builder.h"
#include "tests/test_util.h"

namespace {

using q8::test::random_floats;
using q8::test::sqnr_db;
using q8test::OnnxModelBuilder;

constexpr int64_t kN = 2, kC = 6, kH = 7, kW = 5, kMid = 12;

struct Head {
  int64_t out = 5, k = 1, stride = 1, pad = 0, group = 1;
};

// x [2,6,7,5] -> 3x3 Conv + bias -> Relu -> head Conv (+ bias) -> y. The pixels (70 or fewer) and
// output channels (5, 13, 75) are not multiples of any table's GEMM tile.
std::string model(const Head& h) {
  OnnxModelBuilder b(13);
  b.input("x", {kN, kC, kH, kW});
  b.init_f("w1", {kMid, kC, 3, 3}, random_floats(kMid * kC * 9, 1, -0.3f, 0.3f));
  b.init_f("b1", {kMid}, random_floats(kMid, 2, -0.2f, 0.2f));
  q8test::set_ints(b.node("Conv", {"x", "w1", "b1"}, {"c"}, "body"), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"r"}, "relu");
  const int64_t cg = kMid / h.group;
  b.init_f("wh", {h.out, cg, h.k, h.k}, random_floats(h.out * cg * h.k * h.k, 3, -0.5f, 0.5f));
  b.init_f("bh", {h.out}, random_floats(h.out, 4, -0.5f, 0.5f));
  auto& head = b.node("Conv", {"r", "wh", "bh"}, {"y"}, "head");
  if (h.stride != 1) q8test::set_ints(head, "strides", {h.stride, h.stride});
  if (h.pad != 0) q8test::set_ints(head, "pads", {h.pad, h.pad, h.pad, h.pad});
  if (h.group != 1) q8test::set_int(head, "group", h.group);
  b.output("y");
  return b.bytes();
}

std::string saved_bytes(const q8::Model& m) {
  char name[] = "/tmp/q8_convfloat_XXXXXX";
  const int fd = mkstemp(name);
  close(fd);
  const std::string path = std::string(name) + ".onnx";
  m.save(path);
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::remove(path.c_str());
  std::remove(name);
  return ss.str();
}

struct Quantized {
  q8::Model fp32, int8;
};
Quantized quantized(const Head& h) {
  const std::string bytes = model(h);
  Quantized q{q8::Model::load_from_memory(bytes.data(), bytes.size(), "head.onnx"), {}};
  const q8::Tensor calib({16, kC, kH, kW}, random_floats(16 * kC * kH * kW, 5, -2.f, 2.f));
  q.int8 = q8::quantize(q.fp32, {calib});
  return q;
}

const q8::NodeInfo* find(const std::vector<q8::NodeInfo>& rows, const std::string& name) {
  for (const q8::NodeInfo& r : rows)
    if (r.name == name) return &r;
  return nullptr;
}

TEST(QuantizedConvFloat, OneByOneHeadRunsInInt8WithTheSameBytesOnEveryPath) {
  for (int64_t out : {5, 13, 75}) {  // 75: several panels of output channels on every table
    SCOPED_TRACE("head with " + std::to_string(out) + " outputs");
    Head h;
    h.out = out;
    const Quantized q = quantized(h);
    const std::vector<q8::NodeInfo> rows = q.int8.describe();
    const q8::NodeInfo* head = find(rows, "head");
    ASSERT_NE(head, nullptr);
    EXPECT_EQ(head->op, "QuantizedConvFloat");
    EXPECT_TRUE(head->int8);
    EXPECT_EQ(head->kernel.rfind("qu8_gemm_dequantize_", 0), 0u) << head->kernel;
    EXPECT_EQ(head->macs, kN * kH * kW * out * kMid);  // the input has a fixed batch of 2
    for (const q8::NodeInfo& r : rows) EXPECT_EQ(r.kernel.find("fallback"), std::string::npos) << r.name;

    const q8::Tensor x({kN, kC, kH, kW}, random_floats(kN * kC * kH * kW, 6, -2.f, 2.f));
    const q8::Tensor want = q8::Session(q.fp32).run({x})[0];
    std::vector<float> first;
    for (const std::string& isa : q8::supported_isas())
      for (int threads : {1, 2, 3}) {
        SCOPED_TRACE(isa + ", " + std::to_string(threads) + " threads");
        const q8::Tensor y = q8::Session(q.int8, {threads, isa}).run({x})[0];
        ASSERT_EQ(y.shape(), want.shape());
        // 8-bit activations and weights: about 40 dB here; a wrong layout or scale gives < 0 dB.
        EXPECT_GT(sqnr_db(y, want), 32.0);
        if (first.empty()) first.assign(y.data(), y.data() + y.numel());
        for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y.data()[i], first[i]) << "at " << i;
      }

    // ONNX Runtime's QDQ pattern: DequantizeLinear feeds the head's input and weights, and no
    // QuantizeLinear reads its result. The file loads back to the same op and bytes.
    const std::string bytes = saved_bytes(q.int8);
    ::onnx::ModelProto m;
    ASSERT_TRUE(m.ParseFromString(bytes));
    const ::onnx::NodeProto* conv = nullptr;
    for (const auto& n : m.graph().node())
      if (n.name() == "head") conv = &n;
    ASSERT_NE(conv, nullptr);
    EXPECT_EQ(conv->op_type(), "Conv");
    for (int k = 0; k < 2; ++k) {
      bool dequantized = false;
      for (const auto& n : m.graph().node())
        dequantized |= n.op_type() == "DequantizeLinear" && n.output(0) == conv->input(k);
      EXPECT_TRUE(dequantized) << "input " << k;
    }
    for (const auto& n : m.graph().node())
      for (const auto& in : n.input()) EXPECT_FALSE(n.op_type() == "QuantizeLinear" && in == conv->output(0));
    const q8::Model back = q8::Model::load_from_memory(bytes.data(), bytes.size(), "back.onnx");
    EXPECT_EQ(find(back.describe(), "head")->op, "QuantizedConvFloat");
    const q8::Tensor y = q8::Session(back).run({x})[0];
    for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y.data()[i], first[i]) << "reloaded, at " << i;

    // What ONNX Runtime computes from this file: the float Conv of the dequantized input, weights
    // and bias. With the weights as the float initializer their DequantizeLinear gives, q8 runs
    // that float Conv itself; the int8 head differs from it only by float rounding (its int32 sum
    // is exact), far below a 1 % error in a scale.
    ::onnx::ModelProto hidden = m;
    auto initializer = [&hidden](const std::string& name) -> const ::onnx::TensorProto& {
      for (const auto& t : hidden.graph().initializer())
        if (t.name() == name) return t;
      ADD_FAILURE() << "no initializer " << name;
      return hidden.graph().initializer(0);
    };
    for (auto& n : *hidden.mutable_graph()->mutable_node()) {
      if (n.op_type() != "DequantizeLinear" || n.output(0) != conv->input(1)) continue;
      const ::onnx::TensorProto &q8w = initializer(n.input(0)), &s = initializer(n.input(1));
      ASSERT_EQ(q8w.data_type(), ::onnx::TensorProto::INT8);
      ASSERT_EQ(s.data_type(), ::onnx::TensorProto::FLOAT);
      const std::string& qraw = q8w.raw_data();
      const size_t per_channel = qraw.size() / static_cast<size_t>(out);
      ASSERT_EQ(s.raw_data().size(), static_cast<size_t>(out) * 4);
      std::vector<float> w(qraw.size());
      for (size_t e = 0; e < w.size(); ++e) {
        float sc;
        std::memcpy(&sc, s.raw_data().data() + 4 * (e / per_channel), 4);
        w[e] = static_cast<float>(static_cast<int8_t>(qraw[e])) * sc;  // zero point 0
      }
      ::onnx::TensorProto* t = hidden.mutable_graph()->add_initializer();
      *t = q8w;
      t->set_name("head_weights_float");
      t->set_data_type(::onnx::TensorProto::FLOAT);
      t->set_raw_data(std::string(reinterpret_cast<const char*>(w.data()), w.size() * 4));
    }
    for (auto& n : *hidden.mutable_graph()->mutable_node())
      if (n.name() == "head") n.set_input(1, "head_weights_float");
    const std::string hidden_bytes = hidden.SerializeAsString();
    const q8::Model qdq = q8::Model::load_from_memory(hidden_bytes.data(), hidden_bytes.size(), "qdq.onnx");
    EXPECT_EQ(find(qdq.describe(), "head")->op, "Conv");
    const q8::Tensor ref = q8::Session(qdq).run({x})[0];
    for (int64_t i = 0; i < y.numel(); ++i)
      ASSERT_NEAR(y.data()[i], ref.data()[i], 1e-5 + 1e-5 * std::fabs(ref.data()[i])) << "at " << i;
  }
}

TEST(QuantizedConvFloat, OtherGeometriesStayFp32AndSayWhy) {
  struct Case {
    Head h;
    const char* why;
  };
  Head k3, strided, grouped;
  k3.k = 3, k3.pad = 1;
  strided.stride = 2;
  grouped.out = 6, grouped.group = 3;
  for (const Case& c :
       {Case{k3, "a 3x3, padded Conv with a float result"}, Case{strided, "a strided Conv with a float result"},
        Case{grouped, "a grouped Conv with a float result"}}) {
    SCOPED_TRACE(c.why);
    const Quantized q = quantized(c.h);
    const std::vector<q8::NodeInfo> rows = q.int8.describe();
    const q8::NodeInfo* head = find(rows, "head");
    ASSERT_NE(head, nullptr);
    EXPECT_EQ(head->op, "Conv");
    EXPECT_FALSE(head->int8);
    EXPECT_TRUE(head->fp32_fallback);
    EXPECT_EQ(head->fp32_reason.rfind(c.why, 0), 0u) << head->fp32_reason;
    EXPECT_NE(head->kernel.find(std::string("(fp32 fallback): ") + c.why), std::string::npos) << head->kernel;
    EXPECT_EQ(find(rows, "body")->op, "QuantizedConv");
    const q8::Tensor x({kN, kC, kH, kW}, random_floats(kN * kC * kH * kW, 6, -2.f, 2.f));
    EXPECT_GT(sqnr_db(q8::Session(q.int8).run({x})[0], q8::Session(q.fp32).run({x})[0]), 32.0);
  }
}

}  // namespace
